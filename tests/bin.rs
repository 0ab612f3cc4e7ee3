// SPDX-License-Identifier: MIT
//! `veilbin`'s configuration: each property reaches the children it concerns (set before the
//! children exist, at NULL → READY, or after), `embedder-model` configures the embedder and the
//! matcher both (a list enrolled with the INT8 embedder matches), the shared "whose faces" enum
//! from launch lines, a missing GStreamer plugin is an element error, not an abort, and the faces
//! leave the bin without descriptors unless `keep-descriptors` lets them out.

mod common;

use std::path::PathBuf;

use gst::prelude::*;
use gst_video::VideoRegionOfInterestMeta;
use gstfaceveil::meta;

use common::{cli_ok, photo, require_runtime, run_pipeline, scratch};

fn veilbin(name: &str) -> gst::Bin {
    common::init();
    gst::ElementFactory::make("veilbin")
        .name(name)
        .build()
        .unwrap()
        .downcast::<gst::Bin>()
        .unwrap()
}

fn child(bin: &gst::Bin, name: &str) -> gst::Element {
    bin.by_name(name)
        .unwrap_or_else(|| panic!("{} has no child {name}", bin.name()))
}

fn int8_embedder() -> PathBuf {
    let m = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/dlib_resnet-int8.onnx");
    assert!(m.is_file(), "{} missing: run scripts/setup.sh", m.display());
    m
}

/// 10 frames of obama2.jpg through `veilbin watchlist=<list> <props>`, as a pipeline description.
fn obama2_through_veilbin(list: &std::path::Path, props: &str) -> String {
    format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! imagefreeze num-buffers=10 \
         ! veilbin watchlist=\"{}\" {props} ! fakesink",
        photo("obama2.jpg").display(),
        list.display()
    )
}

/// docs/MODELS.md: a list enrolled with `faceveil --model <dir>/dlib_resnet-int8.onnx` is used
/// with `veilbin embedder-model=<dir>/dlib_resnet-int8.onnx`. The matcher checks the list against
/// the same model the embedder runs; without the property both use the FP32 default, and the list
/// is refused.
#[test]
fn a_list_enrolled_with_the_int8_embedder_matches_through_embedder_model() {
    require_runtime();
    let d = scratch("bin-int8");
    let list = d.join("w.fvl");
    let m = int8_embedder();
    let m = m.to_str().unwrap();
    cli_ok(&list, &["--model", m, "init"]);
    let obama = photo("obama.jpg");
    cli_ok(
        &list,
        &[
            "--model",
            m,
            "enroll",
            "--label",
            "obama",
            obama.to_str().unwrap(),
        ],
    );

    let run = run_pipeline(&obama2_through_veilbin(
        &list,
        &format!("embedder-model=\"{m}\""),
    ));
    let matches: Vec<_> = run
        .element_messages
        .iter()
        .filter(|s| s.name() == "faceveil-match")
        .collect();
    assert!(!matches.is_empty(), "obama not matched");
    for s in matches {
        assert_eq!(s.get::<String>("label").unwrap(), "obama");
        let id = s.get::<String>("model-id").unwrap();
        assert!(id.starts_with("dlib_resnet-int8:"), "{id}");
    }

    // The list is the INT8 model's: with the default (FP32) embedder the bin refuses it.
    let run = common::run_failing(&obama2_through_veilbin(&list, ""));
    let error = run.error.expect("the FP32 default accepted an INT8 list");
    assert!(error.contains("dlib_resnet-int8"), "{error}");
    std::fs::remove_dir_all(&d).unwrap();
}

/// A bin property, the children's properties it sets (child, property), and a value other than
/// the default.
type Carried = (
    &'static str,
    Vec<(&'static str, &'static str)>,
    gst::glib::Value,
);

/// Every property the bin carries for children that this test checks: the new ones and a few
/// of each child's.
fn carried() -> Vec<Carried> {
    vec![
        ("hit-window", vec![("watch", "hit-window")], 7u32.to_value()),
        ("min-hits", vec![("watch", "min-hits")], 3u32.to_value()),
        ("threshold", vec![("watch", "threshold")], 0.7f32.to_value()),
        (
            "max-lateness",
            vec![("detect", "max-lateness")],
            250u32.to_value(),
        ),
        ("interval", vec![("detect", "interval")], 3u32.to_value()),
        (
            "reembed-interval",
            vec![("embed", "reembed-interval")],
            5u32.to_value(),
        ),
        (
            "embedder-model",
            vec![("embed", "model"), ("watch", "model")],
            "/nowhere/e.onnx".to_value(),
        ),
        (
            "threads",
            vec![("detect", "threads"), ("embed", "threads")],
            1u32.to_value(),
        ),
        (
            "redact",
            vec![("redact", "mode")],
            enum_value("mode", "all"),
        ),
        (
            "redact-method",
            vec![("redact", "method")],
            enum_value("method", "blur"),
        ),
        (
            "redact-strength",
            vec![("redact", "strength")],
            40u32.to_value(),
        ),
        (
            "redact-margin",
            vec![("redact", "margin")],
            0.5f32.to_value(),
        ),
    ]
}

