// SPDX-License-Identifier: MIT
//! Every failure is a GStreamer error on the bus and a failed state change, never a crash.

mod common;

use std::path::{Path, PathBuf};

use common::{init, run_failing, scratch};

fn models_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn run_with_model(model: &Path) -> common::Run {
    run_failing(&format!(
        "videotestsrc num-buffers=1 ! video/x-raw,format=I420,width=64,height=64 ! veildetect model=\"{}\" ! fakesink",
        model.display()
    ))
}

#[test]
fn missing_model_names_the_file() {
    init();
    let run = run_with_model(Path::new("/nonexistent/dir/face.onnx"));
    assert!(run.start_failed);
    let e = run.error.expect("error message");
    assert!(
        e.contains("/nonexistent/dir/face.onnx") && e.contains("setup.sh"),
        "{e}"
    );
}

#[test]
fn missing_manifest_names_the_manifest() {
    init();
    let d = scratch("nomanifest");
    let model = d.join("centerface.onnx");
    std::fs::copy(models_dir().join("centerface.onnx"), &model).unwrap();
    let run = run_with_model(&model);
    assert!(run.start_failed);
    let e = run.error.expect("error message");
    assert!(
        e.contains(&d.join("centerface.toml").display().to_string()),
        "{e}"
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn corrupt_model_names_the_file() {
    common::require_runtime();
    let d = scratch("corrupt");
    let model = d.join("broken.onnx");
    std::fs::write(&model, b"this is not an onnx model").unwrap();
    std::fs::copy(models_dir().join("centerface.toml"), d.join("broken.toml")).unwrap();
    let run = run_with_model(&model);
    assert!(run.start_failed);
    let e = run.error.expect("error message");
    assert!(
        e.contains(&model.display().to_string()) && e.contains("could not be loaded"),
        "{e}"
    );
    std::fs::remove_dir_all(d).unwrap();
}

#[test]
fn manifest_that_does_not_fit_the_model() {
    common::require_runtime();
    let d = scratch("mismatch");
    let model = d.join("cf.onnx");
    std::fs::copy(models_dir().join("centerface.onnx"), &model).unwrap();
    let text = std::fs::read_to_string(models_dir().join("centerface.toml")).unwrap();
    std::fs::write(
        d.join("cf.toml"),
        text.replace("heatmap = \"537\"", "heatmap = \"nope\""),
    )
    .unwrap();
    let run = run_with_model(&model);
    assert!(run.start_failed);
    let e = run.error.expect("error message");
    assert!(e.contains("'nope'"), "{e}");
    std::fs::write(
        d.join("cf.toml"),
        text.replace("decoder = \"centerface\"", "decoder = \"yolo9000\""),
    )
    .unwrap();
    let e = run_with_model(&model).error.expect("error message");
    assert!(e.contains("yolo9000"), "{e}");
    std::fs::remove_dir_all(d).unwrap();
}

/// Pushes one frame with `caps` from an appsrc (whose caps are only known at run time) into a
/// veildetect and returns the bus error.
fn push_caps(caps: &str) -> String {
    use gst::prelude::*;
    common::require_runtime();
    let pipeline = common::launch("appsrc name=src format=time ! veildetect ! fakesink");
    let src = common::child::<gst_app::AppSrc>(&pipeline, "src");
    let caps: gst::Caps = caps.parse().unwrap();
    src.set_caps(Some(&caps));
    pipeline.set_state(gst::State::Playing).unwrap();
    let _ = src.push_buffer(gst::Buffer::with_size(64 * 64 * 4).unwrap());
    let _ = src.end_of_stream();
    let bus = pipeline.bus().unwrap();
    let msg = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(20),
            &[gst::MessageType::Error, gst::MessageType::Eos],
        )
        .expect("a message");
    pipeline.set_state(gst::State::Null).unwrap();
    match msg.view() {
        gst::MessageView::Error(e) => format!("{} {:?}", e.error(), e.debug()),
        _ => panic!("{caps}: EOS without an error"),
    }
}

#[test]
fn unsupported_format_is_not_negotiated() {
    let e = push_caps("video/x-raw,format=GRAY8,width=64,height=64,framerate=1/1");
    assert!(e.contains("not-negotiated"), "{e}");
}

#[test]
fn too_small_frame_is_an_error_naming_the_minimum() {
    let e = push_caps("video/x-raw,format=RGBx,width=8,height=8,framerate=1/1");
    assert!(
        e.contains("Frames of 8x8 are smaller than the 16x16 that veildetect takes"),
        "{e}"
    );
}

/// ONNX Runtime can be loaded once per process, so the missing-runtime case runs in a child process:
/// this test binary again, with a bad ORT_DYLIB_PATH, running only `child_missing_runtime`.
#[test]
fn missing_runtime_is_a_clear_error() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "child_missing_runtime",
            "--ignored",
            "--nocapture",
        ])
        .env("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")
        .env("FACEVEIL_CHILD", "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{text}");
    assert!(text.contains("CHILD-OK"), "{text}");
}

#[test]
#[ignore = "run by missing_runtime_is_a_clear_error in a child process"]
fn child_missing_runtime() {
    if std::env::var_os("FACEVEIL_CHILD").is_none() {
        return;
    }
    init();
    let run = run_failing(
        "videotestsrc num-buffers=1 ! video/x-raw,format=I420,width=64,height=64 ! veildetect ! fakesink",
    );
    assert!(run.start_failed);
    let e = run.error.expect("error message");
    assert!(
        e.contains("ORT_DYLIB_PATH")
            && e.contains("setup.sh")
            && e.contains("/nonexistent/libonnxruntime.so"),
        "{e}"
    );
    println!("CHILD-OK");
}

#[test]
fn embedder_and_matcher_errors_name_the_file() {
    init();
    let run = run_failing(
        "videotestsrc num-buffers=1 ! video/x-raw,format=I420,width=64,height=64 \
         ! veilembed model=/nonexistent/emb.onnx ! fakesink",
    );
    assert!(run.start_failed);
    assert!(
        run.error
            .unwrap_or_default()
            .contains("/nonexistent/emb.onnx")
    );
    let run = run_failing(
        "videotestsrc num-buffers=1 ! video/x-raw,width=64,height=64 ! veilmatch watchlist=/nonexistent/w.fvl ! fakesink",
    );
    assert!(run.start_failed);
    let e = run.error.unwrap_or_default();
    assert!(e.contains("/nonexistent/w.fvl"), "{e}");
    let run = run_failing(
        "videotestsrc num-buffers=1 ! video/x-raw,width=64,height=64 ! veilmatch ! fakesink",
    );
    assert!(run.start_failed);
    assert!(run.error.unwrap_or_default().contains("watchlist"));
}
