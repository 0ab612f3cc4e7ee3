// SPDX-License-Identifier: MIT
//! The health of each camera (docs/NVR.md, *Health*): frames in, analysed and skipped (veildetect's
//! `stats`, summed over the camera's pipelines), the last frame and the last match, the generation
//! of the watch list in use (veilmatch's `stats`), reloads that failed and rollbacks refused (the
//! runner's own count of veilmatch's warnings), reconnects, and whether the camera is running.
//! Reported as a periodic `faceveil-health` JSON line on the events output and as Prometheus text
//! (metrics.rs).
//!
//! The camera's thread says what happens (`begin`, `frame`, `matched`, `reload_failed`, `end`);
//! a report reads the running pipeline's counters at that moment, so the figures are as fresh as
//! the report.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gst::prelude::*;

use crate::events::{Events, write_status};

/// What a camera is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Its first pipeline is starting: no frame yet.
    Starting,
    /// Frames arrive.
    Running,
    /// Its stream ended, failed or stalled: a new pipeline is on its way, no frame from it yet.
    Reconnecting,
    /// It ended (a file camera, an error it is not restarted after, or the runner stopping).
    Stopped,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Reconnecting => "reconnecting",
            State::Stopped => "stopped",
        }
    }
}

/// A camera's health at one moment.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    pub camera: String,
    pub state: State,
    /// Frames that reached the detector.
    pub frames: u64,
    /// Frames the detector's model ran on.
    pub analysed: u64,
    /// Model runs left out because the frame came late (a live camera the machine cannot keep up
    /// with).
    pub skipped: u64,
    pub last_frame: Option<SystemTime>,
    pub last_match: Option<SystemTime>,
    pub matches: u64,
    /// The write generation of the watch list in use (unknown before the first pipeline opened it).
    pub generation: Option<u64>,
    pub failed_reloads: u64,
    pub refused_rollbacks: u64,
    /// The list file changed but did not replace the list in use (a failed reload or a refused
    /// rollback), and neither a later reload nor a new pipeline has opened it since.
    pub stale: bool,
    /// Pipelines started after the first one.
    pub reconnects: u64,
}

/// Milliseconds since the epoch (0: never).
fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
        .max(1)
}

fn from_millis(ms: u64) -> Option<SystemTime> {
    (ms > 0).then(|| UNIX_EPOCH + Duration::from_millis(ms))
}

/// RFC 3339 in UTC with milliseconds, as the `utc` of the events (docs/EVENTS.md).
fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

impl Snapshot {
    /// The `faceveil-health` line (docs/EVENTS.md): times as RFC 3339 UTC, null when unknown.
    pub fn json(&self, now: SystemTime) -> serde_json::Value {
        let time = |t: Option<SystemTime>| t.map(rfc3339);
        serde_json::json!({
            "event": "faceveil-health",
            "camera-id": self.camera,
            "utc": rfc3339(now),
            "state": self.state.as_str(),
            "frames-in": self.frames,
            "frames-analysed": self.analysed,
            "frames-skipped": self.skipped,
            "last-frame": time(self.last_frame),
            "last-match": time(self.last_match),
            "matches": self.matches,
            "list-generation": self.generation,
            "failed-reloads": self.failed_reloads,
            "refused-rollbacks": self.refused_rollbacks,
            "list-stale": self.stale,
            "reconnects": self.reconnects,
        })
    }
}

/// A sample's value: a count, or a time (seconds since the epoch, with milliseconds).
enum Value {
    Count(u64),
    Time(SystemTime),
}

