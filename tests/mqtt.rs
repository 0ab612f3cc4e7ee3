// SPDX-License-Identifier: MIT
//! The MQTT bridge against a real mosquitto on 127.0.0.1 (Debian package, installed by
//! scripts/setup.sh): events from the `nvr` example arrive on `faceveil/<camera>/match`, and the
//! bridge delivers again after the broker restarts. Over TLS with a password file and a client
//! certificate, all made at test time (`openssl`, `mosquitto_passwd`): events arrive (with
//! `--ca-file`, and with the system's trust store as `SSL_CERT_FILE` names it); a wrong
//! password, a CA that did not sign the broker's certificate and a host the certificate does not
//! name end the bridge with a clear error; plain TCP to another machine is refused before any
//! connection. Home Assistant discovery: the retained configs against the schema, a real match
//! that turns the alert on and sets the label, the alert off after the delay, the last will,
//! hostile camera ids, the configs back after a broker restart, and their removal. Two runner
//! processes (two hosts, each with its copy of the list) on one broker: both cameras' events.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use common::{free_port, obama_list, require_runtime, scratch};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS, TlsConfiguration, Transport};

fn mosquitto_bin() -> PathBuf {
    for p in ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"] {
        if std::path::Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    panic!("mosquitto is not installed: run scripts/setup.sh (Debian package mosquitto)");
}

struct Broker(Child);

impl Broker {
    fn start(port: u16) -> Broker {
        Broker::spawn(&["-p", &port.to_string()], &[port])
    }

    /// mosquitto with the configuration file `config`, once it listens on every one of `ports`.
    fn start_with(config: &Path, ports: &[u16]) -> Broker {
        Broker::spawn(&["-c", config.to_str().unwrap()], ports)
    }

