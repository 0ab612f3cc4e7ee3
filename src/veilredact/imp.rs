// SPDX-License-Identifier: MIT
//! veilredact implementation: properties, the choice of boxes (mode, held boxes of lost tracks,
//! the cover of a live frame that `veildetect` attaches: whole frame, grown and unseen boxes) and
//! the frame's planes. The pixel work and the rule of whom a mode spares are `engine::redact`.

use std::collections::HashMap;
use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use crate::element;
use crate::engine::redact::{self, PixelBox};
use crate::meta;
use crate::props::Whose;
use crate::video;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "veilredact",
        gst::DebugColorFlags::empty(),
        Some("faceveil face redaction"),
    )
});

/// How.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, glib::Enum)]
#[enum_type(name = "GstVeilRedactMethod")]
pub enum Method {
    #[enum_value(
        name = "Blocks of the mean colour (strength: block size)",
        nick = "pixelate"
    )]
    Pixelate,
    #[enum_value(name = "Box blur, three passes (strength: radius)", nick = "blur")]
    Blur,
    #[enum_value(name = "Black", nick = "fill")]
    Fill,
}

impl From<Method> for redact::Method {
    fn from(m: Method) -> Self {
        match m {
            Method::Pixelate => redact::Method::Pixelate,
            Method::Blur => redact::Method::Blur,
            Method::Fill => redact::Method::Fill,
        }
    }
}

crate::props::plain_prop!(Method);

const DEFAULT_MODE: Whose = Whose::Unmatched;
const DEFAULT_METHOD: Method = Method::Pixelate;
const DEFAULT_STRENGTH: u32 = 15;
const DEFAULT_MARGIN: f32 = 0.2;
const DEFAULT_HOLD: u32 = 15;

#[derive(Debug, Clone)]
pub struct Settings {
    mode: Whose,
    method: Method,
    strength: u32,
    margin: f32,
    hold: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: DEFAULT_MODE,
            method: DEFAULT_METHOD,
            strength: DEFAULT_STRENGTH,
            margin: DEFAULT_MARGIN,
            hold: DEFAULT_HOLD,
        }
    }
}

crate::props::settings_properties!(Settings {
    "mode" => mode,
    "method" => method,
    "strength" => strength,
    "margin" => margin,
    "hold" => hold,
});

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    frames: u64,
    redacted: u64,
    held: u64,
    spared: u64,
    /// Live frames redacted whole, carried boxes grown and unseen areas redacted (`veildetect`'s
    /// cover).
    whole: u64,
    grown: u64,
    unseen: u64,
    /// Frames redacted whole because faces the detector attached could not be read here.
    lost: u64,
}

impl element::Stats for Stats {
    fn structure(&self) -> gst::Structure {
        gst::Structure::builder("veilredact-stats")
            .field("frames", self.frames)
            .field("redacted", self.redacted)
            .field("held", self.held)
            .field("spared", self.spared)
            .field("whole", self.whole)
            .field("grown", self.grown)
            .field("unseen", self.unseen)
            .field("lost", self.lost)
            .build()
    }
}

/// A redacted track's last box (frame pixels) and how many more frames it stays redacted once
/// the track is gone.
#[derive(Debug, Clone, Copy)]
struct Held {
    rect: (u32, u32, u32, u32),
    frames_left: u32,
}

pub struct State {
    held: HashMap<u64, Held>,
    scratch: Vec<u32>,
    stats: Stats,
    /// Tracks of another detector's untracked faces (`meta::adopt_foreign_faces`).
    foreign_tracks: meta::ForeignTracks,
    /// The warning about faces lost on the way was posted.
    warned_lost: bool,
}

impl element::Running for State {
    type Stats = Stats;

    fn flush(&mut self) {
        self.held.clear();
    }

    fn input_changed(&mut self, _old: Option<&video::Input>, _new: &video::Input) {
        // Boxes of another frame size mean nothing here (the tracker starts again too).
        self.held.clear();
    }

    fn stats(&self) -> Stats {
        self.stats
    }
}

#[derive(Default)]
pub struct VeilRedact {
    base: element::Base<Settings, State>,
}

