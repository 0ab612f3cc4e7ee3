// SPDX-License-Identifier: MIT
//! `veilbin redact=…` on a live 1080p camera that the machine cannot keep up with (a slow consumer
//! downstream): the detector leaves out model runs to stay live, and still no face leaves in the
//! clear. A face enters at frame 10 and crosses the frame at 30 px a frame; a second `veildetect`
//! after the redaction, on every frame, must find no face on any frame (the positive control: the
//! same pipeline without redaction, where it does find it).

mod common;

use std::time::{Duration, Instant};

use common::{Sprite, require_runtime, scratch};
use gst::prelude::*;

const W: usize = 1920;
const H: usize = 1080;
const FRAMES: usize = 60;
/// The frame the face enters on.
const ENTERS: usize = 10;

/// Frame `n`: grey, with the face from frame [`ENTERS`] on, 30 px further right each frame.
fn live_frame(sprite: &Sprite, n: usize) -> Vec<u8> {
    let stride = W * 3;
    let mut frame = vec![90u8; stride * H];
    if n >= ENTERS {
        let (x0, y0) = (100 + 30 * (n - ENTERS), 400);
        for y in 0..sprite.h {
            let dst = (y0 + y) * stride + x0 * 3;
            frame[dst..dst + sprite.w * 3]
                .copy_from_slice(&sprite.rgb[y * sprite.w * 3..(y + 1) * sprite.w * 3]);
        }
    }
    frame
}

/// What one live run gave: the faces the checking detector found on each frame that came out, and
/// the stats of the bin's detector and redactor.
struct LiveRun {
    found: Vec<usize>,
    detect: gst::Structure,
    redact: gst::Structure,
}

/// Pushes [`FRAMES`] frames in real time (25 fps, timestamped on arrival, as a camera) through
/// `appsrc is-live=true ! <bin> ! identity sleep-time=40 ms ! veildetect name=check` (the check
/// on every frame, never skipping, never gated) and collects its faces per frame from its messages.
fn live_run(bin: &str, sprite: &Sprite) -> LiveRun {
    let pipeline = common::launch(&format!(
        "appsrc name=src is-live=true format=time do-timestamp=true max-bytes=0 \
         caps=video/x-raw,format=RGB,width={W},height={H},framerate=25/1 \
         ! {bin} ! identity sleep-time=40000 \
         ! veildetect name=check interval=1 max-lateness=0 idle-interval=0 post-messages=true \
         ! fakesink sync=false"
    ));
    let src = common::child::<gst_app::AppSrc>(&pipeline, "src");
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let frames: Vec<Vec<u8>> = (0..FRAMES).map(|n| live_frame(sprite, n)).collect();
    let pusher = std::thread::spawn(move || {
        let start = Instant::now();
        for (n, frame) in frames.into_iter().enumerate() {
            let due = start + Duration::from_millis(40 * n as u64);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            src.push_buffer(gst::Buffer::from_mut_slice(frame)).unwrap();
        }
        src.end_of_stream().unwrap();
    });
    let deadline = Instant::now() + common::PIPELINE_TIMEOUT;
    let mut found = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_nseconds(left.as_nanos() as u64)) else {
            pipeline.set_state(gst::State::Null).unwrap();
            panic!("{bin}: no EOS within {:?}", common::PIPELINE_TIMEOUT);
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                pipeline.set_state(gst::State::Null).unwrap();
                panic!("{bin}: {} {:?}", e.error(), e.debug());
            }
            gst::MessageView::Element(e) => {
                let from_check = msg.src().is_some_and(|s| s.name() == "check");
                if let Some(s) = e.structure()
                    && from_check
                    && s.name() == "veildetect"
                {
                    found.push(s.get::<gst::List>("faces").unwrap().len());
                }
            }
            _ => {}
        }
    }
    pusher.join().unwrap();
    let stats = |name: &str| {
        pipeline
            .by_name(name)
            .unwrap_or_else(|| panic!("no {name}"))
            .property::<gst::Structure>("stats")
    };
    let run = LiveRun {
        found,
        detect: stats("detect"),
        redact: stats("redact"),
    };
    pipeline.set_state(gst::State::Null).unwrap();
    eprintln!(
        "{bin}: faces found after it per frame {:?}\n  {}\n  {}",
        run.found, run.detect, run.redact
    );
    run
}

/// The check finds no face on any frame that came out, all frames came out, and the detector in
/// the bin was overloaded (it left out model runs).
fn assert_no_face_leaves(run: &LiveRun, what: &str) {
    assert_eq!(run.found.len(), FRAMES, "{what}: frames lost");
    let clear: Vec<usize> = (0..FRAMES).filter(|&n| run.found[n] > 0).collect();
    assert!(
        clear.is_empty(),
        "{what}: a face in the clear on frames {clear:?}"
    );
    let skipped = run.detect.get::<u64>("skipped").unwrap();
    assert!(skipped > 0, "{what}: the detector kept up: {}", run.detect);
}

