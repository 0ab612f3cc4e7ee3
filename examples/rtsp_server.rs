// SPDX-License-Identifier: MIT
//! A test camera: serves a still photo as a live H.264 RTSP stream on 127.0.0.1, with
//! gst-rtsp-server. The RTSP tests and pipelines/rtsp.sh use it; stop it with Ctrl-C or a signal.
//!
//! With `--clip FILE` (repeatable) it serves H.264 clips instead, as cameras: the first at
//! `/cam0`, the next at `/cam1`, …, each live (at the clip's own pace) and looped, without
//! re-encoding (bench/nvr_cameras.sh). For each loop of each camera it prints one JSON line when
//! the loop's first frame goes out, `{"mount":"/cam0","loop":0,"unix":1733472000.123}` (seconds
//! since 1970), so that a time in the clip is a time on the wall clock.
//!
//! ```text
//! cargo run --example rtsp_server -- --port 8554 PHOTO    # rtsp://127.0.0.1:8554/cam
//! cargo run --example rtsp_server -- --port 8554 --clip a.mp4 --clip b.mp4   # /cam0, /cam1
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use gst::prelude::*;
use gst_rtsp_server::prelude::*;

/// A test camera: a still photo as a live H.264 RTSP stream on 127.0.0.1.
#[derive(clap::Parser)]
#[command(name = "rtsp_server")]
struct Args {
    /// TCP port to listen on (127.0.0.1 only); the stream is rtsp://127.0.0.1:PORT/cam
    #[arg(long, default_value_t = 8554)]
    port: u16,
    /// An H.264 clip (MP4, Matroska, …) to serve looped at /camN, N counting from 0 (repeatable)
    #[arg(long = "clip", value_name = "FILE")]
    clips: Vec<std::path::PathBuf>,
    /// The photo to serve (any format decodebin reads)
    #[arg(required_unless_present = "clips")]
    photo: Option<std::path::PathBuf>,
}

/// A clip in memory: its access units (H.264 byte-stream), each with its time from the first.
struct Clip {
    caps: gst::Caps,
    units: Vec<(Duration, gst::Buffer)>,
    /// One loop: the last unit's time plus its duration.
    length: Duration,
}

/// Reads every access unit of the H.264 stream in `path` (no decoding, no encoding).
fn load_clip(path: &std::path::Path) -> Result<Clip, String> {
    let pipeline = gst::parse::launch(
        "filesrc name=src ! parsebin ! h264parse \
         ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=sink sync=false",
    )
    .map_err(|e| e.to_string())?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    let by_name = |n: &str| pipeline.by_name(n).expect("named in the description");
    by_name("src").set_property("location", path.to_str().ok_or("path is not UTF-8")?);
    let sink = by_name("sink")
        .downcast::<gst_app::AppSink>()
        .map_err(|_| "not an appsink")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| e.to_string())?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let (mut caps, mut units, mut first, mut last_dur) = (None, Vec::new(), None, Duration::ZERO);
    loop {
        let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) else {
            if sink.is_eos() {
                break;
            }
            // Not H.264, not a clip: the error says why (appsink never sees an end).
            if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
                let _ = pipeline.set_state(gst::State::Null);
                return Err(match msg.view() {
                    gst::MessageView::Error(e) => e.error().to_string(),
                    _ => "error".into(),
                });
            }
            continue;
        };
        let (Some(buffer), Some(c)) = (sample.buffer_owned(), sample.caps()) else {
            continue;
        };
        caps.get_or_insert_with(|| c.to_owned());
        let pts = buffer.pts().ok_or("an access unit without a time")?;
        let first = *first.get_or_insert(pts);
        let mut b = buffer.copy();
        {
            let b = b.make_mut();
            b.set_pts(gst::ClockTime::NONE); // appsrc stamps each with the time it goes out
            b.set_dts(gst::ClockTime::NONE);
        }
        last_dur = buffer.duration().map_or(Duration::ZERO, Duration::from);
        units.push((Duration::from(pts.saturating_sub(first)), b));
    }
    let _ = pipeline.set_state(gst::State::Null);
    let caps = caps.ok_or("no H.264 video in it")?;
    let length = units.last().map(|u| u.0).unwrap_or_default() + last_dur;
    if length.is_zero() {
        return Err("no H.264 video in it".into());
    }
    Ok(Clip {
        caps,
        units,
        length,
    })
}

