// SPDX-License-Identifier: MIT
//! The MQTT bridge against a real mosquitto on 127.0.0.1 (Debian package, installed by
//! scripts/setup.sh): events from the `nvr` example arrive on `faceveil/<camera>/match`, and the
//! bridge delivers again after the broker restarts.

mod common;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{free_port, obama_list, require_runtime, scratch};
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

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
        let child = Command::new(mosquitto_bin())
            .args(["-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "mosquitto did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
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

/// Subscribes to `faceveil/+/match` and forwards (topic, payload) of what arrives.
fn subscribe(port: u16, id: &str, topic: &'static str) -> mpsc::Receiver<(String, String)> {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
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
