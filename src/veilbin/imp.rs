// SPDX-License-Identifier: MIT
//! veilbin implementation: a bin `queue ! videoconvert ! veildetect ! queue ! veilembed !
//! veilmatch ! veilredact` (the last in passthrough unless `redact` asks for it; the queues of 3
//! frames let decoding upstream, detection and embedding of different frames overlap) with ghost
//! pads and the children's properties a user needs (`proxy::PROXIED`). The `videoconvert` works in
//! passthrough (no copy, no conversion) whenever upstream already delivers a format the elements read
//! (RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, I420, NV12), and converts only otherwise.
//!
//! The children are made in the NULL → READY transition (a missing GStreamer plugin is an element
//! error there); properties set before are kept in `Settings` and applied to them then.
//!
//! What leaves the bin: the video, and on each frame the faces with their boxes and track ids, a
//! matched face's identity, not the descriptors (`meta::strip_descriptors` in a probe on the src
//! pad, unless `keep-descriptors`). Inside the bin the elements see all of it.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::proxy::{self, CAMERA_ID, Child, KEEP_DESCRIPTORS, PROXIED, Setting, Settings};
use crate::meta;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "veilbin",
        gst::DebugColorFlags::empty(),
        Some("faceveil detector + embedder + matcher"),
    )
});

/// The children whose properties the bin carries (the queues and the converter have none the
/// user sets).
struct Children {
    detect: gst::Element,
    embed: gst::Element,
    watch: gst::Element,
    redact: gst::Element,
}

impl Children {
    fn get(&self, c: Child) -> &gst::Element {
        match c {
            Child::Detect => &self.detect,
            Child::Embed => &self.embed,
            Child::Match => &self.watch,
            Child::Redact => &self.redact,
        }
    }
}

#[derive(Default)]
pub struct VeilBin {
    settings: Mutex<Settings>,
    /// Made at the first NULL → READY, kept after.
    children: Mutex<Option<Children>>,
    /// `keep-descriptors`, for the src pad's probe: read on every buffer in the streaming thread,
    /// without the settings' lock (which is held while the children's properties are set).
    keep_descriptors: AtomicBool,
}

#[glib::object_subclass]
impl ObjectSubclass for VeilBin {
    const NAME: &'static str = "GstVeilBin";
    type Type = super::VeilBin;
    type ParentType = gst::Bin;
}

impl ObjectImpl for VeilBin {
    fn properties() -> &'static [glib::ParamSpec] {
        proxy::specs()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let Some(i) = proxy::index(pspec.name()) else {
            unreachable!("veilbin has no property {}", pspec.name());
        };
        let v = Setting::from_value(value);
        let mut settings = self.settings.lock().unwrap();
        settings.set(i, v.clone());
        if pspec.name() == KEEP_DESCRIPTORS {
            self.keep_descriptors
                .store(v == Setting::Bool(true), Ordering::Relaxed);
        }
        gst::debug!(CAT, imp = self, "set {} to {v:?}", pspec.name());
        if let Some(children) = &*self.children.lock().unwrap() {
            self.apply(children, i, &v);
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let Some(i) = proxy::index(pspec.name()) else {
            unreachable!("veilbin has no property {}", pspec.name());
        };
        self.child_value(i, self.settings.lock().unwrap().get(i))
    }

    fn constructed(&self) {
        self.parent_constructed();
        // The ghost pads exist from the start (a launch line links them in NULL); their targets
        // are set when the children are made.
        let obj = self.obj();
        for name in ["sink", "src"] {
            let templ = obj.pad_template(name).expect("pad template");
            let pad = gst::GhostPad::builder_from_template(&templ)
                .name(name)
                .build();
            if name == "src" {
                let bin = obj.downgrade();
                pad.add_probe(
                    gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
                    move |_, info| {
                        let keep =
                            |b: super::VeilBin| b.imp().keep_descriptors.load(Ordering::Relaxed);
                        if !bin.upgrade().is_some_and(keep) {
                            strip(info);
                        }
                        gst::PadProbeReturn::Ok
                    },
                );
            }
            obj.add_pad(&pad).expect("a new pad name");
        }
    }
}

/// Takes the descriptors off the faces of the buffer (or buffers) leaving the bin; a buffer that
/// carries none is passed on as it is (not copied).
fn strip(info: &mut gst::PadProbeInfo) {
    match &mut info.data {
        Some(gst::PadProbeData::Buffer(buf)) if meta::carries_descriptors(buf) => {
            meta::strip_descriptors(buf.make_mut());
        }
        Some(gst::PadProbeData::BufferList(list)) if list.iter().any(meta::carries_descriptors) => {
            list.make_mut().foreach_mut(|mut buf, _| {
                if meta::carries_descriptors(&buf) {
                    meta::strip_descriptors(buf.make_mut());
                }
                ControlFlow::Continue(Some(buf))
            });
        }
        _ => {}
    }
}

impl VeilBin {
    /// The value the children get for property `i` set to `v`: an unset camera-id is the bin's
    /// name, so that alerts name the camera after the bin, not after its inner matcher.
    fn child_value(&self, i: usize, v: &Setting) -> glib::Value {
        match v {
            Setting::Text(None) if PROXIED[i].name == CAMERA_ID => {
                self.obj().name().as_str().to_value()
            }
            v => v.to_value(),
        }
    }

