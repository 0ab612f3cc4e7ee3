// SPDX-License-Identifier: MIT
//! `faceveil-nvr`: runs faceveil on many cameras, unattended (docs/NVR.md).
//!
//! One pipeline per camera, `uridecodebin ! veilbin ! fakesink`, each watched by its own
//! thread that writes every `faceveil-match` (and, when asked, `faceveil-unknown`) as one JSON
//! line. An RTSP camera that ends is restarted with backoff (0.5 s doubling to 10 s, reset after
//! 30 s of good streaming) while the others keep going; a file ends its camera.
//!
//! Signals: SIGINT/SIGTERM send EOS to every pipeline, wait briefly and exit 0. SIGHUP opens the
//! events file again by its name (log rotation) and re-reads the configuration file: a valid one is applied (cameras removed, added or changed are stopped and
//! started; the others keep running); an invalid one is refused with a message and the running
//! configuration stays. The watch lists reload by themselves when their files change.
//!
//! Health (health.rs, metrics.rs): every `health-interval` seconds one `faceveil-health` line per
//! camera joins the events; with `metrics`, Prometheus text is served on a loopback address.
//!
//! Exit codes: 0 stopped by a signal or every camera ended; 2 usage; 3 invalid configuration (the
//! message names the key and the line); 4 a camera cannot start (watch list, key, model or
//! pipeline, named with the camera), or the events file cannot be opened, or the metrics address
//! cannot be bound. Nothing is started unless every camera can be.

mod config;
mod events;
mod health;
mod metrics;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use clap::Parser;
use gst::prelude::*;
use gstfaceveil::engine::embedder::model_id;
use gstfaceveil::engine::manifest::{ModelSpec, Task};
use gstfaceveil::engine::watchlist::reload::OpenError;
use gstfaceveil::engine::watchlist::reload::floor::Floor;
use gstfaceveil::engine::watchlist::store::{load, resolve_key_checked};

use config::{Camera, Config, ConfigError};
use events::{Events, open_events, reopen_events, write_event};
use health::{CameraHealth, Registry};

#[derive(Parser)]
#[command(
    name = "faceveil-nvr",
    version,
    about = "Run faceveil on many cameras: one pipeline each, matches as JSON lines",
    after_help = "Either --config FILE (see docs/NVR.md), or --watchlist and cameras as [NAME=]URL on the command line.\nExit codes: 0 stopped, 2 usage, 3 invalid configuration, 4 a camera cannot start."
)]
struct Cli {
    /// Configuration file (TOML); SIGHUP re-reads it
    #[arg(long, conflicts_with_all = ["watchlist", "cameras"])]
    config: Option<PathBuf>,
    /// Check the configuration and every camera's watch list and key, then exit (0 = all good)
    #[arg(long)]
    check: bool,
    /// Watch list of every camera given on the command line
    #[arg(long, required_unless_present = "config")]
    watchlist: Option<PathBuf>,
    /// Key file of that watch list [default: $FACEVEIL_KEY, else <watchlist>.key]
    #[arg(long, requires = "watchlist")]
    key_file: Option<PathBuf>,
    /// Append events to this file instead of standard output
    #[arg(long, requires = "watchlist")]
    out: Option<PathBuf>,
    /// Also report tracks that stay unmatched (faceveil-unknown)
    #[arg(long, requires = "watchlist")]
    report_unknown: bool,
    /// Append each match to this hash-chained audit log (e.g. the list's, <watchlist>.audit)
    #[arg(long, requires = "watchlist")]
    audit_log: Option<PathBuf>,
    /// Trial mode: decide matches and write them to --audit-log as trial-match entries, but
    /// report none (no events); see 'faceveil audit show --trial'
    #[arg(long, requires = "audit_log")]
    trial: bool,
    /// Directory where the highest generation of each watch list used is kept, so that an older
    /// list put back is refused after a restart too [default: $STATE_DIRECTORY, else in memory]
    #[arg(long, value_name = "DIR", requires = "watchlist")]
    state_dir: Option<PathBuf>,
    /// Seconds without a frame after which a live camera is reconnected (0 = never)
    #[arg(long, value_name = "SECONDS", default_value_t = config::DEFAULT_STALL_TIMEOUT, requires = "watchlist")]
    stall_timeout: u32,
    /// Seconds between two faceveil-health lines per camera on the events output (0 = none)
    #[arg(long, value_name = "SECONDS", default_value_t = config::DEFAULT_HEALTH_INTERVAL, requires = "watchlist")]
    health_interval: u32,
    /// Serve Prometheus metrics at http://ADDR/metrics (a loopback address such as 127.0.0.1:9750)
    #[arg(long, value_name = "ADDR", requires = "watchlist")]
    metrics: Option<String>,
    /// Allow a --metrics address that is not on the loopback (reachable from other machines)
    #[arg(long, requires = "metrics")]
    metrics_allow_remote: bool,
    /// Cameras: [NAME=]URL, URL an rtsp://, file:// or other URI, or a path (names default to cam0, cam1, …)
    #[arg(value_name = "[NAME=]URL", required_unless_present = "config")]
    cameras: Vec<String>,
}

