// SPDX-License-Identifier: MIT
//! `faceveil-mqtt`: publishes faceveil events to an MQTT broker. It reads the JSON lines that
//! `faceveil-nvr` writes (one event per line) on standard input, so the two compose:
//!
//! ```text
//! faceveil-nvr --config /etc/faceveil/nvr.toml | faceveil-mqtt --broker 127.0.0.1:1883
//! faceveil-nvr --config /etc/faceveil/nvr.toml | faceveil-mqtt --broker mqtt.example:8883 --tls \
//!     --ca-file ca.pem --username faceveil --password-file /etc/faceveil/mqtt.password
//! ```
//!
//! Topics: `<prefix>/<camera-id>/match`, `<prefix>/<camera-id>/unknown` and
//! `<prefix>/<camera-id>/health` (the runner's periodic `faceveil-health` line); payload: the
//! event's JSON object unchanged (docs/EVENTS.md); QoS 1 (at least once), not retained. Other
//! lines are skipped. A camera id that holds `/`, `+`, `#` or a control character, is empty or is
//! longer than 64 bytes is made safe first (`homeassistant::topic_level`).
//!
//! With `--homeassistant`, each camera is announced to Home Assistant by MQTT discovery (retained
//! configs under `homeassistant/`): a device with a "Watch-list alert" binary sensor
//! (`<prefix>/<camera>/alert`, `ON` at a match, `OFF` by the bridge `--homeassistant-off-delay`
//! seconds after the last) and a "Last identified" sensor (`<prefix>/<camera>/last-identified`,
//! the label of the last match: a listed person's), available while the bridge is
//! (`<prefix>/bridge/<client-id>/availability`, `offline` by its last will).
//! `--homeassistant-remove` clears them. See docs/NVR.md.
//!
//! When the broker
//! goes away the bridge keeps reading, holds events in order, reconnects every second and delivers
//! them when the broker is back. It exits when standard input ends.
//!
//! Events name the people matched, so they do not leave the machine in clear: plain TCP is refused
//! to a broker that is not on this machine unless `--insecure-plaintext` says so. A broker that
//! refuses the login, and a TLS handshake that fails on a certificate, end the bridge (exit 1):
//! retrying would fail the same way. Errors of the command line and of the files it names exit 2.

mod homeassistant;
mod tls;

use std::io::BufRead;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use clap::Parser;
use gstfaceveil::engine::secret_file::read_secret_file;
use homeassistant::{Announcer, Discovery};
use rumqttc::{
    Client, ConnectReturnCode, ConnectionError, Event, LastWill, MqttOptions, Packet, QoS,
    RecvTimeoutError, SubscribeFilter, TlsConfiguration, Transport,
};