/// A value of veilredact's enum property `prop`, by its nick.
fn enum_value(prop: &str, nick: &str) -> gst::glib::Value {
    common::init();
    let spec = gst::ElementFactory::make("veilredact")
        .build()
        .unwrap()
        .find_property(prop)
        .unwrap();
    let class = gst::glib::EnumClass::with_type(spec.value_type()).unwrap();
    class.to_value_by_nick(nick).unwrap()
}

fn same(a: &gst::glib::Value, b: &gst::glib::Value) -> bool {
    format!("{a:?}") == format!("{b:?}")
}

#[test]
fn properties_set_before_ready_reach_the_children_when_they_are_made() {
    let bin = veilbin("door");
    // Before READY there are no children: the bin answers with its own defaults.
    assert_eq!(
        bin.property::<u32>("interval"),
        0,
        "the bin's adaptive default"
    );
    assert_eq!(bin.property::<u32>("hit-window"), 30);
    assert_eq!(bin.property::<u32>("max-lateness"), 100);
    assert_eq!(bin.property::<u32>("redact-strength"), 15);
    assert_eq!(bin.property::<String>("camera-id"), "door");
    for (name, _, value) in carried() {
        bin.set_property_from_value(name, &value);
        assert!(same(&bin.property_value(name), &value), "{name} read back");
    }
    bin.set_state(gst::State::Ready).unwrap();
    for (name, targets, value) in carried() {
        for (c, prop) in targets {
            let got = child(&bin, c).property_value(prop);
            assert!(same(&got, &value), "{name} → {c}.{prop}: {got:?}");
        }
    }
    // The bin's name is the camera id until camera-id is set.
    assert_eq!(child(&bin, "watch").property::<String>("camera-id"), "door");
    bin.set_state(gst::State::Null).unwrap();
}

#[test]
fn properties_set_after_ready_reach_the_children_at_once() {
    let bin = veilbin("porch");
    bin.set_state(gst::State::Ready).unwrap();
    // Defaults first: the bin's own where they differ from the child's.
    assert_eq!(child(&bin, "detect").property::<u32>("interval"), 0);
    assert!(same(
        &child(&bin, "redact").property_value("mode"),
        &enum_value("mode", "none")
    ));
    for (name, targets, value) in carried() {
        bin.set_property_from_value(name, &value);
        for (c, prop) in targets {
            let got = child(&bin, c).property_value(prop);
            assert!(same(&got, &value), "{name} → {c}.{prop}: {got:?}");
        }
        assert!(same(&bin.property_value(name), &value), "{name} read back");
    }
    bin.set_property("camera-id", "gate");
    assert_eq!(child(&bin, "watch").property::<String>("camera-id"), "gate");
    assert_eq!(bin.property::<String>("camera-id"), "gate");
    bin.set_state(gst::State::Null).unwrap();
}

/// The shared "whose faces" enum by its nicks, as users type them on launch lines; veilredact's
/// `mode=none` passes frames through untouched, even those without detector metadata (which are
/// an error in the other modes: fail closed).
#[test]
fn the_redact_enum_works_from_launch_lines() {
    common::init();
    let pipeline = common::launch(
        "videotestsrc num-buffers=1 ! veilbin name=b redact=all ! veilredact name=r \
         mode=unmatched ! fakesink",
    );
    let bin = common::child::<gst::Bin>(&pipeline, "b");
    let r = common::child::<gst::Element>(&pipeline, "r");
    assert!(same(
        &bin.property_value("redact"),
        &enum_value("mode", "all")
    ));
    assert!(same(
        &r.property_value("mode"),
        &enum_value("mode", "unmatched")
    ));
    pipeline.set_state(gst::State::Ready).unwrap();
    assert!(same(
        &child(&bin, "redact").property_value("mode"),
        &enum_value("mode", "all")
    ));
    pipeline.set_state(gst::State::Null).unwrap();

    let plain = |mode: &str| {
        format!(
            "videotestsrc num-buffers=2 ! video/x-raw,format=RGBx,width=64,height=48 \
             ! veilredact {mode} ! appsink name=sink"
        )
    };
    let run = run_pipeline(&plain("mode=none"));
    assert_eq!(run.buffers.len(), 2);
    // Fails closed: an error, and no frame passed on.
    let run = common::run_failing(&plain("mode=all"));
    assert!(
        run.buffers.is_empty(),
        "a frame without metadata was passed on"
    );
}

