// SPDX-License-Identifier: MIT
//! veilbin's properties: one table of what each bin property sets on which children, the specs
//! derived from the children's classes, and the typed values the bin keeps for them (set before
//! the children exist, applied when they are made). A property that sets no child is the bin's
//! own (`keep-descriptors`).

use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;

use crate::props::Whose;
use crate::veilredact::Method;

/// A child of the bin whose properties the bin carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Child {
    Detect,
    Embed,
    Match,
    Redact,
}

impl Child {
    /// The child's element type (its class gives the property specs).
    pub fn type_(self) -> glib::Type {
        match self {
            Child::Detect => crate::veildetect::VeilDetect::static_type(),
            Child::Embed => crate::veilembed::VeilEmbed::static_type(),
            Child::Match => crate::veilmatch::VeilMatch::static_type(),
            Child::Redact => crate::veilredact::VeilRedact::static_type(),
        }
    }

    /// The child's name inside the bin (`gst_bin_get_by_name`, debug logs).
    pub fn name(self) -> &'static str {
        match self {
            Child::Detect => "detect",
            Child::Embed => "embed",
            Child::Match => "watch",
            Child::Redact => "redact",
        }
    }
}

/// One property of the bin: the children's properties it sets, its one-sentence blurb, and its
/// default where the bin's differs from the child's.
pub struct Proxied {
    pub name: &'static str,
    /// The children's properties it sets; the first one's spec gives the type, range, nick, flags
    /// and (unless `default`) the default. None: a property of the bin itself, of `default`'s type
    /// (boolean), settable while playing.
    pub to: &'static [(Child, &'static str)],
    pub blurb: &'static str,
    pub default: Option<Setting>,
}

/// The bin detects adaptively by default (its child `veildetect` alone runs on every frame):
/// about half the model runs at the recall of detecting on every frame (BENCHMARKS.md,
/// the recall table of `bench/pipeline.sh`).
const DEFAULT_INTERVAL: u32 = 0;
/// The bin redacts nothing unless asked (its `veilredact` is in passthrough).
const DEFAULT_REDACT: Whose = Whose::None;

/// The bin property whose unset value is the bin's own name (see `camera_id`).
pub const CAMERA_ID: &str = "camera-id";
/// The bin's own property that lets the descriptors out with the video (`meta::strip_descriptors`
/// otherwise).
pub const KEEP_DESCRIPTORS: &str = "keep-descriptors";

use Child::{Detect, Embed, Match, Redact};