#[derive(Parser)]
#[command(
    name = "faceveil-mqtt",
    version,
    about = "Publish faceveil-nvr's JSON events (standard input) to an MQTT broker, QoS 1"
)]
struct Cli {
    /// The broker: a host name, an IPv4 address or [an IPv6 address], and the port
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:1883")]
    broker: String,
    /// MQTT client id
    #[arg(long, value_name = "ID", default_value = "faceveil-bridge")]
    client_id: String,
    /// First level of the topics
    #[arg(long, value_name = "P", default_value = "faceveil")]
    prefix: String,
    /// Connect with TLS (the broker's TLS listener, usually port 8883); its certificate must name
    /// the HOST of --broker
    #[arg(long)]
    tls: bool,
    /// The CA certificate(s) (PEM) that the broker's certificate must chain to [default: the
    /// system's trust store]
    #[arg(long, value_name = "PEM", requires = "tls")]
    ca_file: Option<PathBuf>,
    /// A client certificate (PEM) for brokers that require one; with --client-key
    #[arg(long, value_name = "PEM", requires_all = ["tls", "client_key"])]
    client_cert: Option<PathBuf>,
    /// The private key (PEM) of --client-cert; a file its group or other users can write is
    /// refused
    #[arg(long, value_name = "PEM", requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// The user name to log in with; with --password-file
    #[arg(long, value_name = "NAME", requires = "password_file")]
    username: Option<String>,
    /// A file whose first line is the password (never on the command line); a file its group or
    /// other users can write is refused, one every user can read is warned about
    #[arg(long, value_name = "FILE", requires = "username")]
    password_file: Option<PathBuf>,
    /// Allow plain TCP to a broker that is not on this machine: the events, with the labels of
    /// the people matched, and the password travel unencrypted
    #[arg(long, conflicts_with = "tls")]
    insecure_plaintext: bool,
    /// Announce each camera to Home Assistant (MQTT discovery, retained configs): a device with a
    /// "Watch-list alert" binary sensor and a "Last identified" sensor (labels of listed people);
    /// the bridge's availability through its last will
    #[arg(long)]
    homeassistant: bool,
    /// Home Assistant's discovery prefix
    #[arg(long, value_name = "P", default_value = "homeassistant")]
    homeassistant_prefix: String,
    /// Seconds the alert stays on after a camera's last match (1-86400)
    #[arg(long, value_name = "S", default_value_t = 30,
          value_parser = clap::value_parser!(u32).range(1..=86400))]
    homeassistant_off_delay: u32,
    /// A camera to announce at connection, before its first event (repeat it); with
    /// --homeassistant-remove, the cameras whose entities to remove
    #[arg(long = "camera", value_name = "ID")]
    cameras: Vec<String>,
    /// Remove faceveil's Home Assistant entities from the broker (their retained configs and
    /// states: of the --camera named, else of every camera), then exit; stop the bridge first
    #[arg(long)]
    homeassistant_remove: bool,
}

/// A first topic level (`--prefix`, `--homeassistant-prefix`): not empty, no wildcard, no NUL.
fn check_prefix(option: &str, p: &str) -> Result<(), String> {
    if p.is_empty() || p.contains(['+', '#', '\0']) || p.starts_with('/') || p.ends_with('/') {
        return Err(format!(
            "{option} {p:?}: must be a topic without '+', '#', NUL or a '/' at either end"
        ));
    }
    Ok(())
}

/// `HOST:PORT`, with an IPv6 address in brackets: the host (without them) and the port.
fn split_broker(broker: &str) -> Option<(String, u16)> {
    let (host, port) = broker.rsplit_once(':')?;
    let port = port.parse::<u16>().ok()?;
    let host = match host.strip_prefix('[') {
        Some(h) => h
            .strip_suffix(']')?
            .parse::<std::net::Ipv6Addr>()
            .ok()?
            .to_string(),
        None if host.contains(':') => return None,
        None => host.to_string(),
    };
    (!host.is_empty()).then_some((host, port))
}

/// Whether `host` is this machine: `localhost`, an address of 127.0.0.0/8 or `::1`, or a name
/// every address of which is one of those. A name that does not resolve is an error.
fn is_loopback(host: &str, port: u16) -> Result<bool, String> {
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(true);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip.to_canonical().is_loopback());
    }
    let addrs: Vec<_> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host} to tell whether it is this machine ({e})"))?
        .collect();
    Ok(!addrs.is_empty() && addrs.iter().all(|a| a.ip().to_canonical().is_loopback()))
}

/// The password: the first line of `path`, read under the key file's rule.
fn read_password(path: &std::path::Path) -> Result<String, String> {
    let p = path.display();
    let (text, warning) = read_secret_file(path, "password file", 4096)
        .map_err(|e| format!("--password-file {p}: {e}"))?;
    if let Some(w) = warning {
        eprintln!("faceveil-mqtt: warning: {w}");
    }
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(format!(
            "--password-file {p}: its first line, the password, is empty"
        ));
    }
    Ok(line.to_string())
}