/// The configuration the command line describes.
fn config_from_args(cli: &Cli) -> Result<Config, ConfigError> {
    let watchlist = cli.watchlist.clone().expect("required by clap");
    let here = Path::new(".");
    let mut cameras: Vec<Camera> = Vec::new();
    for (i, a) in cli.cameras.iter().enumerate() {
        let (name, url) = match a.split_once('=') {
            Some((n, u)) if !n.is_empty() && !n.contains(['/', ':']) => (n.to_string(), u),
            _ => (format!("cam{i}"), a.as_str()),
        };
        if cameras.iter().any(|c| c.name == name) {
            return Err(ConfigError(format!("camera name '{name}' is used twice")));
        }
        cameras.push(Camera {
            uri: config::uri_of(here, url).map_err(|e| ConfigError(format!("{a}: {e}")))?,
            name,
            watchlist: watchlist.clone(),
            key_file: cli.key_file.clone(),
            threshold: 0.0,
            min_hits: 2,
            cooldown: 60,
            interval: 0,
            idle_interval: config::DEFAULT_IDLE_INTERVAL,
            report_unknown: cli.report_unknown,
            audit_log: cli.audit_log.clone(),
            stall_timeout: cli.stall_timeout,
            state_dir: cli.state_dir.clone().or_else(config::state_directory),
            trial: cli.trial,
        });
    }
    let metrics = match &cli.metrics {
        Some(m) => Some(
            metrics::parse_address(m, cli.metrics_allow_remote)
                .map_err(|e| ConfigError(format!("--metrics: {e}")))?,
        ),
        None => None,
    };
    Ok(Config {
        events: cli.out.clone(),
        health_interval: cli.health_interval,
        metrics,
        cameras,
    })
}

/// The camera's pipeline, `uridecodebin ! veilbin name=fw ! fakesink name=sink`, built from
/// elements and typed properties: no value of the configuration (a URL, a path, a camera name) is
/// ever parsed as pipeline syntax, so a quote in it cannot add elements.
fn build_pipeline(c: &Camera) -> Result<gst::Pipeline, String> {
    let utf8 = |what: &str, p: &Path| {
        p.to_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("{what} {} is not valid UTF-8", p.display()))
    };
    let make = |factory: &str, name: &str| {
        gst::ElementFactory::make(factory)
            .name(name)
            .build()
            .map_err(|_| format!("the GStreamer element '{factory}' is missing"))
    };
    let source = make("uridecodebin", "source")?;
    source.set_property("uri", &c.uri);
    let bin = make("veilbin", "fw")?;
    bin.set_property("camera-id", &c.name);
    bin.set_property("watchlist", utf8("watch list", &c.watchlist)?);
    if let Some(k) = &c.key_file {
        bin.set_property("key-file", utf8("key file", k)?);
    }
    if let Some(a) = &c.audit_log {
        bin.set_property("audit-log", utf8("audit log", a)?);
    }
    if let Some(d) = &c.state_dir {
        bin.set_property("state-dir", utf8("state directory", d)?);
    }
    bin.set_property("threshold", c.threshold);
    bin.set_property("min-hits", c.min_hits);
    bin.set_property("cooldown", c.cooldown);
    bin.set_property("interval", c.interval);
    bin.set_property("idle-interval", c.idle_interval);
    bin.set_property("report-unknown", c.report_unknown);
    bin.set_property("trial", c.trial);
    let sink = make("fakesink", "sink")?;
    sink.set_property("sync", false);
    let pipeline = gst::Pipeline::with_name(&c.name);
    pipeline
        .add_many([&source, &bin, &sink])
        .and_then(|_| bin.link(&sink))
        .map_err(|e| e.to_string())?;
    // The decoder's pads appear once it knows the stream: its first video pad feeds the bin.
    let bin_sink = bin.static_pad("sink").ok_or("veilbin has no sink pad")?;
    source.connect_pad_added(move |_, pad| {
        let video = pad
            .current_caps()
            .or_else(|| Some(pad.query_caps(None)))
            .and_then(|caps| caps.structure(0).map(|s| s.name().starts_with("video/")))
            .unwrap_or(false);
        if video && !bin_sink.is_linked() {
            let _ = pad.link(&bin_sink);
        }
    });
    Ok(pipeline)
}

