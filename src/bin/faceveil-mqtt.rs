// SPDX-License-Identifier: MIT
//! `faceveil-mqtt`: publishes faceveil events to an MQTT broker. It reads the JSON lines that
//! `faceveil-nvr` writes (one event per line) on standard input, so the two compose:
//!
//! ```text
//! faceveil-nvr --config /etc/faceveil/nvr.toml | faceveil-mqtt --broker 127.0.0.1:1883
//! ```
//!
//! Topics: `<prefix>/<camera-id>/match`, `<prefix>/<camera-id>/unknown` and
//! `<prefix>/<camera-id>/health` (the runner's periodic `faceveil-health` line); payload: the
//! event's JSON object unchanged (docs/EVENTS.md); QoS 1 (at least once), not retained. Other
//! lines are skipped. When the broker
//! goes away the bridge keeps reading, holds events in order, reconnects every second and delivers
//! them when the broker is back. It exits when standard input ends.

use std::io::BufRead;
use std::time::Duration;

use clap::Parser;
use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

#[derive(Parser)]
#[command(
    name = "faceveil-mqtt",
    version,
    about = "Publish faceveil-nvr's JSON events (standard input) to an MQTT broker, QoS 1"
)]
struct Cli {
    /// The broker
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:1883")]
    broker: String,
    /// MQTT client id
    #[arg(long, value_name = "ID", default_value = "faceveil-bridge")]
    client_id: String,
    /// First level of the topics
    #[arg(long, value_name = "P", default_value = "faceveil")]
    prefix: String,
}

fn main() -> std::process::ExitCode {
    let Cli {
        broker,
        client_id,
        prefix,
    } = Cli::parse();
    let Some((host, port)) = broker
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
    else {
        eprintln!("faceveil-mqtt: --broker {broker}: expected HOST:PORT");
        return std::process::ExitCode::from(2);
    };
    let mut options = MqttOptions::new(client_id, host, port);
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
                    eprintln!("faceveil-mqtt: connected to {broker}");
                }
                Ok(_) => {}
                Err(e) => {
                    if up {
                        eprintln!("faceveil-mqtt: connection lost ({e}); reconnecting");
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
    std::process::ExitCode::SUCCESS
}
