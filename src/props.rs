//! Property specs and pad templates that several elements share, so that their gst-inspect
//! documentation and behaviour stay the same.

use std::path::PathBuf;

use gst::glib;
use gst::prelude::*;

use crate::core::manifest::Task;

/// The `model` property of an element that uses a `task` model: a path, read at start. `use_` says
/// what the element takes from the model when that is not running it (`facewatch`).
pub fn model(task: Task, use_: &str) -> glib::ParamSpec {
    let what = match task {
        Task::Detector => "detector",
        Task::Embedder => "embedder",
    };
    let nick = if use_.is_empty() {
        "Model"
    } else {
        "Embedder model"
    };
    glib::ParamSpecString::builder("model")
        .nick(nick)
        .blurb(&format!(
            "Path of the {what} model{use_} (.onnx, with its .toml manifest beside it). Unset: {} \
             from $FACEWATCH_MODEL_DIR, then the installed data dir (<datadir>/facewatch/models). \
             Read at start",
            task.default_file()
        ))
        .mutable_ready()
        .build()
}

/// The `threads` property: ONNX Runtime intra-op threads, read at start. `whose`: of which models.
pub fn threads(whose: &str) -> glib::ParamSpec {
    glib::ParamSpecUInt::builder("threads")
        .nick("Threads")
        .blurb(&format!(
            "ONNX Runtime intra-op threads {whose} (0 = the machine's available cores, at most 4). \
             Read at start"
        ))
        .maximum(256)
        .default_value(0)
        .mutable_ready()
        .build()
}

/// A path property's value: unset or empty is `None`.
pub fn path(value: &glib::Value) -> Option<PathBuf> {
    value
        .get::<Option<String>>()
        .expect("type checked upstream")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

pub fn path_value(p: &Option<PathBuf>) -> glib::Value {
    p.as_ref().map(|p| p.display().to_string()).to_value()
}

/// Always-present `src` and `sink` pad templates with the same caps.
pub fn pad_templates(caps: &gst::Caps) -> Vec<gst::PadTemplate> {
    [
        ("src", gst::PadDirection::Src),
        ("sink", gst::PadDirection::Sink),
    ]
    .into_iter()
    .map(|(name, dir)| {
        gst::PadTemplate::new(name, dir, gst::PadPresence::Always, caps).expect("pad template")
    })
    .collect()
}