/// Everything that would stop a camera at start, checked before any camera starts: its watch list
/// opens with its key, has descriptors of the embedder model (or nobody on it) and is not older
/// than its state directory says was used, and its pipeline can be built.
fn preflight(config: &Config) -> Result<(), String> {
    let spec = ModelSpec::resolve(None, Task::Embedder).map_err(|e| e.to_string())?;
    let model = model_id(&spec).map_err(|e| e.to_string())?;
    type Checked = (PathBuf, Option<PathBuf>, Option<PathBuf>);
    let mut checked: BTreeSet<Checked> = BTreeSet::new();
    for c in &config.cameras {
        let fail = |e: String| format!("camera '{}': {e}", c.name);
        let key = (c.watchlist.clone(), c.key_file.clone(), c.state_dir.clone());
        if checked.insert(key) {
            let (secret, warning) = resolve_key_checked(c.key_file.as_deref(), &c.watchlist)
                .map_err(|e| fail(e.to_string()))?;
            if let Some(w) = warning {
                eprintln!("faceveil-nvr: camera '{}': warning: {w}", c.name);
            }
            let list = load(&c.watchlist, &secret).map_err(|e| fail(e.to_string()))?;
            list.check_covers(&c.watchlist, &model)
                .map_err(|e| fail(e.to_string()))?;
            if let Some(dir) = &c.state_dir {
                let floor = Floor::new(dir, &c.watchlist).map_err(|e| fail(e.to_string()))?;
                let held = floor.get().map_err(|e| fail(e.to_string()))?;
                if list.generation < held {
                    let e = OpenError::Rollback {
                        path: c.watchlist.clone(),
                        state: floor.file().to_path_buf(),
                        held,
                        found: list.generation,
                    };
                    return Err(fail(e.to_string()));
                }
            }
        }
        build_pipeline(c).map_err(fail)?;
    }
    Ok(())
}

/// A GStreamer structure as a JSON object (strings, numbers, booleans, arrays and lists of them as
/// JSON arrays; unset times as null).
fn to_json(s: &gst::StructureRef) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("event".into(), s.name().as_str().into());
    for (k, v) in s.iter() {
        m.insert(k.to_string(), value_json(v));
    }
    serde_json::Value::Object(m)
}

/// One field's value as JSON; a type without a JSON form as its GStreamer serialisation (a string).
fn value_json(v: &gst::glib::Value) -> serde_json::Value {
    if let Ok(x) = v.get::<String>() {
        x.into()
    } else if let Ok(x) = v.get::<u64>() {
        if x == u64::MAX {
            serde_json::Value::Null
        } else {
            x.into()
        }
    } else if let Ok(x) = v.get::<u32>() {
        x.into()
    } else if let Ok(x) = v.get::<f64>() {
        x.into()
    } else if let Ok(x) = v.get::<bool>() {
        x.into()
    } else if let Ok(a) = v.get::<gst::ArrayRef>() {
        a.iter().map(|x| value_json(x)).collect()
    } else if let Ok(l) = v.get::<gst::ListRef>() {
        l.iter().map(|x| value_json(x)).collect()
    } else {
        v.serialize()
            .map(|s| s.to_string())
            .unwrap_or_default()
            .into()
    }
}