/// What to say about a connection error that the next try would meet again; `None` for those
/// worth retrying (a broker that is down, a network that went away).
fn fatal(e: &ConnectionError, trusts: &str, host: &str) -> Option<String> {
    match e {
        ConnectionError::ConnectionRefused(
            code @ (ConnectReturnCode::BadUserNamePassword | ConnectReturnCode::NotAuthorized),
        ) => Some(format!(
            "the broker refused the login ({code:?}): check --username and --password-file, and \
             the broker's password file and access rules"
        )),
        ConnectionError::ConnectionRefused(
            code @ (ConnectReturnCode::RefusedProtocolVersion | ConnectReturnCode::BadClientId),
        ) => Some(format!("the broker refused the connection ({code:?})")),
        _ => tls::rustls_error(e).and_then(|r| tls::fatal(r, trusts, host)),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let usage = |msg: String| {
        eprintln!("faceveil-mqtt: {msg}");
        ExitCode::from(2)
    };
    for (option, p) in [
        ("--prefix", &cli.prefix),
        ("--homeassistant-prefix", &cli.homeassistant_prefix),
    ] {
        if let Err(e) = check_prefix(option, p) {
            return usage(e);
        }
    }
    if !cli.cameras.is_empty() && !cli.homeassistant && !cli.homeassistant_remove {
        return usage("--camera: only with --homeassistant or --homeassistant-remove".into());
    }
    if cli.cameras.iter().any(String::is_empty) {
        return usage("--camera: an empty camera id".into());
    }
    let Some((host, port)) = split_broker(&cli.broker) else {
        return usage(format!(
            "--broker {}: expected HOST:PORT ([ADDRESS]:PORT for IPv6)",
            cli.broker
        ));
    };
    if cli.tls && host.contains(':') {
        // rumqttc gives rustls the host as written, which cannot be an IPv6 address in brackets.
        return usage(format!(
            "--broker {}: --tls needs a host name or an IPv4 address",
            cli.broker
        ));
    }
    if !cli.tls && !cli.insecure_plaintext {
        match is_loopback(&host, port) {
            Ok(true) => {}
            Ok(false) => {
                return usage(format!(
                    "refusing plain TCP to {host}, which is not this machine: the events (with \
                     the labels of the people matched) would travel unencrypted. Use --tls (the \
                     broker's TLS listener), or --insecure-plaintext on a network you trust"
                ));
            }
            Err(e) => {
                return usage(format!(
                    "refusing plain TCP: {e}. Use --tls, or --insecure-plaintext on a network \
                     you trust"
                ));
            }
        }
    }

    // rumqttc connects to "host:port", where an IPv6 address needs its brackets back.
    let connect_host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.clone()
    };
    // A removal runs beside a bridge's session, never in it (the broker would end the bridge's).
    let client_id = if cli.homeassistant_remove {
        format!("{}-remove", cli.client_id)
    } else {
        cli.client_id.clone()
    };
    let mut options = MqttOptions::new(client_id, connect_host, port);
    options.set_keep_alive(Duration::from_secs(5));
    // Keep unacknowledged QoS 1 events across reconnections.
    options.set_clean_session(cli.homeassistant_remove);
    let availability = homeassistant::availability_topic(&cli.prefix, &cli.client_id);
    if cli.homeassistant && !cli.homeassistant_remove {
        // The broker says `offline` (retained) for a bridge that goes without a word.
        options.set_last_will(LastWill::new(
            &availability,
            homeassistant::OFFLINE,
            QoS::AtLeastOnce,
            true,
        ));
    }
    if let (Some(user), Some(file)) = (&cli.username, &cli.password_file) {
        match read_password(file) {
            Ok(password) => {
                options.set_credentials(user, password);
            }
            Err(e) => return usage(e),
        }
    }
    let mut trusts = String::new();
    if cli.tls {
        let client = cli.client_cert.as_deref().zip(cli.client_key.as_deref());
        match tls::config(cli.ca_file.as_deref(), client) {
            Ok(t) => {
                options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
                    t.config,
                )));
                trusts = t.trusts;
            }
            Err(e) => return usage(e),
        }
    }
    let link = Link {
        broker: cli.broker.clone(),
        host,
        trusts,
    };
    if cli.homeassistant_remove {
        return remove(options, &link, &cli);
    }
    let ha = cli.homeassistant.then(|| {
        Announcer::new(
            Discovery {
                ha_prefix: cli.homeassistant_prefix.clone(),
                prefix: cli.prefix.clone(),
                availability,
                off_delay: cli.homeassistant_off_delay,
            },
            &cli.cameras,
        )
    });
    bridge(options, link, cli.prefix, ha)
}