/// One metric family of the Prometheus text: name, type, help, and each camera's value (none:
/// no sample for that camera).
struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    value: fn(&Snapshot) -> Option<Value>,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "faceveil_camera_up",
        kind: "gauge",
        help: "1 while frames arrive from the camera, 0 while it starts, reconnects or has stopped",
        value: |s| Some(Value::Count((s.state == State::Running) as u64)),
    },
    Family {
        name: "faceveil_frames_total",
        kind: "counter",
        help: "Frames that reached the detector",
        value: |s| Some(Value::Count(s.frames)),
    },
    Family {
        name: "faceveil_frames_analysed_total",
        kind: "counter",
        help: "Frames the detector's model ran on",
        value: |s| Some(Value::Count(s.analysed)),
    },
    Family {
        name: "faceveil_frames_skipped_total",
        kind: "counter",
        help: "Model runs left out because the frame came late",
        value: |s| Some(Value::Count(s.skipped)),
    },
    Family {
        name: "faceveil_last_frame_timestamp_seconds",
        kind: "gauge",
        help: "When the last frame came through the analysis (seconds since the epoch)",
        value: |s| s.last_frame.map(Value::Time),
    },
    Family {
        name: "faceveil_last_match_timestamp_seconds",
        kind: "gauge",
        help: "When the last watch-list match was reported (seconds since the epoch)",
        value: |s| s.last_match.map(Value::Time),
    },
    Family {
        name: "faceveil_matches_total",
        kind: "counter",
        help: "Watch-list matches reported",
        value: |s| Some(Value::Count(s.matches)),
    },
    Family {
        name: "faceveil_watchlist_generation",
        kind: "gauge",
        help: "Write generation of the watch list in use",
        value: |s| s.generation.map(Value::Count),
    },
    Family {
        name: "faceveil_watchlist_stale",
        kind: "gauge",
        help: "1 while the watch list file changed but the camera kept the list it had (a failed \
               reload or a refused rollback)",
        value: |s| Some(Value::Count(s.stale as u64)),
    },
    Family {
        name: "faceveil_reload_failures_total",
        kind: "counter",
        help: "Changed watch lists that did not open (the old list stayed in use)",
        value: |s| Some(Value::Count(s.failed_reloads)),
    },
    Family {
        name: "faceveil_rollbacks_refused_total",
        kind: "counter",
        help: "Older copies of the watch list refused (the list in use stayed)",
        value: |s| Some(Value::Count(s.refused_rollbacks)),
    },
    Family {
        name: "faceveil_reconnects_total",
        kind: "counter",
        help: "Times the camera's pipeline was started again after it ended, failed or stalled",
        value: |s| Some(Value::Count(s.reconnects)),
    },
];

/// A label value as the text format wants it: backslash, double quote and line feed escaped.
fn label_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The cameras' health as Prometheus text exposition format 0.0.4: every family with its HELP and
/// TYPE, one sample per camera, label `camera`.
pub fn prometheus(cameras: &[Snapshot]) -> String {
    let mut out = String::new();
    for f in FAMILIES {
        let _ = writeln!(out, "# HELP {} {}", f.name, f.help);
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        for s in cameras {
            let value = match (f.value)(s) {
                None => continue,
                Some(Value::Count(n)) => n.to_string(),
                Some(Value::Time(t)) => {
                    let ms = millis(t);
                    format!("{}.{:03}", ms / 1000, ms % 1000)
                }
            };
            let _ = writeln!(
                out,
                "{}{{camera=\"{}\"}} {value}",
                f.name,
                label_value(&s.camera)
            );
        }
    }
    out
}

/// veildetect's counters.
#[derive(Clone, Copy, Debug, Default)]
struct Frames {
    frames: u64,
    analysed: u64,
    skipped: u64,
}

impl Frames {
    fn of(detect: &gst::Element) -> Frames {
        let s = detect.property::<gst::Structure>("stats");
        let get = |k| s.get::<u64>(k).unwrap_or_default();
        Frames {
            frames: get("frames"),
            analysed: get("inferences"),
            skipped: get("skipped"),
        }
    }

    fn add(self, o: Frames) -> Frames {
        Frames {
            frames: self.frames + o.frames,
            analysed: self.analysed + o.analysed,
            skipped: self.skipped + o.skipped,
        }
    }
}

fn generation_of(watch: &gst::Element) -> Option<u64> {
    watch
        .property::<gst::Structure>("stats")
        .get::<u64>("generation")
        .ok()
}