    /// Sets property `i` (value `v`) on the children it concerns.
    fn apply(&self, children: &Children, i: usize, v: &Setting) {
        let value = self.child_value(i, v);
        for &(child, prop) in PROXIED[i].to {
            gst::trace!(
                CAT,
                imp = self,
                "{} → {}.{prop}",
                PROXIED[i].name,
                child.name()
            );
            children.get(child).set_property_from_value(prop, &value);
        }
        for (child, prop, value) in proxy::implied(PROXIED[i].name, v) {
            children.get(child).set_property_from_value(prop, &value);
        }
    }

    /// Makes the children, links them between the ghost pads and gives them the settings. A
    /// missing GStreamer plugin is an error that names it.
    fn make_children(&self) -> Result<(), gst::ErrorMessage> {
        let children = Children {
            detect: own::<crate::veildetect::VeilDetect>(Child::Detect),
            embed: own::<crate::veilembed::VeilEmbed>(Child::Embed),
            watch: own::<crate::veilmatch::VeilMatch>(Child::Match),
            redact: own::<crate::veilredact::VeilRedact>(Child::Redact),
        };
        // At the input: detection runs in a thread of its own, not in the upstream element's (the
        // decoder's), so that decoding the next frame overlaps detecting this one (1.2 → 1.5 cores
        // busy, 25 % more frames per second at the defaults at 1080p).
        let input = queue("input")?;
        let convert = gst::ElementFactory::make("videoconvert")
            .name("convert")
            .build()
            .map_err(|_| {
                missing(
                    "videoconvert (gst-plugins-base) is missing: install gstreamer1.0-plugins-base",
                )
            })?;
        // Between the detector and the embedder: the next frame's detection overlaps this frame's
        // embedding (1.55 → 1.7–1.85 cores busy, 10–20 % more frames per second at 1080p).
        let overlap = queue("overlap")?;
        let chain = [
            &input,
            &convert,
            &children.detect,
            &overlap,
            &children.embed,
            &children.watch,
            &children.redact,
        ];
        let obj = self.obj();
        let failed =
            |what: &str| gst::error_msg!(gst::CoreError::Failed, ("veilbin could not {what}"));
        obj.add_many(chain)
            .map_err(|_| failed("add its children"))?;
        let wired = gst::Element::link_many(chain)
            .map_err(|_| failed("link its children"))
            .and_then(|()| {
                for (ghost, target) in [("sink", &input), ("src", &children.redact)] {
                    let ghost = obj
                        .static_pad(ghost)
                        .and_then(|p| p.downcast::<gst::GhostPad>().ok())
                        .ok_or_else(|| failed("find its ghost pads"))?;
                    let pad = target
                        .static_pad(ghost.name().as_str())
                        .ok_or_else(|| failed("find its children's pads"))?;
                    ghost
                        .set_target(Some(&pad))
                        .map_err(|_| failed("target its ghost pads"))?;
                }
                Ok(())
            });
        if let Err(e) = wired {
            // Not half made: the next NULL → READY starts again.
            let _ = obj.remove_many(chain);
            return Err(e);
        }
        let settings = self.settings.lock().unwrap();
        for i in 0..PROXIED.len() {
            self.apply(&children, i, settings.get(i));
        }
        *self.children.lock().unwrap() = Some(children);
        gst::debug!(CAT, imp = self, "children made");
        Ok(())
    }
}

/// One of this plugin's elements, made from its type (without the registry: it cannot be missing).
fn own<T: IsA<gst::Element> + IsA<glib::Object> + glib::object::IsClass>(c: Child) -> gst::Element {
    glib::Object::builder::<T>()
        .property("name", c.name())
        .build()
        .upcast()
}

/// A queue of 3 frames (no byte or time limit: frames of any size).
fn queue(name: &str) -> Result<gst::Element, gst::ErrorMessage> {
    gst::ElementFactory::make("queue")
        .name(name)
        .property("max-size-buffers", 3u32)
        .property("max-size-bytes", 0u32)
        .property("max-size-time", 0u64)
        .build()
        .map_err(|_| missing("queue (GStreamer core) is missing: install libgstreamer1.0-0"))
}

fn missing(what: &str) -> gst::ErrorMessage {
    gst::error_msg!(gst::CoreError::MissingPlugin, ("{what}"))
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
        if transition == gst::StateChange::NullToReady {
            let made = self.children.lock().unwrap().is_some();
            if !made && let Err(e) = self.make_children() {
                self.post_error_message(e);
                return Err(gst::StateChangeError);
            }
            // The bin may have been renamed since: an unset camera-id follows its name.
            // (Locks in the order of set_property: settings, then children.)
            let settings = self.settings.lock().unwrap();
            if let Some(i) = proxy::index(CAMERA_ID)
                && let Some(children) = &*self.children.lock().unwrap()
            {
                self.apply(children, i, settings.get(i));
            }
        }
        self.parent_change_state(transition)
    }
}

impl BinImpl for VeilBin {}