const NO_VIDEOCONVERT: &str = "FACEVEIL_TEST_NO_VIDEOCONVERT";

/// Without gst-plugins-base's videoconvert, veilbin's NULL → READY fails with an element error
/// that names the plugin (an abort before). Runs in a process of its own: it takes videoconvert
/// out of the registry.
#[test]
fn a_missing_videoconvert_is_an_element_error_naming_the_plugin() {
    if std::env::var_os(NO_VIDEOCONVERT).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "a_missing_videoconvert_is_an_element_error_naming_the_plugin",
                "--exact",
                "--nocapture",
            ])
            .env(NO_VIDEOCONVERT, "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "{text}");
        return;
    }
    common::init();
    let registry = gst::Registry::get();
    let factory = registry
        .lookup_feature("videoconvert")
        .expect("videoconvert (to take out)");
    registry.remove_feature(&factory);
    let pipeline = gst::Pipeline::new();
    let bin = veilbin("cam");
    pipeline.add(&bin).unwrap();
    assert!(pipeline.set_state(gst::State::Ready).is_err());
    let msg = pipeline
        .bus()
        .unwrap()
        .timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Error])
        .expect("an error message");
    let gst::MessageView::Error(e) = msg.view() else {
        unreachable!()
    };
    assert!(e.error().matches(gst::CoreError::MissingPlugin), "{e:?}");
    assert!(
        e.error()
            .message()
            .contains("videoconvert (gst-plugins-base) is missing"),
        "{e:?}"
    );
    pipeline.set_state(gst::State::Null).unwrap();
}

/// obama2 (on the list) beside biden (not), 12 frames through `veilbin watchlist=<list> <props>`.
fn obama_and_biden_through_veilbin(list: &std::path::Path, props: &str) -> Vec<gst::Buffer> {
    let out = common::obama_and_biden_through(&format!(
        "veilbin watchlist=\"{}\" reembed-interval=1 {props}",
        list.display()
    ));
    assert_eq!(out.len(), 12);
    out
}

/// The param structures of each faceveil face on `buf`, by track id.
fn face_params(buf: &gst::BufferRef) -> Vec<(u64, Vec<String>)> {
    buf.iter_meta::<VideoRegionOfInterestMeta>()
        .filter_map(|roi| {
            let f = meta::Face::from_roi(&roi)?;
            Some((
                f.track_id,
                roi.params().map(|p| p.name().to_string()).collect(),
            ))
        })
        .collect()
}

/// Stripped metadata: nothing of a bystander leaves the bin. By default each face comes out with
/// its box and track id, the listed person's with the label, and no face with a descriptor;
/// the bystander has no identity, label or score of the list. With `keep-descriptors=true` the
/// descriptors come out too.
#[test]
fn the_faces_leave_the_bin_stripped_of_descriptors_unless_asked() {
    require_runtime();
    let d = scratch("bin-strip");
    let list = common::obama_list(&d);

    let out = obama_and_biden_through_veilbin(&list, "");
    for (n, buf) in out.iter().enumerate() {
        for (track, params) in face_params(buf) {
            assert!(
                params
                    .iter()
                    .all(|p| p == meta::FACE_PARAMS || p == meta::IDENTITY_PARAMS),
                "frame {n}, track {track}: {params:?}"
            );
        }
    }
    let last = meta::faces(&out[11]);
    assert_eq!(last.len(), 2, "{last:?}");
    let obama = last
        .iter()
        .find(|f| f.identity.is_some())
        .expect("obama identified by the last frame");
    assert_eq!(obama.identity.as_ref().unwrap().label, "obama");
    let biden = last
        .iter()
        .find(|f| f.identity.is_none())
        .expect("biden not identified");
    assert!(biden.track_id >= 1 && biden.track_id != obama.track_id);
    assert!(biden.rect.0 >= 380 && biden.rect.2 > 0, "{:?}", biden.rect);
    assert!(last.iter().all(|f| f.embedding.is_none()), "{last:?}");

    // The positive control: asked for, the descriptors leave the bin; the rest is as without.
    let out = obama_and_biden_through_veilbin(&list, "keep-descriptors=true");
    let last = meta::faces(&out[11]);
    assert_eq!(last.len(), 2, "{last:?}");
    for f in &last {
        let e = f.embedding.as_ref().expect("the embedder's part");
        assert_eq!(e.vector.as_ref().map(Vec::len), Some(128), "{f:?}");
    }
    let labels: Vec<_> = last
        .iter()
        .map(|f| f.identity.as_ref().map(|i| i.label.as_str()))
        .collect();
    assert!(
        labels.contains(&Some("obama")) && labels.contains(&None),
        "{labels:?}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}