#[glib::object_subclass]
impl ObjectSubclass for VeilRedact {
    const NAME: &'static str = "GstVeilRedact";
    type Type = super::VeilRedact;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for VeilRedact {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecEnum::builder_with_default("mode", DEFAULT_MODE)
                    .nick("Mode")
                    .blurb(
                        "Whose faces are redacted: all, unmatched (everyone veilmatch has not \
                         identified on this frame's detection: see veilembed verify-identified), \
                         matched, or none (the video passes through untouched)",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("method", DEFAULT_METHOD)
                    .nick("Method")
                    .blurb("How faces are redacted: pixelate, blur or fill (black)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("strength")
                    .nick("Strength")
                    .blurb(
                        "Block size of pixelate, radius of blur, in per cent of the redacted box's \
                         longer side (ignored by fill)",
                    )
                    .minimum(1)
                    .maximum(100)
                    .default_value(DEFAULT_STRENGTH)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("margin")
                    .nick("Margin")
                    .blurb(
                        "Fraction of the face box's size added on every side before redacting \
                         (hair, ears, chin)",
                    )
                    .minimum(0.0)
                    .maximum(2.0)
                    .default_value(DEFAULT_MARGIN)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("hold")
                    .nick("Hold")
                    .blurb(
                        "Frames a redacted face's last box stays redacted after its track is lost",
                    )
                    .default_value(DEFAULT_HOLD)
                    .mutable_playing()
                    .build(),
                crate::props::stats(
                    "frames, redacted (boxes redacted, held ones included), held (boxes of \
                     lost tracks redacted), spared (faces left as they are because of mode), \
                     whole, grown, unseen (live frames redacted whole, carried boxes grown and \
                     unseen areas redacted: see docs/PRIVACY.md), lost (frames redacted whole \
                     because faces the detector attached could not be read here)",
                ),
            ]
        });
        PROPS.as_ref()
    }

    fn constructed(&self) {
        self.parent_constructed();
        // Answers veildetect's cover query while this element redacts (see meta::COVER_QUERY);
        // otherwise lets it on downstream, to another redactor.
        let weak = self.obj().downgrade();
        if let Some(pad) = self.obj().static_pad("sink") {
            pad.add_probe(gst::PadProbeType::QUERY_DOWNSTREAM, move |_, info| {
                let Some(gst::PadProbeData::Query(q)) = &info.data else {
                    return gst::PadProbeReturn::Ok;
                };
                let asked = q.type_() == gst::QueryType::Custom
                    && q.structure().is_some_and(|s| s.name() == meta::COVER_QUERY);
                let redacts = weak
                    .upgrade()
                    .is_some_and(|o| o.imp().base.live(|s| s.mode) != Whose::None);
                if asked && redacts {
                    gst::PadProbeReturn::Handled
                } else {
                    gst::PadProbeReturn::Ok
                }
            });
        }
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        self.base.set_property(self, *CAT, value, pspec);
        if pspec.name() == "mode" {
            // mode=none: buffers pass untouched, without `process` (nor its metadata check).
            let none = self.base.live(|s| s.mode) == Whose::None;
            self.obj().set_passthrough(none);
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        self.base.property(pspec)
    }
}

impl GstObjectImpl for VeilRedact {}

impl ElementImpl for VeilRedact {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face redaction",
                "Filter/Effect/Video",
                "Pixelates, blurs or fills the faces veildetect found (or, built with the analytics \
                 feature, another detector's GStreamer analytics 'face' entries; all, those \
                 veilmatch did not identify, or those it did), in place; fails closed: a frame \
                 without veildetect or analytics metadata is an error, boxes of lost tracks stay redacted a while, \
                 on a live source what no model run looked at is redacted too",
                "faceveil developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        video::pad_templates()
    }
}

element::in_place_filter!(VeilRedact, video CAT);

impl element::Filter for VeilRedact {
    type State = State;

    fn open(&self) -> Result<State, gst::ErrorMessage> {
        Ok(State {
            held: HashMap::new(),
            scratch: Vec::new(),
            stats: Stats::default(),
            foreign_tracks: meta::ForeignTracks::default(),
            warned_lost: false,
        })
    }