    fn spawn(args: &[&str], ports: &[u16]) -> Broker {
        let mut child = Command::new(mosquitto_bin())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t = Instant::now();
        for &port in ports {
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "mosquitto exited ({:?})",
                    args
                );
                assert!(
                    t.elapsed() < Duration::from_secs(10),
                    "mosquitto did not start"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Broker(child)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Subscribes to `topic` and forwards (topic, payload) of what arrives.
fn subscribe(port: u16, id: &str, topic: &'static str) -> mpsc::Receiver<(String, String)> {
    subscribe_with(MqttOptions::new(id, "127.0.0.1", port), topic)
}

/// [`subscribe`] with these options (TLS, a login).
fn subscribe_with(mut o: MqttOptions, topic: &'static str) -> mpsc::Receiver<(String, String)> {
    o.set_keep_alive(Duration::from_secs(5));
    let (client, mut connection) = Client::new(o, 10);
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _keep = client.clone();
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    client.subscribe(topic, QoS::AtLeastOnce).unwrap();
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    let _ = ready_tx.send(());
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx
                        .send((
                            p.topic.clone(),
                            String::from_utf8_lossy(&p.payload).to_string(),
                        ))
                        .is_err()
                    {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("subscribed");
    rx
}

#[test]
fn bridge_publishes_nvr_events_and_survives_a_broker_restart() {
    require_runtime();
    let d = scratch("mqtt");
    let list = obama_list(&d);
    let video = common::clip(&d, &[("obama2.jpg", 20)]);
    let port = free_port();
    let broker = Broker::start(port);
    let rx = subscribe(port, "test-sub-1", "faceveil/+/match");

    // nvr on a clip of the enrolled person, its JSON lines piped into the bridge
    let mut nvr = Command::new(env!("CARGO_BIN_EXE_faceveil-nvr"))
        .arg("--watchlist")
        .arg(&list)
        .arg(format!("porch={}", video.display()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut bridge = Command::new(env!("CARGO_BIN_EXE_faceveil-mqtt"))
        .args([
            "--broker",
            &format!("127.0.0.1:{port}"),
            "--client-id",
            "bridge-1",
        ])
        .stdin(Stdio::from(nvr.stdout.take().unwrap()))
        .spawn()
        .unwrap();
    let (topic, payload) = rx
        .recv_timeout(Duration::from_secs(90))
        .expect("a match event over MQTT");
    assert_eq!(topic, "faceveil/porch/match");
    let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(v["label"], "obama");
    assert_eq!(v["camera-id"], "porch");
    assert!(nvr.wait().unwrap().success());
    assert!(bridge.wait().unwrap().success());

    // a bridge fed by hand, across a broker restart
    let mut bridge = Command::new(env!("CARGO_BIN_EXE_faceveil-mqtt"))
        .args([
            "--broker",
            &format!("127.0.0.1:{port}"),
            "--client-id",
            "bridge-2",
        ])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = bridge.stdin.take().unwrap();
    let event = |n: u32| {
        format!(
            "{{\"event\":\"faceveil-match\",\"camera-id\":\"gate\",\"label\":\"obama\",\"frame\":{n}}}\n"
        )
    };
    stdin.write_all(event(1).as_bytes()).unwrap();
    let (topic, payload) = rx.recv_timeout(Duration::from_secs(20)).expect("event 1");
    assert_eq!(topic, "faceveil/gate/match");
    assert!(payload.contains("\"frame\":1"));
    drop(rx);
    drop(broker);
    std::thread::sleep(Duration::from_secs(2));
    let _broker = Broker::start(port);
    let rx = subscribe(port, "test-sub-2", "faceveil/#");
    stdin.write_all(event(2).as_bytes()).unwrap();
    let (_, payload) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("event 2 after the broker restarted");
    assert!(payload.contains("\"frame\":2"), "{payload}");
    // the runner's health line goes to its camera's health topic; a line of no known event and a
    // line that is not JSON go nowhere
    let health = "{\"event\":\"faceveil-health\",\"camera-id\":\"gate\",\"state\":\"running\"}\n";
    stdin
        .write_all(
            format!("{{\"event\":\"other\",\"camera-id\":\"gate\"}}\nnot json\n{health}")
                .as_bytes(),
        )
        .unwrap();
    let (topic, payload) = rx.recv_timeout(Duration::from_secs(20)).expect("health");
    assert_eq!(topic, "faceveil/gate/health");
    assert_eq!(payload, health.trim_end());
    assert!(
        bridge.try_wait().unwrap().is_none(),
        "the bridge must keep running"
    );
    drop(stdin);
    assert!(bridge.wait().unwrap().success());
    std::fs::remove_dir_all(d).unwrap();
}

/// Two hosts, one broker (docs/SCALING.md): two `faceveil-nvr` runner processes, each with its own
/// camera and its own copy of the same list (the file and its key copied as a deployment copies
/// them to every host), each piped into its own bridge (its own client id), publish to one
/// mosquitto; a subscriber sees both cameras' matches, each under its camera's topic.
#[test]
fn two_runners_on_one_broker_deliver_both_cameras_events() {
    require_runtime();
    let d = scratch("mqtt-two-runners");
    let list = obama_list(&d);
    let video = common::clip(&d, &[("obama2.jpg", 20)]);
    // host b's copy of the list, as the operator distributes it
    let b = d.join("host-b");
    std::fs::create_dir_all(&b).unwrap();
    for f in ["w.fvl", "w.fvl.key"] {
        std::fs::copy(d.join(f), b.join(f)).unwrap();
    }
    let port = free_port();
    let _broker = Broker::start(port);
    let rx = subscribe(port, "test-sub-two", "faceveil/+/match");
    let runner = |list: &Path, camera: &str, client: &str| {
        let mut nvr = Command::new(env!("CARGO_BIN_EXE_faceveil-nvr"))
            .arg("--watchlist")
            .arg(list)
            .arg(format!("{camera}={}", video.display()))
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let bridge = Command::new(env!("CARGO_BIN_EXE_faceveil-mqtt"))
            .args([
                "--broker",
                &format!("127.0.0.1:{port}"),
                "--client-id",
                client,
            ])
            .stdin(Stdio::from(nvr.stdout.take().unwrap()))
            .spawn()
            .unwrap();
        (nvr, bridge)
    };
    let mut hosts = [
        runner(&list, "porch", "host-a"),
        runner(&b.join("w.fvl"), "garage", "host-b"),
    ];
    let mut seen = std::collections::BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.len() < 2 && Instant::now() < deadline {
        if let Ok((topic, payload)) = rx.recv_timeout(Duration::from_secs(1)) {
            let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
            assert_eq!(v["label"], "obama", "{payload}");
            let camera = v["camera-id"].as_str().unwrap().to_string();
            assert_eq!(topic, format!("faceveil/{camera}/match"));
            seen.entry(camera).or_insert(payload);
        }
    }
    assert_eq!(
        seen.keys().map(String::as_str).collect::<Vec<_>>(),
        ["garage", "porch"],
        "both hosts' cameras: {seen:?}"
    );
    for (nvr, bridge) in &mut hosts {
        assert!(nvr.wait().unwrap().success());
        assert!(bridge.wait().unwrap().success());
    }
    std::fs::remove_dir_all(d).unwrap();
}

/// Runs `openssl` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is not installed: run scripts/setup.sh (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The extensions of the test certificates (no dependence on the system's openssl.cnf).
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// Test certificates, made in `dir`: a CA (`ca.pem`) that signed the broker's certificate (for
/// the IP address 127.0.0.1 only) and a client certificate (`client.pem`, `client.key`), and
/// another CA (`other-ca.pem`) that signed neither.
fn make_pki(dir: &Path) {
    std::fs::write(dir.join("openssl.cnf"), OPENSSL_CNF).unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for (name, cn) in [("ca", "faceveil test CA"), ("other-ca", "another CA")] {
        let (key, pem, subj) = (
            format!("{name}.key"),
            format!("{name}.pem"),
            format!("/CN={cn}"),
        );
        let mut args = vec![
            "req",
            "-x509",
            "-config",
            "openssl.cnf",
            "-extensions",
            "ca",
        ];
        args.extend(ec);
        args.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
        openssl(dir, &args);
    }
    for (name, serial) in [("server", "2"), ("client", "3")] {
        let (key, csr, pem, subj) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("/CN=faceveil test {name}"),
        );
        let mut args = vec!["req", "-new", "-config", "openssl.cnf"];
        args.extend(ec);
        args.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
        openssl(dir, &args);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                serial,
                "-days",
                "2",
                "-extfile",
                "openssl.cnf",
                "-extensions",
                name,
                "-out",
                &pem,
            ],
        );
    }
    std::fs::set_permissions(
        dir.join("client.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
}

const USER: &str = "faceveil";
const PASSWORD: &str = "correct horse battery staple";

/// mosquitto with two TLS listeners on 127.0.0.1 (`tls_port`: server certificate only;
/// `mtls_port`: a client certificate signed by the test CA required too), logins from a password
/// file made with `mosquitto_passwd`, no anonymous clients.
fn tls_broker(dir: &Path, tls_port: u16, mtls_port: u16) -> Broker {
    make_pki(dir);
    let passwd = dir.join("passwd");
    let out = Command::new("mosquitto_passwd")
        .args(["-c", "-b"])
        .arg(&passwd)
        .args([USER, PASSWORD])
        .output()
        .expect("mosquitto_passwd (Debian package mosquitto)");
    assert!(out.status.success(), "{out:?}");
    // mosquitto started as root drops to `user`: keep it the user that wrote the files.
    let me = Command::new("id").arg("-un").output().unwrap();
    let me = String::from_utf8(me.stdout).unwrap();
    let d = dir.display();
    let tls = format!("cafile {d}/ca.pem\ncertfile {d}/server.pem\nkeyfile {d}/server.key\n");
    let config = dir.join("mosquitto.conf");
    std::fs::write(
        &config,
        format!(
            "user {}\nper_listener_settings false\nallow_anonymous false\npassword_file {}\n\
             listener {tls_port} 127.0.0.1\n{tls}\
             listener {mtls_port} 127.0.0.1\n{tls}require_certificate true\n",
            me.trim(),
            passwd.display()
        ),
    )
    .unwrap();
    Broker::start_with(&config, &[tls_port, mtls_port])
}

/// A subscriber over TLS (trusting the test CA) with the test login.
fn subscribe_tls(dir: &Path, port: u16, id: &str) -> mpsc::Receiver<(String, String)> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(dir.join("ca.pem")).unwrap();
    for cert in pem_certs(&ca) {
        roots.add(cert).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_credentials(USER, PASSWORD);
    o.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
        Arc::new(config),
    )));
    subscribe_with(o, "faceveil/+/match")
}

/// The certificates of a PEM text.
fn pem_certs(pem: &[u8]) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    rustls::pki_types::CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .unwrap()
}

/// A password file of `password`, mode 0600.
fn password_file(dir: &Path, name: &str, password: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{password}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// A bridge started with `args`, its standard input open, its standard error collected.
struct Bridge {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    stderr: mpsc::Receiver<String>,
}

impl Bridge {
    fn start(args: &[&str]) -> Bridge {
        Bridge::start_env(args, &[])
    }

    /// [`Bridge::start`] with these environment variables.
    fn start_env(args: &[&str], env: &[(&str, &Path)]) -> Bridge {
        let mut child = Command::new(env!("CARGO_BIN_EXE_faceveil-mqtt"))
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = child.stderr.take().unwrap();
        let (tx, stderr) = mpsc::channel();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            let _ = tx.send(text);
        });
        let stdin = child.stdin.take();
        Bridge {
            child,
            stdin,
            stderr,
        }
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Its exit status and standard error, once it has exited by itself within `within` (standard
    /// input stays open); a bridge still running then is killed and the test fails.
    fn exited(mut self, within: Duration) -> (ExitStatus, String) {
        let t = Instant::now();
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if t.elapsed() > within {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "the bridge did not exit: {}",
                    self.stderr.recv().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        drop(self.stdin.take());
        (status, self.stderr.recv().unwrap())
    }

    /// Ends standard input; its exit status and standard error.
    fn finish(mut self) -> (ExitStatus, String) {
        drop(self.stdin.take());
        self.exited(Duration::from_secs(20))
    }
}

const EVENT: &str = r#"{"event":"faceveil-match","camera-id":"gate","label":"obama","frame":7}"#;

#[test]
fn tls_bridge_with_a_password_file_and_a_client_certificate_delivers_events() {
    let d = scratch("mqtt-tls");
    let (tls_port, mtls_port) = (free_port(), free_port());
    let _broker = tls_broker(&d, tls_port, mtls_port);
    let rx = subscribe_tls(&d, tls_port, "tls-sub");
    let pw = password_file(&d, "pw", PASSWORD);
    let (ca, cert, key) = (d.join("ca.pem"), d.join("client.pem"), d.join("client.key"));
    let broker = format!("127.0.0.1:{mtls_port}");
    let mut bridge = Bridge::start(&[
        "--broker",
        &broker,
        "--tls",
        "--ca-file",
        ca.to_str().unwrap(),
        "--client-cert",
        cert.to_str().unwrap(),
        "--client-key",
        key.to_str().unwrap(),
        "--username",
        USER,
        "--password-file",
        pw.to_str().unwrap(),
        "--client-id",
        "tls-bridge",
    ]);
    // the password is in no argument of the running bridge
    let argv = std::fs::read(format!("/proc/{}/cmdline", bridge.child.id())).unwrap();
    assert!(!String::from_utf8_lossy(&argv).contains(PASSWORD));
    bridge.send(EVENT);
    let (topic, payload) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the event over TLS");
    assert_eq!(topic, "faceveil/gate/match");
    assert_eq!(payload, EVENT);
    let (status, stderr) = bridge.finish();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "connected to {broker} (TLS, verified against the CA of --ca-file {}",
            ca.display()
        )),
        "{stderr}"
    );