/// Seconds since 1970 of an instant that is now or in the near past.
fn unix(at: Instant) -> f64 {
    let now = SystemTime::now() - at.elapsed();
    now.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// A factory serving `clip` live and looped: appsrc sends each access unit when its time comes.
fn clip_factory(mount: String, clip: Arc<Clip>) -> gst_rtsp_server::RTSPMediaFactory {
    let factory = gst_rtsp_server::RTSPMediaFactory::new();
    factory.set_launch(
        "( appsrc name=src is-live=true format=time do-timestamp=true \
         ! rtph264pay name=pay0 pt=96 config-interval=-1 )",
    );
    factory.set_shared(true);
    factory.connect_media_configure(move |_, media| {
        let Some(src) = media
            .element()
            .downcast::<gst::Bin>()
            .ok()
            .and_then(|b| b.by_name_recurse_up("src"))
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        else {
            return;
        };
        src.set_caps(Some(&clip.caps));
        // (next unit, loop, when loop 0 started)
        let state = Mutex::new((0usize, 0u32, None::<Instant>));
        let (clip, mount) = (clip.clone(), mount.clone());
        src.set_callbacks(
            gst_app::AppSrcCallbacks::builder()
                .need_data(move |src, _| {
                    let mut st = state.lock().unwrap();
                    let (i, lp) = (st.0, st.1);
                    let start = *st.2.get_or_insert_with(Instant::now);
                    let (at, unit) = &clip.units[i];
                    let due = start + clip.length * lp + *at;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    if i == 0 {
                        println!(
                            "{{\"mount\":\"{mount}\",\"loop\":{lp},\"unix\":{:.3}}}",
                            unix(due)
                        );
                    }
                    let _ = src.push_buffer(unit.clone());
                    *st = if i + 1 == clip.units.len() {
                        (0, lp + 1, st.2)
                    } else {
                        (i + 1, lp, st.2)
                    };
                })
                .build(),
        );
    });
    factory
}

fn main() {
    let Args { port, clips, photo } = <Args as clap::Parser>::parse();
    for p in photo.iter().chain(&clips) {
        if let Err(e) = std::fs::File::open(p).and_then(|f| {
            if f.metadata()?.is_file() {
                Ok(())
            } else {
                Err(std::io::Error::other("not a regular file"))
            }
        }) {
            eprintln!("rtsp_server: {}: {e}", p.display());
            std::process::exit(2);
        }
    }
    gst::init().expect("GStreamer");
    let main_loop = gst::glib::MainLoop::new(None, false);
    let server = gst_rtsp_server::RTSPServer::new();
    server.set_address("127.0.0.1");
    server.set_service(&port.to_string());
    let mounts = server.mount_points().expect("mount points");
    let has_photo = photo.is_some();
    if let Some(photo) = photo {
        let photo = photo.display().to_string();
        let factory = gst_rtsp_server::RTSPMediaFactory::new();
        // One shared live stream for every client: the photo at 10 fps, a key frame every second.
        factory.set_launch(&format!(
            "( filesrc location=\"{photo}\" ! decodebin ! imagefreeze is-live=true ! videoconvert ! videoscale \
             ! video/x-raw,format=I420,width=640,height=480,pixel-aspect-ratio=1/1,framerate=10/1 \
             ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! rtph264pay name=pay0 pt=96 )"
        ));
        factory.set_shared(true);
        mounts.add_factory("/cam", factory);
    }
    // A file named twice is read once.
    let mut loaded: Vec<(std::path::PathBuf, Arc<Clip>)> = Vec::new();
    for (n, path) in clips.iter().enumerate() {
        let clip = match loaded.iter().find(|(p, _)| p == path) {
            Some((_, c)) => c.clone(),
            None => match load_clip(path) {
                Ok(c) => {
                    let c = Arc::new(c);
                    loaded.push((path.clone(), c.clone()));
                    c
                }
                Err(e) => {
                    eprintln!("rtsp_server: {}: {e}", path.display());
                    std::process::exit(2);
                }
            },
        };
        let mount = format!("/cam{n}");
        mounts.add_factory(&mount, clip_factory(mount.clone(), clip));
    }
    let _id = server
        .attach(None)
        .expect("attach the RTSP server (port in use?)");
    if has_photo {
        println!("rtsp://127.0.0.1:{port}/cam");
    }
    if !clips.is_empty() {
        println!(
            "rtsp://127.0.0.1:{port}/cam0 … /cam{}: {} clips",
            clips.len() - 1,
            clips.len()
        );
    }
    main_loop.run();
}