/// Every property of the bin, in gst-inspect's order.
pub const PROXIED: &[Proxied] = &[
    Proxied {
        name: "watchlist",
        to: &[(Match, "watchlist")],
        blurb: "Path of the watch-list file (made with 'faceveil init' and 'faceveil enroll'), \
                reloaded when it changes",
        default: None,
    },
    Proxied {
        name: "key-file",
        to: &[(Match, "key-file")],
        blurb: "Key file of the watch list (unset: $FACEVEIL_KEY, else <watchlist>.key), read at \
                start and at each reload",
        default: None,
    },
    Proxied {
        name: "state-dir",
        to: &[(Match, "state-dir")],
        blurb: "Directory where the highest list generation used is kept, so that an older list is \
                refused after a restart too (unset: in memory only)",
        default: None,
    },
    Proxied {
        name: "allow-plaintext",
        to: &[(Match, "allow-plaintext")],
        blurb: "Read an unencrypted watch list ('faceveil init --plaintext'), with a warning",
        default: None,
    },
    Proxied {
        name: "threshold",
        to: &[(Match, "threshold")],
        blurb: "Minimum similarity of a descriptor to an enrolled one for a hit (0 = the \
                embedder manifest's calibrated threshold)",
        default: None,
    },
    Proxied {
        name: "grayscale-threshold",
        to: &[(Match, "grayscale-threshold")],
        blurb: "Minimum similarity for a hit of a grayscale face, IR or black and white (0 = the \
                manifest's calibrated one)",
        default: None,
    },
    Proxied {
        name: "known-margin",
        to: &[(Match, "known-margin")],
        blurb: "How far a listed person's score must lead the best known person's (enrolled with \
                'faceveil enroll --known', never alerted on) for a hit",
        default: None,
    },
    Proxied {
        name: "min-hits",
        to: &[(Match, "min-hits")],
        blurb: "Fresh descriptors of a track that must match the same identity within hit-window \
                frames before it is reported",
        default: None,
    },
    Proxied {
        name: "hit-window",
        to: &[(Match, "hit-window")],
        blurb: "Frames within which min-hits hits must fall",
        default: None,
    },
    Proxied {
        name: "cooldown",
        to: &[(Match, "cooldown")],
        blurb: "Seconds before the same identity is reported again on this camera",
        default: None,
    },
    Proxied {
        name: CAMERA_ID,
        to: &[(Match, "camera-id")],
        blurb: "Camera name put in every message (unset: the bin's name)",
        default: None,
    },
    Proxied {
        name: "report-unknown",
        to: &[(Match, "report-unknown")],
        blurb: "Post 'faceveil-unknown' once for each track still unmatched after min-hits fresh \
                descriptors",
        default: None,
    },
    Proxied {
        name: "audit-log",
        to: &[(Match, "audit-log")],
        blurb: "Hash-chained audit log that each reported match is appended to (unset: none)",
        default: None,
    },
    Proxied {
        name: "attach-snapshot",
        to: &[(Match, "attach-snapshot")],
        blurb: "Add a small JPEG of the matched face to faceveil-match (never of unknown faces)",
        default: None,
    },
    Proxied {
        name: "trial",
        to: &[(Match, "trial")],
        blurb: "Decide and log matches (flagged trial-match in audit-log) but post no \
                faceveil-match message",
        default: None,
    },
    Proxied {
        name: "interval",
        to: &[(Detect, "interval")],
        blurb: "Run the detector on one frame in N, the tracker carrying faces in between (0, the \
                bin's default: adaptive; veildetect's alone is 1)",
        default: Some(Setting::UInt(DEFAULT_INTERVAL)),
    },
    Proxied {
        name: "inference-size",
        to: &[(Detect, "inference-size")],
        blurb: "Longest side of the detector's input in pixels (0 = the manifest's default)",
        default: None,
    },
    Proxied {
        name: "track-threshold",
        to: &[(Detect, "track-threshold")],
        blurb: "Minimum detector score of a face that continues a track (hysteresis)",
        default: None,
    },
    Proxied {
        name: "max-lateness",
        to: &[(Detect, "max-lateness")],
        blurb: "On a live source, skip the detector on frames more than this many milliseconds \
                late (0 = never skip)",
        default: None,
    },
    Proxied {
        name: "idle-interval",
        to: &[(Detect, "idle-interval")],
        blurb: "Motion gating: while no face is tracked, run the detector only where the picture \
                changed, and on a still picture over the whole frame once this many milliseconds \
                after the last such run (0 = off)",
        default: None,
    },
    Proxied {
        name: "detector-model",
        to: &[(Detect, "model")],
        blurb: "Path of the detector model (.onnx with its .toml manifest; unset: the default \
                one), read at start",
        default: None,
    },
    Proxied {
        name: "embedder-model",
        // The matcher takes the list's model check, thresholds and metric from the same model.
        to: &[(Embed, "model"), (Match, "model")],
        blurb: "Path of the embedder model (.onnx with its .toml manifest; unset: the default \
                one), for the embedder and the matcher, read at start",
        default: None,
    },
    Proxied {
        name: "reembed-interval",
        to: &[(Embed, "reembed-interval")],
        blurb: "Frames after which a tracked face gets a fresh descriptor (0 = once per track)",
        default: None,
    },
    Proxied {
        name: "threads",
        to: &[(Detect, "threads"), (Embed, "threads")],
        blurb: "ONNX Runtime intra-op threads of the detector and of the embedder each (0 = the \
                available cores, at most 4), read at start",
        default: None,
    },
    Proxied {
        name: "redact",
        to: &[(Redact, "mode")],
        blurb: "Whose faces are redacted in the video the bin passes on: none (the default), all, \
                unmatched or matched",
        default: Some(Setting::Whose(DEFAULT_REDACT)),
    },
    Proxied {
        name: "redact-method",
        to: &[(Redact, "method")],
        blurb: "How faces are redacted (with redact): pixelate, blur or fill",
        default: None,
    },
    Proxied {
        name: "redact-strength",
        to: &[(Redact, "strength")],
        blurb: "Block size of pixelate, radius of blur, in per cent of the redacted box's longer \
                side",
        default: None,
    },
    Proxied {
        name: "redact-margin",
        to: &[(Redact, "margin")],
        blurb: "Fraction of the face box's size added on every side before redacting",
        default: None,
    },
    Proxied {
        name: KEEP_DESCRIPTORS,
        to: &[],
        blurb: "Pass the faces' descriptors and quality on with the video (off, the default: each \
                face leaves the bin with its box and track id, and a matched face with its \
                identity)",
        default: Some(Setting::Bool(false)),
    },
];