#[derive(Default)]
struct Inner {
    /// The running pipeline's detector and matcher, read at each report; `None` between pipelines.
    detect: Option<gst::Element>,
    watch: Option<gst::Element>,
    /// A pipeline plays (between `begin` and `end`).
    active: bool,
    /// When the running pipeline started (ms since the epoch).
    started_ms: u64,
    /// The counters of the pipelines that ended.
    done: Frames,
    pipelines: u64,
    stopped: bool,
    last_match_ms: u64,
    matches: u64,
    /// The generation the last pipeline that ended had in use.
    generation: Option<u64>,
    failed_reloads: u64,
    refused_rollbacks: u64,
    /// Since when the list in use is not the file's (ms since the epoch; 0: it is).
    stale_ms: u64,
}

/// One camera's health, shared by its thread and the reports.
pub struct CameraHealth {
    name: String,
    /// The last frame (ms since the epoch; 0: none), stored from the streaming thread.
    last_frame_ms: AtomicU64,
    inner: Mutex<Inner>,
}

impl CameraHealth {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A pipeline of the camera plays (its `veilbin`, named `fw`, has made its children).
    pub fn begin(&self, pipeline: &gst::Pipeline) {
        let bin = pipeline
            .by_name("fw")
            .and_then(|b| b.downcast::<gst::Bin>().ok());
        let child = |name| bin.as_ref().and_then(|b| b.by_name(name));
        let mut h = self.lock();
        h.detect = child("detect");
        h.watch = child("watch");
        h.started_ms = millis(SystemTime::now());
        h.pipelines += 1;
        h.active = true;
        h.stopped = false;
    }

    /// A frame passed (called from the streaming thread).
    pub fn frame(&self) {
        self.last_frame_ms
            .store(millis(SystemTime::now()), Ordering::Relaxed);
    }

    pub fn matched(&self) {
        let mut h = self.lock();
        h.matches += 1;
        h.last_match_ms = millis(SystemTime::now());
    }

    pub fn reload_failed(&self) {
        let mut h = self.lock();
        h.failed_reloads += 1;
        h.stale_ms = millis(SystemTime::now());
    }

    pub fn rollback_refused(&self) {
        let mut h = self.lock();
        h.refused_rollbacks += 1;
        h.stale_ms = millis(SystemTime::now());
    }

    /// A changed list is in use.
    pub fn reloaded(&self) {
        self.lock().stale_ms = 0;
    }

    /// The pipeline stopped: its last counters are kept.
    pub fn end(&self) {
        let mut h = self.lock();
        h.active = false;
        if let Some(d) = h.detect.take() {
            h.done = h.done.add(Frames::of(&d));
        }
        if let Some(w) = h.watch.take() {
            h.generation = generation_of(&w).or(h.generation);
        }
    }

    /// The camera's thread ended.
    pub fn stopped(&self) {
        self.end();
        self.lock().stopped = true;
    }

    pub fn snapshot(&self) -> Snapshot {
        let h = self.lock();
        let last_frame_ms = self.last_frame_ms.load(Ordering::Relaxed);
        let streaming = h.active && last_frame_ms >= h.started_ms;
        let state = if h.stopped {
            State::Stopped
        } else if streaming {
            State::Running
        } else if h.pipelines > 1 || (h.pipelines == 1 && !h.active) {
            State::Reconnecting
        } else {
            State::Starting
        };
        let live = h.detect.as_ref().map(Frames::of).unwrap_or_default();
        let frames = h.done.add(live);
        Snapshot {
            camera: self.name.clone(),
            state,
            frames: frames.frames,
            analysed: frames.analysed,
            skipped: frames.skipped,
            last_frame: from_millis(last_frame_ms),
            last_match: from_millis(h.last_match_ms),
            matches: h.matches,
            generation: h.watch.as_ref().and_then(generation_of).or(h.generation),
            failed_reloads: h.failed_reloads,
            refused_rollbacks: h.refused_rollbacks,
            // A pipeline started after the failure opened the list afresh.
            stale: h.stale_ms > 0 && !(streaming && h.started_ms > h.stale_ms),
            reconnects: h.pipelines.saturating_sub(1),
        }
    }
}

