// SPDX-License-Identifier: MIT
//! `faceveil-nvr`'s health, watched from outside as an operator would: the `faceveil-health` lines
//! on the events output and the Prometheus text on a loopback port, checked with `promtool check
//! metrics` (Debian package prometheus, installed by scripts/setup.sh). Counters grow while a real
//! RTSP camera streams; a list that does not reload and a camera that stops show within seconds.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{RtspCamera, free_port, obama_list, require_runtime, scratch, wait_until};

fn promtool() -> PathBuf {
    for p in ["/usr/bin/promtool", "/usr/local/bin/promtool"] {
        if Path::new(p).exists() {
            return p.into();
        }
    }
    panic!("promtool is not installed: run scripts/setup.sh (Debian package prometheus)");
}

/// `GET /metrics` on 127.0.0.1:`port`: the body of a 200 answer in the text format, else `None`.
fn scrape(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    Some(body.to_string())
}

/// The value of `name{camera="<camera>"}` in `text`.
fn sample(text: &str, name: &str, camera: &str) -> Option<f64> {
    let prefix = format!("{name}{{camera=\"{camera}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.parse().ok())
}

/// `promtool check metrics` on `text`: its verdict and what it said.
fn check_metrics(text: &str) -> (bool, String) {
    let mut p = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    p.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = p.wait_with_output().unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), said)
}