/// What a bin property sets on the children besides [`PROXIED`]'s: `redact=unmatched` has
/// `veilembed` verify identified faces on every frame they are detected (`verify-identified`), so
/// that the redactor can spare a listed person there and nowhere else. Not for `matched`: there a
/// fresh descriptor that misses (a listed person turning away) would drop the identity and leave
/// the face unredacted, while an unverified identity is redacted anyway.
pub fn implied(name: &str, v: &Setting) -> Vec<(Child, &'static str, glib::Value)> {
    match (name, v) {
        ("redact", Setting::Whose(w)) => vec![(
            Embed,
            "verify-identified",
            (*w == Whose::Unmatched).to_value(),
        )],
        _ => Vec::new(),
    }
}

/// The bin's specs, in the order of [`PROXIED`]. From the children's classes, not instances: this
/// runs in class_init, possibly inside the registry scanner, where making elements is not possible.
pub fn specs() -> &'static [glib::ParamSpec] {
    static SPECS: LazyLock<Vec<glib::ParamSpec>> =
        LazyLock::new(|| PROXIED.iter().map(spec).collect());
    SPECS.as_ref()
}

/// The index in [`PROXIED`] of the bin property `name`.
pub fn index(name: &str) -> Option<usize> {
    PROXIED.iter().position(|p| p.name == name)
}

/// The spec of a child's property (the first of `p.to`).
pub fn child_spec(child: Child, prop: &str) -> glib::ParamSpec {
    let class = glib::Class::<glib::Object>::from_type(child.type_()).expect("child class");
    class
        .find_property(prop)
        .unwrap_or_else(|| panic!("{} has no property {prop}", child.name()))
}

/// A proxied property's value, of its spec's type: what the bin keeps for each property.
#[derive(Debug, Clone, PartialEq)]
pub enum Setting {
    Text(Option<String>),
    Float(f32),
    UInt(u32),
    Bool(bool),
    Whose(Whose),
    Method(Method),
}

impl Setting {
    /// From a value GObject has checked against the property's spec.
    pub fn from_value(v: &glib::Value) -> Setting {
        let t = v.type_();
        if t == glib::Type::STRING {
            Setting::Text(checked(v))
        } else if t == glib::Type::F32 {
            Setting::Float(checked(v))
        } else if t == glib::Type::U32 {
            Setting::UInt(checked(v))
        } else if t == glib::Type::BOOL {
            Setting::Bool(checked(v))
        } else if t == Whose::static_type() {
            Setting::Whose(checked(v))
        } else if t == Method::static_type() {
            Setting::Method(checked(v))
        } else {
            unreachable!("veilbin carries no property of type {t}")
        }
    }

    pub fn to_value(&self) -> glib::Value {
        match self {
            Setting::Text(v) => v.to_value(),
            Setting::Float(v) => v.to_value(),
            Setting::UInt(v) => v.to_value(),
            Setting::Bool(v) => v.to_value(),
            Setting::Whose(v) => v.to_value(),
            Setting::Method(v) => v.to_value(),
        }
    }
}

/// A value of the type GObject has checked it to have.
fn checked<'a, T: glib::value::FromValue<'a>>(v: &'a glib::Value) -> T {
    v.get()
        .unwrap_or_else(|_| unreachable!("GObject checks the value's type"))
}

/// The spec of the bin's own property `p` (no `to`): a boolean, settable while playing.
fn own_spec(p: &Proxied) -> glib::ParamSpec {
    let Some(Setting::Bool(default)) = p.default else {
        unreachable!("{}: the bin's own properties are booleans", p.name)
    };
    // "keep-descriptors" → "Keep descriptors"
    let words = p.name.replace('-', " ");
    let nick = words[..1].to_uppercase() + &words[1..];
    glib::ParamSpecBoolean::builder(p.name)
        .nick(&nick)
        .blurb(p.blurb)
        .default_value(default)
        .mutable_playing()
        .build()
}

/// The bin's spec for `p`: the child's under the bin's name, with the bin's blurb and default.
fn spec(p: &Proxied) -> glib::ParamSpec {
    let Some(&(child, prop)) = p.to.first() else {
        return own_spec(p);
    };
    let c = child_spec(child, prop);
    let (name, nick, blurb, flags) = (p.name, c.nick(), p.blurb, c.flags());
    let default = p
        .default
        .clone()
        .unwrap_or_else(|| Setting::from_value(c.default_value()));
    macro_rules! ranged {
        ($spec:ty, $default:expr) => {{
            let c = c.downcast_ref::<$spec>().expect("spec of the value's type");
            <$spec>::builder(name)
                .nick(nick)
                .blurb(blurb)
                .minimum(c.minimum())
                .maximum(c.maximum())
                .default_value($default)
                .flags(flags)
                .build()
        }};
    }
    match default {
        Setting::Text(d) => glib::ParamSpecString::builder(name)
            .nick(nick)
            .blurb(blurb)
            .default_value(d.as_deref())
            .flags(flags)
            .build(),
        Setting::Float(d) => ranged!(glib::ParamSpecFloat, d),
        Setting::UInt(d) => ranged!(glib::ParamSpecUInt, d),
        Setting::Bool(d) => glib::ParamSpecBoolean::builder(name)
            .nick(nick)
            .blurb(blurb)
            .default_value(d)
            .flags(flags)
            .build(),
        Setting::Whose(d) => glib::ParamSpecEnum::builder_with_default(name, d)
            .nick(nick)
            .blurb(blurb)
            .flags(flags)
            .build(),
        Setting::Method(d) => glib::ParamSpecEnum::builder_with_default(name, d)
            .nick(nick)
            .blurb(blurb)
            .flags(flags)
            .build(),
    }
}

