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
//! lines are skipped. When the broker
//! goes away the bridge keeps reading, holds events in order, reconnects every second and delivers
//! them when the broker is back. It exits when standard input ends.
//!
//! Events name the people matched, so they do not leave the machine in clear: plain TCP is refused
//! to a broker that is not on this machine unless `--insecure-plaintext` says so. A broker that
//! refuses the login, and a TLS handshake that fails on a certificate, end the bridge (exit 1):
//! retrying would fail the same way. Errors of the command line and of the files it names exit 2.

mod tls;

use std::io::BufRead;
use std::net::{IpAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use gstfaceveil::engine::secret_file::read_secret_file;
use rumqttc::{
    Client, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, QoS, TlsConfiguration,
    Transport,
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
    let mut options = MqttOptions::new(cli.client_id, connect_host, port);
    options.set_keep_alive(Duration::from_secs(5));
    // Keep unacknowledged QoS 1 events across reconnections.
    options.set_clean_session(false);
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
    let (client, mut connection) = Client::new(options, 1000);

    // The connection must be polled for anything to be sent; a failed poll is a lost connection,
    // and the next poll reconnects.
    let broker = cli.broker;
    std::thread::spawn(move || {
        let mut up = false;
        let mut last_error = String::new();
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    up = true;
                    last_error.clear();
                    eprintln!(
                        "faceveil-mqtt: connected to {broker}{}",
                        if trusts.is_empty() {
                            String::new()
                        } else {
                            format!(" (TLS, verified against {trusts})")
                        }
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    if let Some(why) = fatal(&e, &trusts, &host) {
                        eprintln!("faceveil-mqtt: {broker}: {why}");
                        std::process::exit(1);
                    }
                    let text = e.to_string();
                    if up {
                        eprintln!("faceveil-mqtt: connection lost ({text}); reconnecting");
                    } else if text != last_error {
                        eprintln!(
                            "faceveil-mqtt: cannot connect to {broker} ({text}); retrying every \
                             second"
                        );
                    }
                    up = false;
                    last_error = text;
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    });

    let prefix = cli.prefix;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            eprintln!("faceveil-mqtt: not a JSON event, skipped: {line}");
            continue;
        };
        let kind = match event["event"].as_str() {
            Some("faceveil-match") => "match",
            Some("faceveil-unknown") => "unknown",
            Some("faceveil-health") => "health",
            _ => continue,
        };
        let camera = event["camera-id"]
            .as_str()
            .unwrap_or("unknown-camera")
            .replace(['/', '+', '#'], "_");
        let topic = format!("{prefix}/{camera}/{kind}");
        if let Err(e) = client.publish(&topic, QoS::AtLeastOnce, false, line.into_bytes()) {
            eprintln!("faceveil-mqtt: {topic}: {e}");
        }
    }
    // Standard input ended: give the last events a moment to be acknowledged.
    std::thread::sleep(Duration::from_secs(2));
    let _ = client.disconnect();
    ExitCode::SUCCESS
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