    fn process(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = self.base.settings();
        if meta::frame_info(buf).is_none() {
            // Faces another detector described in GStreamer's analytics metadata.
            self.base.with_frame_state(|state, input| {
                let (w, h) = (input.info.width(), input.info.height());
                Ok(meta::adopt_foreign_faces(
                    buf,
                    w,
                    h,
                    &mut state.foreign_tracks,
                ))
            })?;
        }
        let Some(info) = meta::frame_info(buf) else {
            // Fail closed: without the detector's metadata nobody knows where the faces are.
            return Err(element::fail(
                self,
                gst::error_msg!(
                    gst::StreamError::Format,
                    ("A frame without veildetect metadata reached veilredact: put veildetect \
                         (and veilmatch, for mode=unmatched or matched) before it. Frames are not \
                         passed on unredacted")
                ),
            ));
        };
        let faces = meta::faces(buf);
        // Fewer faces than the detector attached: an element in between dropped or changed their
        // metadata (GStreamer's videoconvert and videoscale drop the ROIs' params). Nobody
        // knows where the missing ones are: fail closed.
        let lost = (info.faces as usize).saturating_sub(faces.len());
        let cover = meta::frame_cover(buf);
        let whose = match settings.mode {
            // In passthrough: no frame reaches here.
            Whose::None => return Ok(gst::FlowSuccess::Ok),
            Whose::All => redact::Whose::All,
            Whose::Unmatched => redact::Whose::Unmatched,
            Whose::Matched => redact::Whose::Matched,
        };
        self.base.with_frame_state(|state, input| {
            state.stats.frames += 1;
            let (w, h) = (input.info.width() as usize, input.info.height() as usize);
            let mut boxes = Vec::with_capacity(faces.len());
            for f in &faces {
                let known = redact::Known::of(
                    f.identity.is_some(),
                    f.identity.as_ref().is_some_and(|i| i.verified),
                );
                if redact::redacts(whose, known, f.detected) {
                    state.held.insert(
                        f.track_id,
                        Held {
                            rect: f.rect,
                            frames_left: settings.hold,
                        },
                    );
                    boxes.push(f.rect);
                } else {
                    state.held.remove(&f.track_id);
                    state.stats.spared += 1;
                }
            }
            // Tracks that were redacted and are gone now: their last box, for `hold` frames.
            let present = |t: &u64| faces.iter().any(|f| f.track_id == *t);
            let mut held = 0;
            state.held.retain(|t, h| {
                if present(t) {
                    return true;
                }
                if h.frames_left == 0 {
                    return false;
                }
                h.frames_left -= 1;
                boxes.push(h.rect);
                held += 1;
                true
            });
            state.stats.held += held;
            // A live frame: what no model run looked at on it (see engine::cover).
            let mut areas = Vec::new();
            if lost > 0 {
                state.stats.lost += 1;
                if !std::mem::replace(&mut state.warned_lost, true) {
                    gst::element_imp_warning!(
                        self,
                        gst::StreamError::Format,
                        (
                            "{lost} of the {} faces the detector attached to a frame cannot be read \
                          here: an element between them removed them or dropped their metadata \
                          (GStreamer's videoconvert and videoscale drop it). Such frames are \
                          redacted whole: put converters and scalers before veildetect or after \
                          veilredact",
                            info.faces
                        )
                    );
                }
                areas.push((0, 0, w as u32, h as u32));
                boxes.clear();
            } else if let Some(c) = &cover {
                if c.whole {
                    state.stats.whole += 1;
                    gst::log!(
                        CAT,
                        imp = self,
                        "frame redacted whole: nothing bounds its faces"
                    );
                    areas.push((0, 0, w as u32, h as u32));
                    boxes.clear();
                } else {
                    state.stats.grown += c.grown.len() as u64;
                    state.stats.unseen += c.unseen.len() as u64;
                    boxes.extend(&c.grown);
                    areas.extend(&c.unseen);
                }
            }
            state.stats.redacted += boxes.len() as u64;
            if boxes.is_empty() && areas.is_empty() {
                return Ok(());
            }
            let margins =
                std::iter::repeat_n(settings.margin, boxes.len()).chain(std::iter::repeat(0.0));
            input
                .with_planes_mut(buf, |planes| {
                    for ((x, y, bw, bh), margin) in boxes.into_iter().chain(areas).zip(margins) {
                        let Some(b) = PixelBox::around(
                            x as f32, y as f32, bw as f32, bh as f32, margin, w, h,
                        ) else {
                            continue;
                        };
                        redact::redact(
                            planes,
                            b,
                            settings.method.into(),
                            settings.strength,
                            &mut state.scratch,
                        );
                    }
                })
                .map_err(|m| element::fail(self, m))?;
            Ok(())
        })?;
        Ok(gst::FlowSuccess::Ok)
    }
}
