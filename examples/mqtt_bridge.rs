// SPDX-License-Identifier: MIT
//! Publishes facewatch events to an MQTT broker. It reads the JSON lines the `nvr` example writes
//! (one event per line) on standard input, so the two compose:
//!
//! ```text
//! cargo run --release --example nvr -- --watchlist w.fwl door=rtsp://… \
//!   | cargo run --release --example mqtt_bridge -- --broker 127.0.0.1:1883
//! ```
//!
//! Topics: `facewatch/<camera-id>/match` and `facewatch/<camera-id>/unknown`; payload: the event's
//! JSON object unchanged (docs/EVENTS.md); QoS 1 (at least once), not retained. When the broker
//! goes away the bridge keeps reading, holds events in order, reconnects every second and delivers
//! them when the broker is back. Options: `--broker HOST:PORT` (default 127.0.0.1:1883),
//! `--client-id ID` (default facewatch-bridge), `--prefix P` (default facewatch).

use std::io::BufRead;
use std::time::Duration;

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut broker, mut client_id, mut prefix) = (
        "127.0.0.1:1883".to_string(),
        "facewatch-bridge".to_string(),
        "facewatch".to_string(),
    );
    while let Some(a) = args.next() {
        match a.as_str() {
            "--broker" => broker = args.next().expect("--broker HOST:PORT"),
            "--client-id" => client_id = args.next().expect("--client-id ID"),
            "--prefix" => prefix = args.next().expect("--prefix P"),
            _ => {
                eprintln!(
                    "usage: mqtt_bridge [--broker HOST:PORT] [--client-id ID] [--prefix P] < events.jsonl"
                );
                std::process::exit(2);
            }
        }
    }
    let (host, port) = broker.rsplit_once(':').expect("--broker HOST:PORT");
    let mut options = MqttOptions::new(client_id, host, port.parse().expect("port"));
    options.set_keep_alive(Duration::from_secs(5));
    // Keep unacknowledged QoS 1 events across reconnections.
    options.set_clean_session(false);
    let (client, mut connection) = Client::new(options, 1000);

    // The connection must be polled for anything to be sent; a failed poll is a lost connection,
    // and the next poll reconnects.
    std::thread::spawn(move || {
        let mut up = false;
        for event in connection.iter() {
            match event {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    up = true;
                    eprintln!("mqtt_bridge: connected to {broker}");
                }
                Ok(_) => {}
                Err(e) => {
                    if up {
                        eprintln!("mqtt_bridge: connection lost ({e}); reconnecting");
                    }
                    up = false;
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    });

    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
            eprintln!("mqtt_bridge: not a JSON event, skipped: {line}");
            continue;
        };
        let kind = match event["event"].as_str() {
            Some("facewatch-match") => "match",
            Some("facewatch-unknown") => "unknown",
            _ => continue,
        };
        let camera = event["camera-id"]
            .as_str()
            .unwrap_or("unknown-camera")
            .replace(['/', '+', '#'], "_");
        let topic = format!("{prefix}/{camera}/{kind}");
        if let Err(e) = client.publish(&topic, QoS::AtLeastOnce, false, line.into_bytes()) {
            eprintln!("mqtt_bridge: {topic}: {e}");
        }
    }
    // Standard input ended: give the last events a moment to be acknowledged.
    std::thread::sleep(Duration::from_secs(2));
    let _ = client.disconnect();
}