    // without --ca-file: the system's trust store, here the test CA alone (SSL_CERT_FILE, and an
    // SSL_CERT_DIR without certificates)
    let tls_broker = format!("127.0.0.1:{tls_port}");
    let empty = d.join("no-certs");
    std::fs::create_dir(&empty).unwrap();
    let mut bridge = Bridge::start_env(
        &[
            "--broker",
            &tls_broker,
            "--tls",
            "--username",
            USER,
            "--password-file",
            pw.to_str().unwrap(),
            "--client-id",
            "tls-bridge-system-store",
        ],
        &[("SSL_CERT_FILE", &ca), ("SSL_CERT_DIR", &empty)],
    );
    bridge.send(EVENT);
    let (_, payload) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the event, the broker verified with the system's trust store");
    assert_eq!(payload, EVENT);
    let (status, stderr) = bridge.finish();
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("verified against the system's trust store (1 CA certificate)"),
        "{stderr}"
    );

    // the listener that requires a client certificate, without one
    let mut bridge = Bridge::start(&[
        "--broker",
        &broker,
        "--tls",
        "--ca-file",
        ca.to_str().unwrap(),
        "--username",
        USER,
        "--password-file",
        pw.to_str().unwrap(),
        "--client-id",
        "tls-bridge-no-cert",
    ]);
    bridge.send(EVENT);
    let (status, stderr) = bridge.exited(Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("--client-cert"), "{stderr}");
    assert!(rx.recv_timeout(Duration::from_secs(2)).is_err());
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_wrong_password_or_an_unknown_ca_ends_the_bridge_with_the_reason() {
    let d = scratch("mqtt-tls-refused");
    let (tls_port, mtls_port) = (free_port(), free_port());
    let _broker = tls_broker(&d, tls_port, mtls_port);
    let rx = subscribe_tls(&d, tls_port, "refused-sub");
    let good = password_file(&d, "good", PASSWORD);
    let wrong = password_file(&d, "wrong", "tr0ub4dor&3");
    let run = |broker: String, ca: &str, pw: &Path| {
        let ca = d.join(ca);
        let mut bridge = Bridge::start(&[
            "--broker",
            &broker,
            "--tls",
            "--ca-file",
            ca.to_str().unwrap(),
            "--username",
            USER,
            "--password-file",
            pw.to_str().unwrap(),
        ]);
        bridge.send(EVENT);
        bridge.exited(Duration::from_secs(20))
    };

    let (status, stderr) = run(format!("127.0.0.1:{tls_port}"), "ca.pem", &wrong);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the broker refused the login") && stderr.contains("--password-file"),
        "{stderr}"
    );
    assert!(!stderr.contains("tr0ub4dor"), "{stderr}");

    let (status, stderr) = run(format!("127.0.0.1:{tls_port}"), "other-ca.pem", &good);
    assert_eq!(status.code(), Some(1), "{stderr}");
    let other = d.join("other-ca.pem");
    assert!(
        stderr.contains(&format!(
            "the broker's certificate did not verify against the CA of --ca-file {}",
            other.display()
        )) && stderr.contains("not signed by that CA"),
        "{stderr}"
    );

    // the certificate names 127.0.0.1, not localhost
    let (status, stderr) = run(format!("localhost:{tls_port}"), "ca.pem", &good);
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not name localhost"), "{stderr}");

    assert!(
        rx.recv_timeout(Duration::from_secs(2)).is_err(),
        "no event may arrive"
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn plain_tcp_to_another_machine_and_unsafe_password_files_are_refused_before_connecting() {
    let d = scratch("mqtt-refuse");
    // 192.0.2.0/24 is for documentation (RFC 5737): nothing answers there, and nothing is tried
    let (status, stderr) =
        Bridge::start(&["--broker", "192.0.2.1:1883"]).exited(Duration::from_secs(5));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refusing plain TCP to 192.0.2.1")
            && stderr.contains("--tls")
            && stderr.contains("--insecure-plaintext"),
        "{stderr}"
    );
    // a password file other users can write
    let pw = password_file(&d, "pw", PASSWORD);
    std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o622)).unwrap();
    let (status, stderr) = Bridge::start(&[
        "--broker",
        "127.0.0.1:1",
        "--username",
        USER,
        "--password-file",
        pw.to_str().unwrap(),
    ])
    .exited(Duration::from_secs(5));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--password-file") && stderr.contains("chmod 0600"),
        "{stderr}"
    );
    // no --password on the command line at all
    let (status, stderr) =
        Bridge::start(&["--username", USER, "--password", PASSWORD]).exited(Duration::from_secs(5));
    assert_eq!(status.code(), Some(2), "{stderr}");
    std::fs::remove_dir_all(d).unwrap();
}