/// The broker as the messages name it, and what its TLS trusts.
struct Link {
    broker: String,
    host: String,
    trusts: String,
}

impl Link {
    fn connected(&self) {
        eprintln!(
            "faceveil-mqtt: connected to {}{}",
            self.broker,
            if self.trusts.is_empty() {
                String::new()
            } else {
                format!(" (TLS, verified against {})", self.trusts)
            }
        );
    }

    /// A failed poll: the bridge ends on what retrying cannot cure, and otherwise says what went
    /// wrong (`up`: the connection was up; `last_error`: the failure said last) and waits a second
    /// before the next poll reconnects.
    fn failed(&self, e: &ConnectionError, up: bool, last_error: &mut String) {
        if let Some(why) = fatal(e, &self.trusts, &self.host) {
            eprintln!("faceveil-mqtt: {}: {why}", self.broker);
            std::process::exit(1);
        }
        let text = e.to_string();
        if up {
            eprintln!("faceveil-mqtt: connection lost ({text}); reconnecting");
        } else if text != *last_error {
            eprintln!(
                "faceveil-mqtt: cannot connect to {} ({text}); retrying every second",
                self.broker
            );
        }
        *last_error = text;
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// What the bridge's loop waits for.
enum Input {
    /// A line of standard input.
    Line(String),
    /// The connection came up (see the count of connections).
    Wake,
    /// Standard input ended.
    End,
}

/// Publishes `payload` to `topic`, QoS 1; a failure is said on standard error.
fn publish(client: &Client, topic: &str, retain: bool, payload: impl Into<Vec<u8>>) {
    if let Err(e) = client.publish(topic, QoS::AtLeastOnce, retain, payload) {
        eprintln!("faceveil-mqtt: {topic}: {e}");
    }
}

fn publish_retained(client: &Client, messages: Vec<homeassistant::Retained>) {
    for m in messages {
        publish(client, &m.topic, true, m.payload);
    }
}

/// The bridge: standard input's events to the broker until standard input ends, and with `ha`
/// the Home Assistant entities of the cameras.
fn bridge(options: MqttOptions, link: Link, prefix: String, mut ha: Option<Announcer>) -> ExitCode {
    let (client, mut connection) = Client::new(options, 1000);
    // Bounded: a broker that is away long enough holds standard input back, as before.
    let (tx, rx) = mpsc::sync_channel::<Input>(64);
    let connects = Arc::new(AtomicU64::new(0));

    // The connection must be polled for anything to be sent; a failed poll is a lost connection,
    // and the next poll reconnects.
    let (wake, count) = (tx.clone(), Arc::clone(&connects));
    std::thread::spawn(move || {
        let mut up = false;
        let mut last_error = String::new();
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    up = true;
                    last_error.clear();
                    link.connected();
                    count.fetch_add(1, Ordering::SeqCst);
                    // Full: the loop is busy, and sees the count after its next message.
                    let _ = wake.try_send(Input::Wake);
                }
                Ok(_) => {}
                Err(e) => {
                    link.failed(&e, up, &mut last_error);
                    up = false;
                }
            }
        }
    });
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(Input::Line(line)).is_err() {
                return;
            }
        }
        let _ = tx.send(Input::End);
    });

    let mut seen_connects = 0;
    loop {
        let wait = ha
            .as_ref()
            .and_then(Announcer::next_off)
            .map_or(Duration::from_secs(3600), |t| {
                t.saturating_duration_since(Instant::now())
            });
        let input = rx.recv_timeout(wait);
        if let Some(ha) = &mut ha {
            let n = connects.load(Ordering::SeqCst);
            if n != seen_connects {
                seen_connects = n;
                publish_retained(&client, ha.connected());
            }
        }
        match input {
            Ok(Input::Line(line)) => forward(&client, &prefix, ha.as_mut(), line),
            Ok(Input::Wake) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Ok(Input::End) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if let Some(ha) = &mut ha {
            publish_retained(&client, ha.expire(Instant::now()));
        }
    }
    if let Some(ha) = &mut ha {
        publish_retained(&client, ha.close());
    }
    // Standard input ended: give the last events a moment to be acknowledged.
    std::thread::sleep(Duration::from_secs(2));
    let _ = client.disconnect();
    ExitCode::SUCCESS
}