/// The `faceveil-health` lines of `camera` in the events file, oldest first.
fn health_lines(events: &Path, camera: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(events)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "faceveil-health" && v["camera-id"] == camera)
        .collect()
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn health_is_watched_through_json_lines_and_prometheus_text() {
    require_runtime();
    let d = scratch("health");
    let list = obama_list(&d);
    // A second camera, a short file whose name needs escaping in a label: it ends, and its
    // counts stay.
    let clip = common::clip(&d, &[("obama2.jpg", 10)]);
    let odd = "hall \"b\"\\";
    let odd_label = "hall \\\"b\\\"\\\\";
    let (events, log) = (d.join("events.jsonl"), d.join("nvr.log"));
    let (port, metrics) = (free_port(), free_port());
    let camera = RtspCamera::start(port, "obama2.jpg");
    let _nvr = Killed(
        Command::new(env!("CARGO_BIN_EXE_faceveil-nvr"))
            .arg("--watchlist")
            .arg(&list)
            .arg("--out")
            .arg(&events)
            .args(["--health-interval", "1", "--stall-timeout", "3"])
            .args(["--metrics", &format!("127.0.0.1:{metrics}")])
            .arg(format!("door={}", RtspCamera::url(port)))
            .arg(format!("{odd}={}", clip.display()))
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    let up = |text: &str| sample(text, "faceveil_camera_up", "door");
    let frames = |text: &str| sample(text, "faceveil_frames_total", "door").unwrap_or(0.0);

    // Streaming: the camera is up, its frames are counted, the text passes promtool.
    assert!(
        wait_until(Duration::from_secs(90), || {
            scrape(metrics).is_some_and(|t| up(&t) == Some(1.0) && frames(&t) > 0.0)
        }),
        "the camera never showed up: {:?}\n{}",
        scrape(metrics),
        said()
    );
    let first = scrape(metrics).unwrap();
    let (ok, verdict) = check_metrics(&first);
    assert!(ok, "promtool: {verdict}\n{first}");
    std::thread::sleep(Duration::from_secs(2));
    let second = scrape(metrics).unwrap();
    assert!(frames(&second) > frames(&first), "{first}\n{second}");
    // NVR.md's table lists every metric served, with its type.
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/NVR.md")).unwrap();
    for l in second.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let (name, kind) = l.split_once(' ').unwrap();
        assert!(
            doc.contains(&format!("| `{name}` | {kind} |")),
            "{name} ({kind}) is not in NVR.md"
        );
    }
    let analysed = sample(&second, "faceveil_frames_analysed_total", "door").unwrap();
    assert!(analysed > 0.0 && analysed <= frames(&second), "{second}");
    assert!(sample(&second, "faceveil_watchlist_generation", "door").unwrap() >= 1.0);
    let last_frame = sample(&second, "faceveil_last_frame_timestamp_seconds", "door").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((now - last_frame).abs() < 5.0, "{last_frame} vs {now}");
    assert_eq!(
        sample(&second, "faceveil_reload_failures_total", "door"),
        Some(0.0)
    );
    // The file camera ended: down, its frames still counted, its name escaped.
    assert!(
        wait_until(Duration::from_secs(60), || {
            scrape(metrics).is_some_and(|t| {
                sample(&t, "faceveil_camera_up", odd_label) == Some(0.0)
                    && sample(&t, "faceveil_frames_total", odd_label) == Some(10.0)
            })
        }),
        "{:?}",
        scrape(metrics)
    );
    let line = health_lines(&events, "door").pop().expect("a health line");
    assert_eq!(line["state"], "running", "{line}");
    assert!(line["frames-in"].as_u64().unwrap() > 0, "{line}");
    assert!(line["last-frame"].is_string(), "{line}");
    let ended = health_lines(&events, odd).pop().expect("a health line");
    assert_eq!(ended["state"], "stopped", "{ended}");

    // A list that cannot be reloaded: counted in both within seconds, and stale until it
    // reloads.
    assert_eq!(
        sample(&second, "faceveil_watchlist_stale", "door"),
        Some(0.0)
    );
    let good = std::fs::read(&list).unwrap();
    std::fs::write(&list, b"not a watch list").unwrap();
    let written = Instant::now();
    assert!(
        wait_until(Duration::from_secs(10), || {
            scrape(metrics).is_some_and(|t| {
                sample(&t, "faceveil_reload_failures_total", "door") >= Some(1.0)
                    && sample(&t, "faceveil_watchlist_stale", "door") == Some(1.0)
            }) && health_lines(&events, "door")
                .last()
                .is_some_and(|l| l["failed-reloads"].as_u64() >= Some(1) && l["list-stale"] == true)
        }),
        "{:?}\n{}",
        scrape(metrics),
        said()
    );
    eprintln!("reload failure shown after {:?}", written.elapsed());
    std::fs::write(&list, &good).unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || {
            scrape(metrics)
                .is_some_and(|t| sample(&t, "faceveil_watchlist_stale", "door") == Some(0.0))
        }),
        "{:?}\n{}",
        scrape(metrics),
        said()
    );

    // The camera stops: down within seconds (the connection drops, or the stall timeout).
    drop(camera);
    let stopped = Instant::now();
    assert!(
        wait_until(Duration::from_secs(10), || {
            scrape(metrics).is_some_and(|t| up(&t) == Some(0.0))
        }),
        "{:?}\n{}",
        scrape(metrics),
        said()
    );
    let shown = stopped.elapsed();
    eprintln!("stopped camera shown after {shown:?}");
    assert!(
        wait_until(Duration::from_secs(5), || {
            health_lines(&events, "door")
                .last()
                .is_some_and(|l| l["state"] == "reconnecting")
        }),
        "{:?}",
        health_lines(&events, "door").last()
    );
    let (ok, verdict) = check_metrics(&scrape(metrics).unwrap());
    assert!(ok, "promtool: {verdict}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// Nothing leaves the machine unless configured: an address other machines could reach is refused
/// (exit 3, before anything starts) unless allowed in so many words.
#[test]
fn a_metrics_address_off_the_loopback_is_refused() {
    let d = scratch("health-remote");
    let out = Command::new(env!("CARGO_BIN_EXE_faceveil-nvr"))
        .arg("--watchlist")
        .arg(d.join("w.fvl"))
        .args(["--metrics", "0.0.0.0:9750", "door=rtsp://127.0.0.1:1/cam"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("--metrics") && err.contains("not a loopback address"),
        "{err}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// The scrape configuration and the alert rules that NVR.md gives pass promtool, and the rules use
/// only metrics the runner serves.
#[test]
fn the_prometheus_examples_in_nvr_md_are_valid() {
    let d = scratch("health-docs");
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/NVR.md")).unwrap();
    let blocks: Vec<&str> = doc
        .split("```yaml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    let find = |start: &str| {
        *blocks
            .iter()
            .find(|b| b.starts_with(start))
            .unwrap_or_else(|| panic!("no yaml block starting with {start} in NVR.md"))
    };
    for (what, start) in [("config", "scrape_configs:"), ("rules", "groups:")] {
        let file = d.join(format!("{what}.yml"));
        std::fs::write(&file, find(start)).unwrap();
        let out = Command::new(promtool())
            .args(["check", what])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool check {what}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Every faceveil_ metric in the rules is in NVR.md's table of the metrics served.
    let rules = find("groups:");
    for name in rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("faceveil_"))
    {
        assert!(
            doc.contains(&format!("| `{name}` |")),
            "{name} is not served"
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}