/// What `rx` delivers until `done` says so (that message included); the test fails when nothing
/// satisfies `done` within `within`.
fn until(
    rx: &mpsc::Receiver<(String, String)>,
    within: Duration,
    mut done: impl FnMut(&str, &str) -> bool,
) -> Vec<(String, String)> {
    let t = Instant::now();
    let mut got = Vec::new();
    loop {
        let left = within.saturating_sub(t.elapsed());
        match rx.recv_timeout(left) {
            Ok((topic, payload)) => {
                let end = done(&topic, &payload);
                got.push((topic, payload));
                if end {
                    return got;
                }
            }
            Err(_) => panic!("not within {within:?}; got {got:#?}"),
        }
    }
}

/// The retained messages a new subscriber to `filter` gets (all of them arrive at once: the
/// subscription ends after a second without one).
fn retained(port: u16, id: &str, filter: &'static str) -> Vec<(String, String)> {
    let rx = subscribe(port, id, filter);
    let mut got = Vec::new();
    while let Ok(m) = rx.recv_timeout(Duration::from_secs(1)) {
        got.push(m);
    }
    got
}

/// Keys of Home Assistant's MQTT discovery schemas (binary sensor, sensor) that the bridge may
/// write, unabbreviated; any other key is a mistake.
const HA_COMMON_KEYS: &[&str] = &[
    "name",
    "unique_id",
    "state_topic",
    "availability_topic",
    "payload_available",
    "payload_not_available",
    "device",
    "origin",
    "icon",
    "qos",
];
const HA_BINARY_SENSOR_KEYS: &[&str] = &["payload_on", "payload_off", "off_delay"];

