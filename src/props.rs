// SPDX-License-Identifier: MIT
//! Property specs and pad templates that several elements share, so that their gst-inspect
//! documentation and behaviour stay the same.

use std::path::PathBuf;

use gst::glib;
use gst::prelude::*;

use crate::engine::manifest::Task;

/// The `model` property of an element that uses a `task` model: a path, read at start. `use_` says
/// what the element takes from the model when that is not running it (`veilmatch`).
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
            "Path of the {what} model{use_}, an .onnx with its .toml manifest beside it, read at \
             start (unset: {} from $FACEVEIL_MODEL_DIR or the installed models)",
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
            "ONNX Runtime intra-op threads {whose}, read at start (0 = the available cores, at \
             most 4)"
        ))
        .maximum(256)
        .default_value(0)
        .mutable_ready()
        .build()
}

/// The read-only `stats` property: the element's counters since start.
pub fn stats(counters: &str) -> glib::ParamSpec {
    glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
        .nick("Statistics")
        .blurb(&format!("Counters since start: {counters}"))
        .read_only()
        .build()
}

/// Whose faces are redacted: `veilredact`'s `mode` and `veilbin`'s `redact`. One type for both, so
/// the nicks users type are the same on either element. The integer values of `all`, `unmatched`
/// and `matched` are those veilredact's `mode` always had; `none` came later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, glib::Enum)]
#[enum_type(name = "GstVeilRedactMode")]
pub enum Whose {
    #[enum_value(name = "No face: the video passes through untouched", nick = "none")]
    None = 3,
    #[enum_value(name = "Every face", nick = "all")]
    All = 0,
    #[enum_value(
        name = "Every face but those found on this frame and confirmed as someone on the list by their own descriptor",
        nick = "unmatched"
    )]
    Unmatched = 1,
    #[enum_value(
        name = "Every face whose track carries an identity, confirmed or not",
        nick = "matched"
    )]
    Matched = 2,
}

/// A path property's value: unset or empty is `None`.
fn path(value: &glib::Value) -> Option<PathBuf> {
    value
        .get::<Option<String>>()
        .expect("type checked upstream")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

fn path_value(p: &Option<PathBuf>) -> glib::Value {
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

/// A settings field behind a property: how it is read from and written to a `glib::Value`.
pub trait Prop: Sized {
    fn from_value(v: &glib::Value) -> Self;
    fn value(&self) -> glib::Value;
}

/// [`Prop`] for types a `glib::Value` holds as they are (numbers, booleans, enums).
macro_rules! plain_prop {
    ($($t:ty),*) => {$(
        impl $crate::props::Prop for $t {
            fn from_value(v: &gst::glib::Value) -> Self {
                v.get().expect("type checked upstream")
            }
            fn value(&self) -> gst::glib::Value {
                gst::glib::value::ToValue::to_value(self)
            }
        }
    )*};
}
pub(crate) use plain_prop;
plain_prop!(u32, f32, bool, Whose);

/// A path: unset or empty is `None`.
impl Prop for Option<PathBuf> {
    fn from_value(v: &glib::Value) -> Self {
        path(v)
    }
    fn value(&self) -> glib::Value {
        path_value(self)
    }
}

/// A text: unset or empty is `None`.
impl Prop for Option<String> {
    fn from_value(v: &glib::Value) -> Self {
        v.get::<Option<String>>()
            .expect("type checked upstream")
            .filter(|s| !s.is_empty())
    }
    fn value(&self) -> glib::Value {
        self.to_value()
    }
}

/// Settings whose fields are properties (see [`settings_properties!`]).
pub trait Properties {
    fn set(&mut self, name: &str, value: &glib::Value);
    /// `None` for a property that is not a settings field (e.g. `stats`).
    fn get(&self, name: &str) -> Option<glib::Value>;
}

/// Implements [`Properties`] for a settings struct from a list of `"property-name" => field`.
macro_rules! settings_properties {
    ($settings:ty { $($name:literal => $field:ident),* $(,)? }) => {
        impl $crate::props::Properties for $settings {
            fn set(&mut self, name: &str, value: &gst::glib::Value) {
                match name {
                    $($name => self.$field = $crate::props::Prop::from_value(value),)*
                    _ => unimplemented!("property {name}"),
                }
            }
            fn get(&self, name: &str) -> Option<gst::glib::Value> {
                match name {
                    $($name => Some($crate::props::Prop::value(&self.$field)),)*
                    _ => None,
                }
            }
        }
    };
}
pub(crate) use settings_properties;