/// One line of standard input: a `faceveil-match`, `faceveil-unknown` or `faceveil-health` event
/// to `<prefix>/<camera>/match|unknown|health`; with `ha`, its camera announced first and a
/// match's alert and label. Other lines are skipped.
fn forward(client: &Client, prefix: &str, mut ha: Option<&mut Announcer>, line: String) {
    let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
        eprintln!("faceveil-mqtt: not a JSON event, skipped: {line}");
        return;
    };
    let kind = match event["event"].as_str() {
        Some("faceveil-match") => "match",
        Some("faceveil-unknown") => "unknown",
        Some("faceveil-health") => "health",
        _ => return,
    };
    let camera = event["camera-id"].as_str().unwrap_or("unknown-camera");
    if let Some(ha) = &mut ha {
        match ha.seen(camera) {
            Ok(configs) => publish_retained(client, configs),
            Err(warning) => eprintln!("faceveil-mqtt: warning: {warning}"),
        }
    }
    let topic = format!("{prefix}/{}/{kind}", homeassistant::topic_level(camera));
    publish(client, &topic, false, line.into_bytes());
    if let (Some(ha), "match") = (ha, kind) {
        // Only a match names someone, a person on the list: an unknown's event has no label.
        let label = event["label"].as_str();
        publish_retained(client, ha.matched(camera, label, Instant::now()));
    }
}

/// How long a removal waits for the broker, and for retained configs once subscribed.
const REMOVE_CONNECT: Duration = Duration::from_secs(15);
const REMOVE_QUIET: Duration = Duration::from_secs(1);
const REMOVE_LIMIT: Duration = Duration::from_secs(60);