#[test]
fn on_an_overloaded_live_camera_no_face_leaves_in_the_clear() {
    require_runtime();
    let d = scratch("redact-live");
    let list = common::obama_list(&d);
    let bin = |redact: &str| format!("veilbin watchlist=\"{}\" {redact}", list.display());
    // biden is not on the list: redact=unmatched must redact him as redact=all does.
    let sprite = common::sprite("biden.jpg", 200, 300);
    // Positive control: without redaction the check finds the face once it is in view, never
    // before.
    let plain = live_run(&bin(""), &sprite);
    assert_eq!(plain.found.len(), FRAMES);
    assert!(
        plain.found[..ENTERS].iter().all(|&n| n == 0),
        "{:?}",
        plain.found
    );
    let seen = plain.found[ENTERS..].iter().filter(|&&n| n > 0).count();
    assert!(
        seen * 10 >= (FRAMES - ENTERS) * 9,
        "the check finds the face on {seen} of {} frames",
        FRAMES - ENTERS
    );
    // Nobody redacts: the detector spares the cover's cost (no grid, no unseen areas).
    assert_eq!(
        plain.detect.get::<u64>("cover-unseen"),
        Ok(0),
        "{}",
        plain.detect
    );
    for redact in ["redact=all", "redact=unmatched"] {
        let run = live_run(&bin(redact), &sprite);
        assert_no_face_leaves(&run, redact);
        // The frames left without a full-frame run were covered, by the areas that changed since
        // the full run of frame 0 (the redactor asked the detector for them), not passed on.
        let r = &run.redact;
        assert!(r.get::<u64>("unseen").unwrap() > 0, "{redact}: {r}");
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// CPU seconds (user + system) this process has used so far.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // the fields after the command's closing parenthesis; utime and stime are the 12th and 13th
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

/// The measurement of bench/redact_live.sh (BENCHMARKS.md): `BENCH_CLIP` (a 1080p30 H.264 clip)
/// through `veilbin redact=all`, live (mixed onto a live `videotestsrc` by `compositor`, as a
/// camera) with a consumer that takes `BENCH_SLOW_US` per frame, or not live (`BENCH_LIVE=0`).
/// Prints one JSON line: frames out, wall time, CPU per frame, the detector's runs and skips and
/// the redactor's whole / grown / unseen counts.
#[test]
#[ignore = "a benchmark: bench/redact_live.sh runs it on a release build"]
fn bench_live_cover() {
    require_runtime();
    let clip = std::env::var("BENCH_CLIP").expect("BENCH_CLIP");
    let slow: u64 = std::env::var("BENCH_SLOW_US").map_or(0, |v| v.parse().unwrap());
    let live = std::env::var("BENCH_LIVE").map_or(true, |v| v != "0");
    let frames: u64 = std::env::var("BENCH_FRAMES").map_or(300, |v| v.parse().unwrap());
    let d = scratch("redact-live-bench");
    let list = common::obama_list(&d);
    let caps = "video/x-raw,format=I420,width=1920,height=1080,framerate=30/1";
    let decode = format!("filesrc location=\"{clip}\" ! qtdemux ! h264parse ! avdec_h264");
    let input = if live {
        format!(
            "videotestsrc is-live=true pattern=black num-buffers={frames} ! {caps} \
             ! compositor name=c ! {caps}"
        )
    } else {
        decode.clone()
    };
    let tail = if live {
        format!(" {decode} ! c.")
    } else {
        String::new()
    };
    let desc = format!(
        "{input} ! veilbin watchlist=\"{}\" redact=all ! identity sleep-time={slow} \
         ! fakesink name=sink sync=false{tail}",
        list.display()
    );
    let (t0, c0) = (Instant::now(), cpu_seconds());
    let pipeline = common::launch(&desc);
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let c = count.clone();
    pipeline
        .by_name("sink")
        .unwrap()
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(300)) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{} {:?}", e.error(), e.debug()),
            _ => {}
        }
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_seconds() - c0);
    let stats = |name: &str| {
        pipeline
            .by_name(name)
            .unwrap()
            .property::<gst::Structure>("stats")
    };
    let (det, red) = (stats("detect"), stats("redact"));
    pipeline.set_state(gst::State::Null).unwrap();
    let n = count.load(std::sync::atomic::Ordering::Relaxed);
    let get = |s: &gst::Structure, f: &str| s.get::<u64>(f).unwrap_or(0);
    println!(
        "{{\"live\":{live},\"slow_us\":{slow},\"frames\":{n},\"wall_s\":{wall:.2},\"fps\":{:.1},\
         \"cpu_ms_per_frame\":{:.1},\"inferences\":{},\"skipped\":{},\"whole\":{},\"grown\":{},\
         \"unseen\":{},\"boxes\":{}}}",
        n as f64 / wall,
        1000.0 * cpu / n.max(1) as f64,
        get(&det, "inferences"),
        get(&det, "skipped"),
        get(&red, "whole"),
        get(&red, "grown"),
        get(&red, "unseen"),
        get(&red, "redacted"),
    );
    std::fs::remove_dir_all(&d).unwrap();
}
