// SPDX-License-Identifier: MIT
//! veilbin implementation: a bin `queue ! videoconvert ! veildetect ! queue ! veilembed !
//! veilmatch ! veilredact` (the last in passthrough unless `redact` asks for it; the queues of 3
//! frames let decoding upstream, detection and embedding of different frames overlap) with ghost
//! pads and the main properties of its children proxied. The `videoconvert` works in
//! passthrough (no copy, no conversion) whenever upstream already delivers a format the elements read
//! (RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, I420, NV12), and converts only otherwise.

use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "veilbin",
        gst::DebugColorFlags::empty(),
        Some("faceveil detector + embedder + matcher"),
    )
});

/// Proxied properties: (bin property, child, child property).
const PROXIED: [(&str, &str, &str); 17] = [
    ("watchlist", "watch", "watchlist"),
    ("key-file", "watch", "key-file"),
    ("allow-plaintext", "watch", "allow-plaintext"),
    ("threshold", "watch", "threshold"),
    ("grayscale-threshold", "watch", "grayscale-threshold"),
    ("min-hits", "watch", "min-hits"),
    ("cooldown", "watch", "cooldown"),
    ("camera-id", "watch", "camera-id"),
    ("report-unknown", "watch", "report-unknown"),
    ("audit-log", "watch", "audit-log"),
    ("attach-snapshot", "watch", "attach-snapshot"),
    ("interval", "detect", "interval"),
    ("inference-size", "detect", "inference-size"),
    ("track-threshold", "detect", "track-threshold"),
    ("detector-model", "detect", "model"),
    ("embedder-model", "embed", "model"),
    ("reembed-interval", "embed", "reembed-interval"),
];

/// The bin's `redact` property: whose faces its `veilredact` redacts, or none (it passes the
/// video through untouched then).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, glib::Enum)]
#[enum_type(name = "GstVeilBinRedact")]
pub enum Redact {
    #[enum_value(name = "No redaction", nick = "none")]
    None,
    #[enum_value(name = "Every face", nick = "all")]
    All,
    #[enum_value(
        name = "Every face not identified as someone on the list",
        nick = "unmatched"
    )]
    Unmatched,
    #[enum_value(name = "Only faces identified", nick = "matched")]
    Matched,
}

pub struct VeilBin {
    /// At the input: detection runs in a thread of its own, not in the upstream element's (the
    /// decoder's), so that decoding the next frame overlaps detecting this one (1.2 → 1.5 cores
    /// busy, 25 % more frames per second at the defaults at 1080p).
    input: gst::Element,
    convert: gst::Element,
    detect: gst::Element,
    /// Between the detector and the embedder: the next frame's detection overlaps this frame's
    /// embedding (1.55 → 1.7–1.85 cores busy, 10–20 % more frames per second at 1080p).
    overlap: gst::Element,
    embed: gst::Element,
    watch: gst::Element,
    redact: gst::Element,
    redact_mode: std::sync::Mutex<Redact>,
}