/// The health of every configured camera, in the configuration's order.
#[derive(Default)]
pub struct Registry(Mutex<Vec<Arc<CameraHealth>>>);

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Vec<Arc<CameraHealth>>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The camera's health: the one it had if it ran before (a camera restarted by a new
    /// configuration keeps its counts), else a new one.
    pub fn camera(&self, name: &str) -> Arc<CameraHealth> {
        let mut cams = self.lock();
        if let Some(c) = cams.iter().find(|c| c.name == name) {
            return c.clone();
        }
        let c = Arc::new(CameraHealth {
            name: name.to_string(),
            last_frame_ms: AtomicU64::new(0),
            inner: Mutex::default(),
        });
        cams.push(c.clone());
        c
    }

    /// Forgets the cameras that are no longer configured.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.lock().retain(|c| keep(&c.name));
    }

    pub fn snapshots(&self) -> Vec<Snapshot> {
        let cams: Vec<_> = self.lock().clone();
        cams.iter().map(|c| c.snapshot()).collect()
    }
}

/// Writes one `faceveil-health` line per camera to the events output.
pub fn report(registry: &Registry, events: &Events) {
    let now = SystemTime::now();
    for s in registry.snapshots() {
        write_status(events, &s.camera, &s.json(now).to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn door() -> Snapshot {
        Snapshot {
            camera: "door".into(),
            state: State::Running,
            frames: 120,
            analysed: 40,
            skipped: 3,
            last_frame: Some(UNIX_EPOCH + Duration::from_millis(1_717_320_041_318)),
            last_match: None,
            matches: 0,
            generation: Some(7),
            failed_reloads: 2,
            refused_rollbacks: 0,
            stale: true,
            reconnects: 1,
        }
    }

    #[test]
    fn the_json_line_names_the_event_and_says_times_in_utc() {
        let now = UNIX_EPOCH + Duration::from_secs(1_717_320_042);
        let v = door().json(now);
        assert_eq!(v["event"], "faceveil-health");
        assert_eq!(v["camera-id"], "door");
        assert_eq!(v["utc"], "2024-06-02T09:20:42.000Z");
        assert_eq!(v["last-frame"], "2024-06-02T09:20:41.318Z");
        assert!(v["last-match"].is_null());
        assert_eq!(v["state"], "running");
        assert_eq!(
            (&v["frames-in"], &v["frames-analysed"], &v["frames-skipped"]),
            (&120.into(), &40.into(), &3.into())
        );
        assert_eq!(v["list-generation"], 7);
        assert_eq!(v["failed-reloads"], 2);
        assert_eq!(v["list-stale"], true);
    }

    #[test]
    fn prometheus_text_has_help_type_and_a_sample_per_camera() {
        let mut lobby = door();
        lobby.camera = "lob\"by\\\n".into();
        lobby.state = State::Reconnecting;
        lobby.last_frame = None;
        lobby.generation = None;
        let text = prometheus(&[door(), lobby]);
        assert!(text.ends_with('\n'));
        for f in FAMILIES {
            assert!(text.contains(&format!("# TYPE {} {}\n", f.name, f.kind)));
            assert!(text.contains(&format!("# HELP {} ", f.name)));
            assert_eq!(
                f.kind == "counter",
                f.name.ends_with("_total"),
                "{}",
                f.name
            );
        }
        let sample = |line: &str| text.lines().any(|l| l == line);
        assert!(sample("faceveil_camera_up{camera=\"door\"} 1"));
        assert!(sample("faceveil_camera_up{camera=\"lob\\\"by\\\\\\n\"} 0"));
        assert!(sample("faceveil_frames_total{camera=\"door\"} 120"));
        assert!(sample(
            "faceveil_last_frame_timestamp_seconds{camera=\"door\"} 1717320041.318"
        ));
        assert!(sample("faceveil_watchlist_generation{camera=\"door\"} 7"));
        assert!(sample("faceveil_reload_failures_total{camera=\"door\"} 2"));
        assert!(sample("faceveil_watchlist_stale{camera=\"door\"} 1"));
        // Unknown values have no sample, rather than a made-up one.
        assert_eq!(text.matches("faceveil_watchlist_generation{").count(), 1);
        assert_eq!(
            text.matches("faceveil_last_match_timestamp_seconds{")
                .count(),
            0
        );
    }
}
