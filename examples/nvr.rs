// SPDX-License-Identifier: MIT
//! The embedding case, for NVR authors: one pipeline per camera, each
//! `uridecodebin ! facewatchbin ! fakesink`, a bus watch per camera that writes every
//! `facewatch-match` as one JSON line, and cameras that come back by themselves after a drop.
//!
//! ```text
//! cargo run --release --example nvr -- --watchlist watchlist.fwl [--key-file K] [--out FILE] \
//!     [--report-unknown] [NAME=]URL...
//! ```
//! URL: `rtsp://…`, `file://…` or a path. NAME becomes the camera id (default cam0, cam1, …).
//!
//! Behaviour: an RTSP camera that ends (error or EOS) is restarted with backoff (0.5 s, doubling up
//! to 10 s, reset after 30 s of good streaming) while the others keep going; a file ends the camera.
//! Ctrl-C sends EOS to every pipeline, waits for them to finish, and exits.
//! Only the public interface is used: the element names, their properties, and the bus messages
//! documented in docs/EVENTS.md.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

struct Options {
    watchlist: String,
    key_file: Option<String>,
    report_unknown: bool,
    cameras: Vec<(String, String)>,
}

fn parse_args() -> Result<(Options, Option<String>), String> {
    let mut args = std::env::args().skip(1);
    let (mut watchlist, mut key_file, mut out, mut report_unknown, mut cameras) =
        (None, None, None, false, Vec::new());
    while let Some(a) = args.next() {
        match a.as_str() {
            "--watchlist" => watchlist = args.next(),
            "--key-file" => key_file = args.next(),
            "--out" => out = args.next(),
            "--report-unknown" => report_unknown = true,
            _ => {
                let (name, url) = match a.split_once('=') {
                    Some((n, u)) if !n.contains('/') && !n.contains(':') => {
                        (n.to_string(), u.to_string())
                    }
                    _ => (format!("cam{}", cameras.len()), a.clone()),
                };
                let uri = if url.contains("://") {
                    url
                } else {
                    let abs = std::path::absolute(&url).map_err(|e| e.to_string())?;
                    gst::glib::filename_to_uri(abs, None)
                        .map_err(|e| e.to_string())?
                        .to_string()
                };
                cameras.push((name, uri));
            }
        }
    }
    let watchlist = watchlist.ok_or("--watchlist is required")?;
    if cameras.is_empty() {
        return Err("no camera given".into());
    }
    Ok((
        Options {
            watchlist,
            key_file,
            report_unknown,
            cameras,
        },
        out,
    ))
}

/// A GStreamer structure as a JSON object (strings, numbers, booleans; unset times as null).
fn to_json(s: &gst::StructureRef) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    m.insert("event".into(), s.name().as_str().into());
    for (k, v) in s.iter() {
        let j = if let Ok(x) = v.get::<String>() {
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
        } else {
            v.serialize()
                .map(|s| s.to_string())
                .unwrap_or_default()
                .into()
        };
        m.insert(k.to_string(), j);
    }
    serde_json::Value::Object(m)
}

/// Runs one camera until it ends (file) or until shutdown (RTSP: restarted after each drop).
fn run_camera(
    name: &str,
    uri: &str,
    o: &Options,
    out: &Mutex<Box<dyn Write + Send>>,
    stop: &AtomicBool,
) {
    let live = uri.starts_with("rtsp://");
    let mut backoff = Duration::from_millis(500);
    while !stop.load(Ordering::SeqCst) {
        let key = o
            .key_file
            .as_ref()
            .map(|k| format!("key-file=\"{k}\""))
            .unwrap_or_default();
        let desc = format!(
            "uridecodebin uri=\"{uri}\" ! facewatchbin name=fw camera-id=\"{name}\" watchlist=\"{}\" {key} \
             report-unknown={} ! fakesink sync=false",
            o.watchlist, o.report_unknown
        );
        let pipeline = match gst::parse::launch(&desc) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("[{name}] cannot build the pipeline: {e}");
                return;
            }
        };
        let bus = pipeline.bus().expect("pipeline bus");
        let started = Instant::now();
        let _ = pipeline.set_state(gst::State::Playing);
        let mut ended_with_error = false;
        loop {
            if stop.load(Ordering::SeqCst) {
                // Ctrl-C: let the pipeline drain (EOS), briefly, then stop it.
                pipeline.send_event(gst::event::Eos::new());
                let _ = bus
                    .timed_pop_filtered(gst::ClockTime::from_seconds(2), &[gst::MessageType::Eos]);
                break;
            }
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else {
                continue;
            };
            match msg.view() {
                gst::MessageView::Element(e) => {
                    if let Some(s) = e.structure()
                        && (s.name() == "facewatch-match" || s.name() == "facewatch-unknown")
                    {
                        let mut w = out.lock().unwrap();
                        let _ = writeln!(w, "{}", to_json(s));
                        let _ = w.flush();
                    }
                }
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

fn main() {
    let (options, out) = match parse_args() {
        Ok(x) => x,
        Err(e) => {
            eprintln!(
                "nvr: {e}\nusage: nvr --watchlist FILE [--key-file K] [--out FILE] [--report-unknown] [NAME=]URL..."
            );
            std::process::exit(2);
        }
    };
    gst::init().expect("GStreamer");
    gstfacewatch::plugin_register_static().expect("facewatch plugin");
    let sink: Box<dyn Write + Send> = match &out {
        Some(path) => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap_or_else(|e| panic!("{path}: {e}")),
        ),
        None => Box::new(std::io::stdout()),
    };
    let out = Arc::new(Mutex::new(sink));
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst)).expect("Ctrl-C handler");
    }
    let options = Arc::new(options);
    let threads: Vec<_> = (0..options.cameras.len())
        .map(|i| {
            let (o, out, stop) = (options.clone(), out.clone(), stop.clone());
            std::thread::spawn(move || {
                let (name, uri) = &o.cameras[i];
                run_camera(name, uri, &o, &out, &stop)
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
}