/// Checks a discovery message against Home Assistant's schema: the topic
/// `homeassistant/<component>/<node_id>/<object_id>/config` (ids of `[a-zA-Z0-9_-]`), the
/// payload's keys and their types; returns (component, node id, payload).
fn check_config(topic: &str, payload: &str) -> (String, String, serde_json::Value) {
    let levels: Vec<&str> = topic.split('/').collect();
    let ["homeassistant", component, node, object, "config"] = levels[..] else {
        panic!("not a discovery topic: {topic}");
    };
    let id_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    assert!(id_ok(node) && id_ok(object), "{topic}");
    let v: serde_json::Value = serde_json::from_str(payload).expect(payload);
    let extra: &[&str] = match component {
        "binary_sensor" => HA_BINARY_SENSOR_KEYS,
        "sensor" => &[],
        other => panic!("unexpected component {other}"),
    };
    for key in v.as_object().unwrap().keys() {
        assert!(
            HA_COMMON_KEYS.contains(&key.as_str()) || extra.contains(&key.as_str()),
            "{topic}: key {key} is not in Home Assistant's {component} schema"
        );
    }
    for key in ["name", "unique_id", "state_topic", "availability_topic"] {
        assert!(v[key].is_string(), "{topic}: {key}: {v}");
    }
    let state = v["state_topic"].as_str().unwrap();
    assert!(!state.contains(['+', '#', '\0']), "{state}");
    assert_eq!(v["payload_available"], "online");
    assert_eq!(v["payload_not_available"], "offline");
    let ids = v["device"]["identifiers"].as_array().unwrap();
    assert!(!ids.is_empty() && ids.iter().all(|i| i.is_string()), "{v}");
    for key in ["name", "manufacturer", "model", "sw_version"] {
        assert!(v["device"][key].is_string(), "device {key}: {v}");
    }
    assert_eq!(v["origin"]["name"], "faceveil");
    if component == "binary_sensor" {
        assert_eq!(v["payload_on"], "ON");
        assert_eq!(v["payload_off"], "OFF");
        assert!(v["off_delay"].is_u64(), "{v}");
    }
    (component.to_string(), node.to_string(), v)
}