impl VeilBin {
    fn child(&self, name: &str) -> &gst::Element {
        match name {
            "detect" => &self.detect,
            "embed" => &self.embed,
            _ => &self.watch,
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for VeilBin {
    const NAME: &'static str = "GstVeilBin";
    type Type = super::VeilBin;
    type ParentType = gst::Bin;

    fn new() -> Self {
        // Our own elements are made from their types, without the registry.
        let own = |t: glib::Type, name: &str| {
            glib::Object::builder_with_type(t)
                .property("name", name)
                .build()
                .downcast::<gst::Element>()
                .expect("a faceveil element")
        };
        // A queue of 3 frames (no byte or time limit: frames of any size).
        let queue = |name: &str| {
            gst::ElementFactory::make("queue")
                .name(name)
                .property("max-size-buffers", 3u32)
                .property("max-size-bytes", 0u32)
                .property("max-size-time", 0u64)
                .build()
                .expect("queue (GStreamer core) is missing")
        };
        VeilBin {
            input: queue("input"),
            convert: gst::ElementFactory::make("videoconvert")
                .name("convert")
                .build()
                .expect("videoconvert (gst-plugins-base) is missing"),
            detect: own(crate::veildetect::VeilDetect::static_type(), "detect"),
            overlap: queue("overlap"),
            embed: own(crate::veilembed::VeilEmbed::static_type(), "embed"),
            watch: own(crate::veilmatch::VeilMatch::static_type(), "watch"),
            redact: own(crate::veilredact::VeilRedact::static_type(), "redact"),
            redact_mode: std::sync::Mutex::new(Redact::None),
        }
    }
}

impl ObjectImpl for VeilBin {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut v = Vec::new();
            for (name, child, child_prop) in PROXIED {
                // From the child's class, not an instance: this runs in class_init, possibly inside
                // the registry scanner, where making elements is not possible.
                let child_type = match child {
                    "detect" => crate::veildetect::VeilDetect::static_type(),
                    "embed" => crate::veilembed::VeilEmbed::static_type(),
                    _ => crate::veilmatch::VeilMatch::static_type(),
                };
                let class =
                    glib::Class::<glib::Object>::from_type(child_type).expect("child class");
                let pspec = class
                    .find_property(child_prop)
                    .expect("proxied property exists");
                if name == "interval" {
                    v.push(bin_interval(&pspec));
                } else {
                    v.push(renamed(&pspec, name));
                }
            }
            v.push(crate::props::threads(
                "of the detector and of the embedder each",
            ));
            v.push(
                glib::ParamSpecEnum::builder_with_default("redact", Redact::None)
                    .nick("Redact")
                    .blurb(
                        "Redact faces in the video the bin passes on (veilredact with its defaults: \
                         pixelate, margin 0.2): none, all, unmatched (everyone not identified as \
                         someone on the list) or matched",
                    )
                    .mutable_playing()
                    .build(),
            );
            v
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        if pspec.name() == "redact" {
            let mode = value.get::<Redact>().expect("type checked upstream");
            *self.redact_mode.lock().unwrap() = mode;
            let child_mode = match mode {
                Redact::None => None,
                Redact::All => Some("all"),
                Redact::Unmatched => Some("unmatched"),
                Redact::Matched => Some("matched"),
            };
            if let Some(m) = child_mode {
                self.redact.set_property_from_str("mode", m);
            }
            self.redact
                .downcast_ref::<gst_base::BaseTransform>()
                .expect("veilredact is a BaseTransform")
                .set_passthrough(child_mode.is_none());
            gst::debug!(CAT, imp = self, "redact {mode:?}");
            return;
        }
        if pspec.name() == "threads" {
            self.detect.set_property_from_value("threads", value);
            self.embed.set_property_from_value("threads", value);
            return;
        }
        let (_, child, prop) = PROXIED
            .iter()
            .find(|p| p.0 == pspec.name())
            .expect("known property");
        gst::debug!(CAT, imp = self, "{} → {child}.{prop}", pspec.name());
        self.child(child).set_property_from_value(prop, value);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        if pspec.name() == "redact" {
            return self.redact_mode.lock().unwrap().to_value();
        }
        if pspec.name() == "threads" {
            return self.detect.property_value("threads");
        }
        if pspec.name() == "camera-id" && self.watch_camera_unset() {
            return self.obj().name().to_value();
        }
        let (_, child, prop) = PROXIED
            .iter()
            .find(|p| p.0 == pspec.name())
            .expect("known property");
        self.child(child).property_value(prop)
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        let children = [
            &self.input,
            &self.convert,
            &self.detect,
            &self.overlap,
            &self.embed,
            &self.watch,
            &self.redact,
        ];
        self.detect.set_property("interval", DEFAULT_INTERVAL);
        obj.add_many(children).expect("add children");
        gst::Element::link_many(children).expect("link children");
        // No redaction until the `redact` property asks for it.
        self.redact
            .downcast_ref::<gst_base::BaseTransform>()
            .expect("veilredact is a BaseTransform")
            .set_passthrough(true);
        let sink =
            gst::GhostPad::builder_with_target(&self.input.static_pad("sink").expect("sink pad"))
                .expect("ghost sink")
                .name("sink")
                .build();
        let src =
            gst::GhostPad::builder_with_target(&self.redact.static_pad("src").expect("src pad"))
                .expect("ghost src")
                .name("src")
                .build();
        obj.add_pad(&sink).expect("add sink");
        obj.add_pad(&src).expect("add src");
    }
}

/// A copy of a child's property spec under another name: same type, blurb, range and default, so
/// gst-inspect shows the child's documentation.
/// The bin detects adaptively by default (its child `veildetect` alone runs on every frame):
/// about half the model runs at the recall of detecting on every frame (BENCHMARKS.md,
/// `bench/recall.sh`).
const DEFAULT_INTERVAL: u32 = 0;

/// The detector's `interval`, with the bin's default.
fn bin_interval(p: &glib::ParamSpec) -> glib::ParamSpec {
    let p = p
        .downcast_ref::<glib::ParamSpecUInt>()
        .expect("interval is a uint");
    glib::ParamSpecUInt::builder("interval")
        .nick(p.nick())
        .blurb(&format!(
            "{} (the bin's default is 0, adaptive; veildetect's alone is 1)",
            p.blurb().unwrap_or_default()
        ))
        .minimum(p.minimum())
        .maximum(p.maximum())
        .default_value(DEFAULT_INTERVAL)
        .flags(p.flags())
        .build()
}

fn renamed(p: &glib::ParamSpec, name: &str) -> glib::ParamSpec {
    let flags = p.flags();
    let (nick, blurb) = (
        p.nick().to_string(),
        p.blurb().unwrap_or_default().to_string(),
    );
    macro_rules! ranged {
        ($spec:ty, $p:expr) => {
            <$spec>::builder(name)
                .nick(&nick)
                .blurb(&blurb)
                .minimum($p.minimum())
                .maximum($p.maximum())
                .default_value($p.default_value())
                .flags(flags)
                .build()
        };
    }
    if let Some(p) = p.downcast_ref::<glib::ParamSpecString>() {
        glib::ParamSpecString::builder(name)
            .nick(&nick)
            .blurb(&blurb)
            .default_value(p.default_value())
            .flags(flags)
            .build()
    } else if let Some(p) = p.downcast_ref::<glib::ParamSpecFloat>() {
        ranged!(glib::ParamSpecFloat, p)
    } else if let Some(p) = p.downcast_ref::<glib::ParamSpecUInt>() {
        ranged!(glib::ParamSpecUInt, p)
    } else if let Some(p) = p.downcast_ref::<glib::ParamSpecBoolean>() {
        glib::ParamSpecBoolean::builder(name)
            .nick(&nick)
            .blurb(&blurb)
            .default_value(p.default_value())
            .flags(flags)
            .build()
    } else {
        unreachable!("veilbin proxies string, float, uint and boolean properties only")
    }
}

impl VeilBin {
    /// Whether the user left camera-id unset (then the bin's own name is the camera id).
    fn watch_camera_unset(&self) -> bool {
        self.watch.property::<String>("camera-id") == self.watch.name().as_str()
    }
}

impl GstObjectImpl for VeilBin {}

impl ElementImpl for VeilBin {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face watch (detector + embedder + matcher)",
                "Filter/Analyzer/Video",
                "veildetect ! veilembed ! veilmatch in one element, converting the video only when \
                 its format is not one they read; posts faceveil-match; video passes through",
                "faceveil developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let any = gst::Caps::builder("video/x-raw").build();
            let out = crate::video::raw_caps();
            vec![
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &any,
                )
                .unwrap(),
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &out,
                )
                .unwrap(),
            ]
        });
        TEMPLATES.as_ref()
    }

    fn change_state(
        &self,
        transition: gst::StateChange,
    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        if transition == gst::StateChange::NullToReady && self.watch_camera_unset() {
            // Alerts name the camera after this bin, not after its inner element.
            self.watch
                .set_property("camera-id", self.obj().name().as_str());
        }
        self.parent_change_state(transition)
    }
}

impl BinImpl for VeilBin {}