/// The bin's settings: a value for every property of [`PROXIED`], in its order; the defaults
/// until set.
#[derive(Debug, Clone)]
pub struct Settings {
    values: Vec<Setting>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            values: specs()
                .iter()
                .map(|s| Setting::from_value(s.default_value()))
                .collect(),
        }
    }
}

impl Settings {
    pub fn get(&self, i: usize) -> &Setting {
        &self.values[i]
    }

    pub fn set(&mut self, i: usize, v: Setting) {
        self.values[i] = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn init() {
        gst::init().unwrap();
    }

    #[test]
    fn every_entry_names_a_child_property_of_the_same_type() {
        init();
        for p in PROXIED {
            let Some(&(c, prop)) = p.to.first() else {
                assert!(
                    matches!(p.default, Some(Setting::Bool(_))),
                    "{}: the bin's own property has no boolean default",
                    p.name
                );
                continue;
            };
            let first = child_spec(c, prop).value_type();
            for &(child, prop) in p.to {
                assert_eq!(child_spec(child, prop).value_type(), first, "{}", p.name);
            }
            if let Some(d) = &p.default {
                assert_eq!(d.to_value().type_(), first, "{}'s default", p.name);
            }
        }
    }

    #[test]
    fn the_bin_keeps_the_childrens_ranges_and_defaults_but_its_own() {
        init();
        for (p, s) in PROXIED.iter().zip(specs()) {
            assert_eq!(s.name(), p.name);
            let Some(&(c, prop)) = p.to.first() else {
                continue;
            };
            let c = child_spec(c, prop);
            assert_eq!(s.flags(), c.flags(), "{}", p.name);
            let want = p
                .default
                .clone()
                .unwrap_or_else(|| Setting::from_value(c.default_value()));
            assert_eq!(Setting::from_value(s.default_value()), want, "{}", p.name);
            if let (Some(s), Some(c)) = (
                s.downcast_ref::<glib::ParamSpecUInt>(),
                c.downcast_ref::<glib::ParamSpecUInt>(),
            ) {
                assert_eq!((s.minimum(), s.maximum()), (c.minimum(), c.maximum()));
            }
        }
        let interval = &specs()[index("interval").unwrap()];
        assert_eq!(interval.default_value().get::<u32>(), Ok(0));
        let redact = &specs()[index("redact").unwrap()];
        assert_eq!(redact.default_value().get::<Whose>(), Ok(Whose::None));
        // Descriptors stay in the bin unless asked for; the choice may change while playing.
        let keep = &specs()[index(KEEP_DESCRIPTORS).unwrap()];
        assert_eq!(keep.default_value().get::<bool>(), Ok(false));
        assert!(keep.flags().contains(gst::PARAM_FLAG_MUTABLE_PLAYING));
        assert_eq!(keep.nick(), "Keep descriptors");
    }

    #[test]
    fn redact_unmatched_and_only_it_verifies_identities() {
        init();
        let verify = |w| {
            let v = implied("redact", &Setting::Whose(w));
            assert!(
                v.iter()
                    .all(|(c, p, _)| (*c, *p) == (Embed, "verify-identified"))
            );
            assert_eq!(
                child_spec(Embed, "verify-identified").value_type(),
                bool::static_type()
            );
            v.iter().any(|(_, _, x)| x.get::<bool>() == Ok(true))
        };
        assert!(verify(Whose::Unmatched));
        for w in [Whose::None, Whose::All, Whose::Matched] {
            assert!(!verify(w), "{w:?}");
        }
        assert!(implied("redact-method", &Setting::Method(Method::Blur)).is_empty());
    }

    #[test]
    fn blurbs_are_one_sentence() {
        init();
        for s in specs() {
            let b = s.blurb().unwrap_or_default();
            assert!(!b.is_empty() && !b.contains(". "), "{}: {b}", s.name());
        }
    }
}