#[test]
fn home_assistant_discovery_alert_label_availability_and_removal() {
    require_runtime();
    let d = scratch("mqtt-ha");
    let list = obama_list(&d);
    let video = common::clip(&d, &[("obama2.jpg", 20)]);
    let port = free_port();
    let mut broker = Broker::start(port);
    let rx = subscribe(port, "ha-watch", "#");
    let broker_addr = format!("127.0.0.1:{port}");
    let mut bridge = Bridge::start(&[
        "--broker",
        &broker_addr,
        "--client-id",
        "ha-bridge",
        "--homeassistant",
        "--homeassistant-off-delay",
        "3",
        "--camera",
        "porch",
    ]);

    // at connection: online, then the listed camera's device, its alert off
    let got = until(&rx, Duration::from_secs(20), |t, p| {
        t == "faceveil/porch/alert" && p == "OFF"
    });
    let availability = "faceveil/bridge/ha-bridge/availability";
    assert_eq!(got[0], (availability.to_string(), "online".to_string()));
    // retained: a new subscriber gets both configs, which follow the schema
    let configs = retained(port, "ha-late-1", "homeassistant/#");
    assert_eq!(configs.len(), 2, "{configs:#?}");
    for (topic, payload) in &configs {
        let (component, node, v) = check_config(topic, payload);
        assert_eq!(node, "faceveil_porch");
        assert_eq!(v["availability_topic"], availability);
        assert_eq!(v["device"]["identifiers"][0], "faceveil_porch");
        match component.as_str() {
            "binary_sensor" => {
                assert_eq!(
                    topic,
                    "homeassistant/binary_sensor/faceveil_porch/alert/config"
                );
                assert_eq!(v["state_topic"], "faceveil/porch/alert");
                assert_eq!(v["off_delay"], 3);
            }
            _ => {
                assert_eq!(
                    topic,
                    "homeassistant/sensor/faceveil_porch/last_identified/config"
                );
                assert_eq!(v["state_topic"], "faceveil/porch/last-identified");
            }
        }
    }

    // a real match from faceveil-nvr on camera "gate": its device appears, the alert turns on,
    // the sensor shows the label; the alert turns off by itself 3 s after the match
    let mut nvr = Command::new(env!("CARGO_BIN_EXE_faceveil-nvr"))
        .arg("--watchlist")
        .arg(&list)
        .arg(format!("gate={}", video.display()))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let nvr_out = std::io::BufReader::new(nvr.stdout.take().unwrap());
    let mut on_at = None;
    let mut lines = std::io::BufRead::lines(nvr_out);
    let got = loop {
        let line = lines.next().expect("a match from faceveil-nvr").unwrap();
        let is_match = line.contains("\"faceveil-match\"");
        bridge.send(&line);
        if is_match {
            break until(&rx, Duration::from_secs(20), |t, p| {
                if t == "faceveil/gate/alert" && p == "ON" {
                    on_at = Some(Instant::now());
                }
                t == "faceveil/gate/last-identified"
            });
        }
    };
    let on_at = on_at.expect("the alert on");
    let topics: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    let i = |t: &str| topics.iter().position(|x| *x == t).expect(t);
    // the configs came before the states
    assert!(i("homeassistant/binary_sensor/faceveil_gate/alert/config") < i("faceveil/gate/alert"));
    assert!(i("faceveil/gate/match") < i("faceveil/gate/last-identified"));
    assert_eq!(got.last().unwrap().1, "obama");
    // the rest of the clip, then an unknown face's event that claims a label: no alert, no label
    for line in lines {
        bridge.send(&line.unwrap());
    }
    assert!(nvr.wait().unwrap().success());
    bridge.send(r#"{"event":"faceveil-unknown","camera-id":"gate","label":"stranger"}"#);
    let got = until(&rx, Duration::from_secs(10), |t, p| {
        t == "faceveil/gate/alert" && p == "OFF"
    });
    let off_after = on_at.elapsed();
    assert!(
        off_after >= Duration::from_millis(2500) && off_after < Duration::from_secs(6),
        "off {off_after:?} after on, expected 3 s"
    );
    assert!(
        got.iter()
            .all(|(t, p)| !p.contains("stranger") || t == "faceveil/gate/unknown"),
        "{got:#?}"
    );
    assert!(!got.iter().any(|(t, p)| t.ends_with("/alert") && p == "ON"));

    // hostile camera ids: safe topics and ids, and the bridge stays connected
    let long = "x".repeat(5000);
    for cam in ["a/b+c#d", "nul\u{0}cam", &long] {
        bridge.send(
            &serde_json::json!({"event": "faceveil-health", "camera-id": cam, "state": "running"})
                .to_string(),
        );
    }
    bridge.send(EVENT); // camera "gate"
    until(&rx, Duration::from_secs(10), |t, _| {
        t == "faceveil/gate/match"
    });
    let configs = retained(port, "ha-late-2", "homeassistant/#");
    assert_eq!(configs.len(), 2 * 5, "{configs:#?}");
    let mut nodes = std::collections::BTreeSet::new();
    for (topic, payload) in &configs {
        let (_, node, v) = check_config(topic, payload);
        assert!(node.len() <= 60, "{node}");
        assert!(v["device"]["name"].as_str().unwrap().chars().count() <= 80);
        nodes.insert(node);
    }
    assert_eq!(nodes.len(), 5, "{nodes:?}");
    assert!(nodes.iter().any(|n| n.starts_with("faceveil_a_b_c_d_")));

    // a broker restarted without persistence has lost the retained configs: the bridge
    // announces its cameras again when it reconnects
    drop(rx);
    drop(broker);
    std::thread::sleep(Duration::from_secs(1));
    broker = Broker::start(port);
    let rx = subscribe(port, "ha-watch-2", "#");
    until(&rx, Duration::from_secs(20), |t, p| {
        t == availability && p == "online"
    });
    // (a second for the rest of the announcement)
    std::thread::sleep(Duration::from_secs(1));
    let configs = retained(port, "ha-late-3", "homeassistant/#");
    assert_eq!(configs.len(), 2 * 5, "{configs:#?}");
    assert!(
        retained(port, "ha-late-4", "faceveil/gate/last-identified")
            == [(
                "faceveil/gate/last-identified".to_string(),
                "obama".to_string()
            )]
    );

    // killed: the broker says offline for it (its last will), retained
    bridge.child.kill().unwrap();
    bridge.child.wait().unwrap();
    until(&rx, Duration::from_secs(10), |t, p| {
        t == availability && p == "offline"
    });
    assert_eq!(
        retained(port, "ha-late-5", "faceveil/bridge/+/availability"),
        [(availability.to_string(), "offline".to_string())]
    );

    // removal of one camera: its configs and states go, the others stay
    let remove = |extra: &[&str]| {
        let mut args = vec!["--broker", broker_addr.as_str(), "--homeassistant-remove"];
        args.extend(extra);
        let (status, stderr) = Bridge::start(&args).exited(Duration::from_secs(30));
        assert!(status.success(), "{stderr}");
        stderr
    };
    let stderr = remove(&["--camera", "gate", "--camera", "garage"]);
    assert!(
        stderr.contains("removed the Home Assistant entities of 1 camera(s)")
            && stderr.contains("camera \"garage\" has no entities"),
        "{stderr}"
    );
    let configs = retained(port, "ha-late-6", "homeassistant/#");
    assert_eq!(configs.len(), 2 * 4, "{configs:#?}");
    assert!(!configs.iter().any(|(t, _)| t.contains("faceveil_gate/")));
    let states = retained(port, "ha-late-7", "faceveil/#");
    assert!(
        !states.iter().any(|(t, _)| t.starts_with("faceveil/gate/")),
        "{states:#?}"
    );
    assert!(states.iter().any(|(t, _)| t == availability));

    // removal of every camera: nothing of faceveil's is left retained
    let stderr = remove(&[]);
    assert!(stderr.contains("of 4 camera(s)"), "{stderr}");
    assert_eq!(retained(port, "ha-late-8", "#"), []);
    let stderr = remove(&[]);
    assert!(stderr.contains("nothing removed"), "{stderr}");
    drop(broker);
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn home_assistant_options_are_checked() {
    for (args, want) in [
        (
            &["--camera", "porch"][..],
            "--camera: only with --homeassistant",
        ),
        (
            &["--homeassistant", "--camera", ""][..],
            "an empty camera id",
        ),
        (
            &["--homeassistant", "--homeassistant-prefix", "home/+"][..],
            "--homeassistant-prefix \"home/+\"",
        ),
        (&["--prefix", ""][..], "--prefix \"\""),
        (
            &["--homeassistant", "--homeassistant-off-delay", "0"][..],
            "0",
        ),
    ] {
        let (status, stderr) = Bridge::start(args).exited(Duration::from_secs(5));
        assert_eq!(status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}