/// `--homeassistant-remove`: finds faceveil's retained discovery configs under the discovery
/// prefix, clears them and their retained states (an empty retained message each), waits for the
/// broker to acknowledge every one, and exits.
fn remove(options: MqttOptions, link: &Link, cli: &Cli) -> ExitCode {
    let (client, mut connection) = Client::new(options, 10_000);
    let start = Instant::now();
    let mut up = false;
    let mut last_error = String::new();
    let mut found: Vec<(String, String)> = Vec::new();
    // Since when retained configs have been arriving, once subscribed.
    let mut quiet_since: Option<Instant> = None;
    // The topics cleared, once published, and the acknowledgements awaited.
    let mut clearing: Option<homeassistant::Removal> = None;
    let mut acks = 0usize;
    loop {
        if start.elapsed() > REMOVE_LIMIT {
            eprintln!(
                "faceveil-mqtt: the broker {} did not acknowledge the removal within {} s",
                link.broker,
                REMOVE_LIMIT.as_secs()
            );
            return ExitCode::from(1);
        }
        if !up && clearing.is_none() && start.elapsed() > REMOVE_CONNECT {
            eprintln!(
                "faceveil-mqtt: cannot remove the Home Assistant entities: no connection to {} \
                 within {} s",
                link.broker,
                REMOVE_CONNECT.as_secs()
            );
            return ExitCode::from(1);
        }
        match connection.recv_timeout(Duration::from_millis(100)) {
            Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                up = true;
                link.connected();
                let filters = homeassistant::config_filters(&cli.homeassistant_prefix);
                if let Err(e) = client.subscribe_many(
                    filters
                        .into_iter()
                        .map(|f| SubscribeFilter::new(f, QoS::AtLeastOnce)),
                ) {
                    eprintln!("faceveil-mqtt: subscribe: {e}");
                    return ExitCode::from(1);
                }
            }
            Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => quiet_since = Some(Instant::now()),
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) => {
                if clearing.is_none() && !p.payload.is_empty() {
                    found.push((
                        p.topic.clone(),
                        String::from_utf8_lossy(&p.payload).into_owned(),
                    ));
                    quiet_since = quiet_since.map(|_| Instant::now());
                }
            }
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => {
                acks += 1;
                if let Some(r) = clearing.as_ref().filter(|r| acks >= r.topics.len()) {
                    let cameras: Vec<&str> = r
                        .nodes
                        .iter()
                        .map(|n| n.strip_prefix("faceveil_").unwrap_or(n))
                        .collect();
                    eprintln!(
                        "faceveil-mqtt: removed the Home Assistant entities of {} camera(s) \
                         under {}/: {} ({} retained topics cleared)",
                        cameras.len(),
                        cli.homeassistant_prefix,
                        cameras.join(", "),
                        r.topics.len()
                    );
                    let _ = client.disconnect();
                    return ExitCode::SUCCESS;
                }
            }
            Ok(Ok(_)) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Err(e)) => {
                link.failed(&e, up, &mut last_error);
                up = false;
                // A new session: subscribe again, collect again (a clearing under way goes on:
                // QoS 1 publishes are sent again).
                if clearing.is_none() {
                    found.clear();
                    quiet_since = None;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return ExitCode::from(1),
        }
        if clearing.is_none() && quiet_since.is_some_and(|t| t.elapsed() >= REMOVE_QUIET) {
            let r = homeassistant::removals(
                &cli.homeassistant_prefix,
                &cli.prefix,
                &found,
                &cli.cameras,
            );
            for camera in &r.missing {
                eprintln!(
                    "faceveil-mqtt: camera {camera:?} has no entities under {}/",
                    cli.homeassistant_prefix
                );
            }
            if r.topics.is_empty() {
                eprintln!(
                    "faceveil-mqtt: no faceveil entities under {}/: nothing removed",
                    cli.homeassistant_prefix
                );
                let _ = client.disconnect();
                return ExitCode::SUCCESS;
            }
            for topic in &r.topics {
                publish(&client, topic, true, Vec::new());
            }
            clearing = Some(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_addresses_split_with_ipv6_in_brackets() {
        assert_eq!(
            split_broker("mqtt.example:8883"),
            Some(("mqtt.example".into(), 8883))
        );
        assert_eq!(split_broker("[::1]:1883"), Some(("::1".into(), 1883)));
        assert_eq!(split_broker("::1:1883"), None);
        assert_eq!(split_broker("[mqtt]:1883"), None);
        assert_eq!(split_broker(":1883"), None);
        assert_eq!(split_broker("host:port"), None);
    }

    #[test]
    fn only_this_machine_is_loopback() {
        for h in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.3.2.1",
            "::1",
            "::ffff:127.0.0.1",
        ] {
            assert_eq!(is_loopback(h, 1883), Ok(true), "{h}");
        }
        for h in [
            "192.0.2.1",
            "10.0.0.1",
            "::ffff:192.0.2.1",
            "2001:db8::1",
            "0.0.0.0",
        ] {
            assert_eq!(is_loopback(h, 1883), Ok(false), "{h}");
        }
        // .invalid never resolves (RFC 6761)
        let e = is_loopback("broker.invalid", 1883).unwrap_err();
        assert!(e.contains("cannot resolve broker.invalid"), "{e}");
    }

    #[test]
    fn refused_logins_end_the_bridge_and_a_busy_broker_does_not() {
        let bad = ConnectionError::ConnectionRefused(ConnectReturnCode::NotAuthorized);
        let text = fatal(&bad, "", "h").expect("fatal");
        assert!(text.contains("--password-file"), "{text}");
        let busy = ConnectionError::ConnectionRefused(ConnectReturnCode::ServiceUnavailable);
        assert!(fatal(&busy, "", "h").is_none());
        let down = ConnectionError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(fatal(&down, "", "h").is_none());
        let cert = ConnectionError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        ));
        let text = fatal(&cert, "the system's trust store (3 CA certificates)", "h").unwrap();
        assert!(text.contains("against the system's trust store"), "{text}");
    }
}