/// Runs one camera until it ends (file) or until `stop` (RTSP: restarted after each drop).
fn run_camera(c: &Camera, events: &Events, stop: &AtomicBool, health: &Arc<CameraHealth>) {
    let name = &c.name;
    let live = c.uri.starts_with("rtsp://");
    let mut backoff = Duration::from_millis(500);
    while !stop.load(Ordering::SeqCst) {
        let pipeline = match build_pipeline(c) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("[{name}] cannot build the pipeline: {e}");
                return;
            }
        };
        let bus = pipeline.bus().expect("pipeline bus");
        let started = Instant::now();
        // The watchdog: when the last frame reached the sink (ms since `started`).
        let last_frame = Arc::new(std::sync::atomic::AtomicU64::new(0));
        if let Some(pad) = pipeline.by_name("sink").and_then(|s| s.static_pad("sink")) {
            let (last, health) = (last_frame.clone(), health.clone());
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                last.store(started.elapsed().as_millis() as u64, Ordering::Relaxed);
                health.frame();
                gst::PadProbeReturn::Ok
            });
        }
        let stall = Duration::from_secs(c.stall_timeout as u64);
        let _ = pipeline.set_state(gst::State::Playing);
        health.begin(&pipeline);
        let mut ended_with_error = false;
        loop {
            let since_frame =
                started.elapsed() - Duration::from_millis(last_frame.load(Ordering::Relaxed));
            if live && !stall.is_zero() && since_frame >= stall {
                // A camera that stops sending without closing the connection (a frozen server)
                // would stall this camera silently: start it over.
                eprintln!(
                    "[{name}] no video for {} s: reconnecting",
                    since_frame.as_secs()
                );
                ended_with_error = true;
                break;
            }
            if stop.load(Ordering::SeqCst) {
                // Stop: let the pipeline drain (EOS), briefly, then stop it.
                pipeline.send_event(gst::event::Eos::new());
                let _ = bus
                    .timed_pop_filtered(gst::ClockTime::from_seconds(2), &[gst::MessageType::Eos]);
                break;
            }
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else {
                continue;
            };
            match msg.view() {
                gst::MessageView::Element(e) => match e.structure() {
                    Some(s) if s.name() == "faceveil-match" || s.name() == "faceveil-unknown" => {
                        write_event(events, name, &to_json(s).to_string());
                        if s.name() == "faceveil-match" {
                            health.matched();
                        }
                    }
                    Some(s) if s.name() == "faceveil-reloaded" => {
                        let n = s.get::<u32>("identities").unwrap_or_default();
                        let list = s.get::<String>("watchlist").unwrap_or_default();
                        eprintln!("[{name}] watch list {list} reloaded: {n} identities");
                        health.reloaded();
                    }
                    _ => {}
                },
                gst::MessageView::Warning(w) => match w.details() {
                    Some(d) if d.name() == "faceveil-reload-failed" => {
                        let reason = d.get::<String>("reason").unwrap_or_default();
                        eprintln!("[{name}] watch list reload failed: {reason} (old list kept)");
                        health.reload_failed();
                    }
                    d => {
                        match d.map(|d| d.name().as_str()) {
                            Some("faceveil-rollback-refused") => health.rollback_refused(),
                            // Reloaded, its generation not recorded: the new list is in use.
                            Some("faceveil-floor-not-saved") => health.reloaded(),
                            _ => {}
                        }
                        eprintln!("[{name}] warning: {}", w.error())
                    }
                },
                gst::MessageView::Error(e) => {
                    eprintln!("[{name}] error: {} ({:?})", e.error(), e.debug());
                    ended_with_error = true;
                    break;
                }
                gst::MessageView::Eos(_) => {
                    eprintln!("[{name}] end of stream");
                    break;
                }
                _ => {}
            }
        }
        let _ = pipeline.set_state(gst::State::Null);
        health.end();
        if !live || stop.load(Ordering::SeqCst) {
            if ended_with_error && !live {
                eprintln!("[{name}] stopped");
            }
            return;
        }
        // A camera that streamed well for a while starts its backoff over.
        if started.elapsed() > Duration::from_secs(30) {
            backoff = Duration::from_millis(500);
        }
        eprintln!("[{name}] reconnecting in {:.1} s", backoff.as_secs_f32());
        let until = Instant::now() + backoff;
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

/// A running camera: its configuration, its stop flag, its thread.
struct Running {
    camera: Camera,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

fn start(camera: Camera, events: &Events, registry: &Registry) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let (c, ev, st) = (camera.clone(), events.clone(), stop.clone());
    let health = registry.camera(&camera.name);
    let thread = std::thread::spawn(move || {
        run_camera(&c, &ev, &st, &health);
        health.stopped();
    });
    Running {
        camera,
        stop,
        thread,
    }
}

fn stop_all(cams: Vec<Running>) {
    for r in &cams {
        r.stop.store(true, Ordering::SeqCst);
    }
    for r in cams {
        let _ = r.thread.join();
    }
}

/// Applies a new, checked configuration: cameras that are unchanged keep running.
fn apply(
    running: Vec<Running>,
    new: &Config,
    events: &Events,
    registry: &Registry,
) -> Vec<Running> {
    let (keep, gone): (Vec<Running>, Vec<Running>) = running
        .into_iter()
        .partition(|r| new.cameras.contains(&r.camera));
    let stopped = gone.len();
    stop_all(gone);
    let mut out = keep;
    let mut started = 0;
    for c in &new.cameras {
        if !out.iter().any(|r| &r.camera == c) {
            out.push(start(c.clone(), events, registry));
            started += 1;
        }
    }
    registry.retain(|name| new.cameras.iter().any(|c| c.name == name));
    eprintln!(
        "faceveil-nvr: configuration reloaded: {} cameras ({started} started, {stopped} stopped, {} unchanged)",
        out.len(),
        out.len() - started
    );
    out
}

