// SPDX-License-Identifier: MIT
//! `veilbin`'s configuration: each property reaches the children it concerns (set before the
//! children exist, at NULL → READY, or after), `embedder-model` configures the embedder and the
//! matcher both (a list enrolled under two models matches under either; one without the bin's
//! model is an error naming the command that adds it), the shared "whose faces" enum
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

fn embedder(file: &str) -> PathBuf {
    let m = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(file);
    assert!(m.is_file(), "{} missing: run scripts/setup.sh", m.display());
    m
}

fn fp32_embedder() -> PathBuf {
    embedder("sface.onnx")
}

fn int8_embedder() -> PathBuf {
    embedder("sface-int8.onnx")
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

/// The `faceveil-match` messages of a run: their labels and model ids.
fn matched(run: &common::Run) -> Vec<(String, String)> {
    run.element_messages
        .iter()
        .filter(|s| s.name() == "faceveil-match")
        .map(|s| {
            (
                s.get::<String>("label").unwrap(),
                s.get::<String>("model-id").unwrap(),
            )
        })
        .collect()
}

/// Enrolls `label` from `photo` into `list` with the embedder models `models` (each a
/// `--model`).
fn enroll(list: &std::path::Path, label: &str, photo_name: &str, models: &[&str]) -> String {
    let p = photo(photo_name);
    let mut args: Vec<&str> = Vec::new();
    for m in models {
        args.extend(["--model", m]);
    }
    args.extend(["enroll", "--label", label, p.to_str().unwrap()]);
    cli_ok(list, &args)
}

/// docs/WATCHLIST.md: a list keeps one set of descriptors per embedder model. Enrolled under the
/// FP32 and INT8 models, it matches obama through `veilbin` with either (`embedder-model` sets the
/// embedder and the matcher both), each match naming the model it was made under; `list` and
/// `verify` show both models.
#[test]
fn a_list_enrolled_under_two_models_matches_under_either() {
    require_runtime();
    let d = scratch("bin-two-models");
    let list = d.join("w.fvl");
    let (fp32, int8) = (fp32_embedder(), int8_embedder());
    let models = [fp32.to_str().unwrap(), int8.to_str().unwrap()];
    cli_ok(&list, &["init"]);
    let out = enroll(&list, "obama", "obama.jpg", &models);
    assert!(
        out.contains("1 descriptor(s) of sface:") && out.contains("1 of sface-int8:"),
        "{out}"
    );
    enroll(&list, "biden", "biden.jpg", &models);
    let shown = cli_ok(&list, &["list"]);
    for line in shown
        .lines()
        .filter(|l| l.contains("obama") || l.contains("biden"))
    {
        assert!(
            line.contains("descriptors=2  models=sface:") && line.contains(",sface-int8:"),
            "{line}"
        );
    }
    let verified = cli_ok(&list, &["verify"]);
    assert!(
        verified.contains("models sface-int8:") && verified.contains("(2 identities), sface:"),
        "{verified}"
    );

    for (props, model) in [
        (String::new(), "sface:"),
        (format!("embedder-model=\"{}\"", models[1]), "sface-int8:"),
    ] {
        let run = run_pipeline(&obama2_through_veilbin(&list, &props));
        let got = matched(&run);
        assert!(!got.is_empty(), "obama not matched under {model}");
        for (label, id) in got {
            assert_eq!(label, "obama");
            assert!(id.starts_with(model), "{id} under {model}");
        }
        assert!(
            !run.warnings.iter().any(|w| w.contains("no descriptors")),
            "everyone has {model}: {:?}",
            run.warnings
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}

/// A list without descriptors of the bin's model is an error that names the models the list has
/// and the command that adds the missing one; that command (the model given by its installed
/// name) makes the list match under it. Someone left without the model is a warning that counts
/// them, at start.
#[test]
fn a_list_without_the_bins_model_is_an_error_naming_the_enroll_command() {
    require_runtime();
    let d = scratch("bin-model-missing");
    let list = d.join("w.fvl");
    let (fp32, int8) = (fp32_embedder(), int8_embedder());
    let int8_model = format!("embedder-model=\"{}\"", int8.display());
    cli_ok(&list, &["init"]);
    // INT8 only: the default (FP32) bin refuses it
    enroll(&list, "obama", "obama.jpg", &[int8.to_str().unwrap()]);
    let run = common::run_failing(&obama2_through_veilbin(&list, ""));
    let error = run
        .error
        .expect("the FP32 default accepted an INT8-only list");
    assert!(
        error.contains("no descriptors of embedder model sface:")
            && error.contains("it covers sface-int8:")
            && error.contains("'faceveil enroll --model sface.onnx --label LABEL PHOTO…'"),
        "{error}"
    );
    // the CLI says the same (exit 7)
    let (code, text) = common::cli(&list, &["verify"]);
    assert_eq!(code, 7, "{text}");
    assert!(
        text.contains("faceveil enroll --model sface.onnx"),
        "{text}"
    );

    // FP32 only, under INT8: the same error, the other way round
    cli_ok(&list, &["init", "--force"]);
    enroll(&list, "obama", "obama.jpg", &[fp32.to_str().unwrap()]);
    let run = common::run_failing(&obama2_through_veilbin(&list, &int8_model));
    let error = run.error.expect("the INT8 bin accepted an FP32-only list");
    assert!(
        error.contains("no descriptors of embedder model sface-int8:")
            && error.contains("'faceveil enroll --model sface-int8.onnx --label LABEL PHOTO…'"),
        "{error}"
    );
    // biden has FP32 only too; the named command, run for obama, adds INT8 to him
    enroll(&list, "biden", "biden.jpg", &[fp32.to_str().unwrap()]);
    let out = enroll(&list, "obama", "obama.jpg", &["sface-int8.onnx"]);
    assert!(out.contains("1 descriptor(s) of sface-int8:"), "{out}");
    let json = cli_ok(&list, &["list", "--json"]);
    let obama: serde_json::Value = json
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &serde_json::Value| v["label"] == "obama")
        .unwrap();
    assert_eq!(obama["descriptors"], 2, "{obama}");
    assert_eq!(obama["models"].as_object().unwrap().len(), 2, "{obama}");
    // under INT8 obama matches, and biden, who cannot, is counted in a warning
    let run = run_pipeline(&obama2_through_veilbin(&list, &int8_model));
    let got = matched(&run);
    assert!(!got.is_empty(), "obama not matched under INT8");
    assert!(
        got.iter()
            .all(|(l, id)| l == "obama" && id.starts_with("sface-int8:"))
    );
    assert!(
        run.warnings
            .iter()
            .any(|w| w.contains("1 of 2 people on watch list")
                && w.contains("no descriptors of embedder model sface-int8:")),
        "{:?}",
        run.warnings
    );
    // and the CLI warns the same way
    let (code, text) = common::cli(&list, &["--model", "sface-int8.onnx", "verify"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("warning: 1 of 2 people on the list have no descriptors"),
        "{text}"
    );
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
            "idle-interval",
            vec![("detect", "idle-interval")],
            500u32.to_value(),
        ),
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
        // Each element of the bin kept the typed faces in step with the ROIs it changed.
        assert!(meta::typed_faces_in_step(buf), "frame {n}");
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