fn main() -> ExitCode {
    // Before any thread exists (ONNX Runtime is loaded later, by the elements).
    gstfaceveil::engine::runtime::disable_telemetry();
    let cli = Cli::parse();
    let load = || match &cli.config {
        Some(p) => Config::load(p),
        None => config_from_args(&cli),
    };
    let config = match load() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("faceveil-nvr: {e}");
            return ExitCode::from(3);
        }
    };
    if let Err(e) = gst::init()
        .map_err(|e| e.to_string())
        .and_then(|_| gstfaceveil::plugin_register_static().map_err(|e| e.to_string()))
    {
        eprintln!("faceveil-nvr: GStreamer: {e}");
        return ExitCode::from(4);
    }
    if let Err(e) = preflight(&config) {
        eprintln!("faceveil-nvr: {e}; nothing started");
        return ExitCode::from(4);
    }
    if cli.check {
        println!("ok: {} cameras", config.cameras.len());
        return ExitCode::SUCCESS;
    }
    let mut events = match open_events(&config.events) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("faceveil-nvr: {e}; nothing started");
            return ExitCode::from(4);
        }
    };

    let registry = Arc::new(Registry::default());
    if let Some(addr) = config.metrics {
        match metrics::serve(addr, registry.clone()) {
            Ok(bound) => eprintln!("faceveil-nvr: metrics at http://{bound}/metrics"),
            Err(e) => {
                eprintln!("faceveil-nvr: {e}; nothing started");
                return ExitCode::from(4);
            }
        }
    }

    let stop = Arc::new(AtomicBool::new(false));
    let reload = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).expect("signal handler");
    }
    signal_hook::flag::register(signal_hook::consts::SIGHUP, reload.clone())
        .expect("signal handler");

    let mut current = config;
    let mut running: Vec<Running> = current
        .cameras
        .iter()
        .map(|c| start(c.clone(), &events, &registry))
        .collect();
    eprintln!("faceveil-nvr: {} cameras running", running.len());
    let mut reported = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(100));
        let every = Duration::from_secs(current.health_interval.into());
        if !every.is_zero() && reported.elapsed() >= every {
            health::report(&registry, &events);
            reported = Instant::now();
        }
        if stop.load(Ordering::SeqCst) {
            stop_all(running);
            return ExitCode::SUCCESS;
        }
        if reload.swap(false, Ordering::SeqCst) {
            reopen_events(&current.events, &events);
            if cli.config.is_none() {
                continue;
            }
            let new = load()
                .map_err(|e| e.to_string())
                .and_then(|c| preflight(&c).map(|_| c));
            match new {
                Err(e) => eprintln!(
                    "faceveil-nvr: configuration not reloaded, the running one stays: {e}"
                ),
                Ok(new) => {
                    if new.events != current.events {
                        match open_events(&new.events) {
                            Ok(e) => {
                                // Every camera writes to the new file: restart them all.
                                stop_all(std::mem::take(&mut running));
                                events = e;
                            }
                            Err(e) => {
                                eprintln!(
                                    "faceveil-nvr: configuration not reloaded, the running one stays: {e}"
                                );
                                continue;
                            }
                        }
                    }
                    if new.metrics != current.metrics {
                        eprintln!(
                            "faceveil-nvr: the metrics address takes effect at the next start; \
                             still serving {}",
                            current.metrics.map_or("none".into(), |a| a.to_string())
                        );
                    }
                    running = apply(running, &new, &events, &registry);
                    current = Config {
                        metrics: current.metrics,
                        ..new
                    };
                }
            }
        }
        if running.iter().all(|r| r.thread.is_finished()) {
            // Every camera ended (files): done.
            stop_all(running);
            return ExitCode::SUCCESS;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_of_a_message_are_json_arrays() {
        gst::init().unwrap();
        let s = gst::Structure::builder("faceveil-match")
            .field("score", 0.9f64)
            .field("reference", 1u32)
            .field("grayscale", true)
            .field("hit-frames", gst::Array::new([3u64, 7]))
            .field("hit-scores", gst::Array::new([0.7f64, 0.9]))
            .field("hit-grayscale", gst::List::new([false, true]))
            .field("running-time", gst::ClockTime::NONE)
            .build();
        assert_eq!(
            to_json(&s),
            serde_json::json!({
                "event": "faceveil-match",
                "score": 0.9,
                "reference": 1,
                "grayscale": true,
                "hit-frames": [3, 7],
                "hit-scores": [0.7, 0.9],
                "hit-grayscale": [false, true],
                "running-time": null,
            })
        );
    }
}
