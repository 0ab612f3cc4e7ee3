// SPDX-License-Identifier: MIT
//! veiloverlay implementation: properties, the font, and what is drawn for each face. The
//! drawing itself is `engine::draw`.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;

use crate::element;
use crate::engine::draw::{self, Font, Rect};
use crate::meta::{self, Face};
use crate::video;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "veiloverlay",
        gst::DebugColorFlags::empty(),
        Some("faceveil overlay"),
    )
});

/// Where the default font is looked for: DejaVu Sans of the usual distribution packages
/// (Debian/Ubuntu `fonts-dejavu-core`, Fedora `dejavu-sans-fonts`, Arch `ttf-dejavu`).
const FONT_CANDIDATES: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

const DEFAULT_FONT_SIZE: u32 = 0;
const DEFAULT_LINE_WIDTH: u32 = 0;
const DEFAULT_LANDMARKS: bool = false;
const DEFAULT_TRACK_IDS: bool = true;

/// Identified faces.
const KNOWN: [u8; 3] = [40, 200, 60];
/// Everyone else.
const OTHER: [u8; 3] = [255, 176, 0];
const TEXT: [u8; 3] = [0, 0, 0];

#[derive(Debug, Clone)]
pub struct Settings {
    font: Option<PathBuf>,
    font_size: u32,
    line_width: u32,
    landmarks: bool,
    track_ids: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            font: None,
            font_size: DEFAULT_FONT_SIZE,
            line_width: DEFAULT_LINE_WIDTH,
            landmarks: DEFAULT_LANDMARKS,
            track_ids: DEFAULT_TRACK_IDS,
        }
    }
}

crate::props::settings_properties!(Settings {
    "font" => font,
    "font-size" => font_size,
    "line-width" => line_width,
    "landmarks" => landmarks,
    "track-ids" => track_ids,
});

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    frames: u64,
    faces: u64,
}

impl element::Stats for Stats {
    fn structure(&self) -> gst::Structure {
        gst::Structure::builder("veiloverlay-stats")
            .field("frames", self.frames)
            .field("faces", self.faces)
            .build()
    }
}

pub struct State {
    font: Font,
    stats: Stats,
}

impl element::Running for State {
    type Stats = Stats;

    fn stats(&self) -> Stats {
        self.stats
    }
}

#[derive(Default)]
pub struct VeilOverlay {
    base: element::Base<Settings, State>,
}

#[glib::object_subclass]
impl ObjectSubclass for VeilOverlay {
    const NAME: &'static str = "GstVeilOverlay";
    type Type = super::VeilOverlay;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for VeilOverlay {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("font")
                    .nick("Font")
                    .blurb(
                        "TrueType/OpenType font file for the labels (default: DejaVu Sans from \
                         the distribution's package, e.g. Debian's fonts-dejavu-core)",
                    )
                    .build(),
                glib::ParamSpecUInt::builder("font-size")
                    .nick("Font size")
                    .blurb("Label height in pixels (0 = a 30th of the frame height, at least 12)")
                    .default_value(DEFAULT_FONT_SIZE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("line-width")
                    .nick("Line width")
                    .blurb("Box line width in pixels (0 = a 360th of the frame height, at least 2)")
                    .default_value(DEFAULT_LINE_WIDTH)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("landmarks")
                    .nick("Landmarks")
                    .blurb("Also mark the face landmarks (eyes, nose, mouth corners)")
                    .default_value(DEFAULT_LANDMARKS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("track-ids")
                    .nick("Track ids")
                    .blurb(
                        "Label faces that are not identified with their track id (identified \
                         faces show label and score; nobody else's label or score is ever shown)",
                    )
                    .default_value(DEFAULT_TRACK_IDS)
                    .mutable_playing()
                    .build(),
                crate::props::stats("frames, faces (drawn)"),
            ]
        });
        PROPS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        self.base.set_property(self, *CAT, value, pspec);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        self.base.property(pspec)
    }
}

impl GstObjectImpl for VeilOverlay {}

impl ElementImpl for VeilOverlay {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face watch overlay",
                "Filter/Effect/Video",
                "Draws the faces veildetect found on the video: boxes, optionally landmarks, \
                 track ids, and label and score of the faces veilmatch identified (green; others \
                 amber), in place, in the frame's own format",
                "faceveil developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        video::pad_templates()
    }
}

element::in_place_filter!(VeilOverlay, video CAT);

/// The font file to use: the property, else the first of [`FONT_CANDIDATES`] that exists.
fn font_file(setting: Option<&Path>) -> Option<PathBuf> {
    match setting {
        Some(p) => Some(p.to_path_buf()),
        None => FONT_CANDIDATES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file()),
    }
}

impl element::Filter for VeilOverlay {
    type State = State;

    fn open(&self) -> Result<State, gst::ErrorMessage> {
        let settings = self.base.settings();
        let Some(path) = font_file(settings.font.as_deref()) else {
            return Err(gst::error_msg!(
                gst::ResourceError::NotFound,
                (
                    "No font for the labels: none of {} exists. Install DejaVu Sans (Debian: \
                     apt-get install fonts-dejavu-core) or set the 'font' property to a .ttf file",
                    FONT_CANDIDATES.join(", ")
                )
            ));
        };
        let font = std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(Font::from_bytes)
            .map_err(|e| {
                gst::error_msg!(
                    gst::ResourceError::OpenRead,
                    (
                        "Font {}: {e}; set the 'font' property to a TrueType/OpenType file",
                        path.display()
                    )
                )
            })?;
        gst::info!(CAT, imp = self, "font {}", path.display());
        Ok(State {
            font,
            stats: Stats::default(),
        })
    }

    fn process(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let settings = self.base.settings();
        let faces = meta::faces(buf);
        self.base.with_frame_state(|state, input| {
            state.stats.frames += 1;
            state.stats.faces += faces.len() as u64;
            if faces.is_empty() {
                return Ok(());
            }
            let h = input.info.height() as usize;
            let line = match settings.line_width {
                0 => (h / 360).max(2),
                n => n as usize,
            } as i64;
            let size = match settings.font_size {
                0 => (h / 30).max(12),
                n => n as usize,
            } as f32;
            input
                .with_planes_mut(buf, |planes| {
                    for f in &faces {
                        draw_face(planes, &state.font, f, line, size, &settings);
                    }
                })
                .map_err(|m| element::fail(self, m))?;
            Ok(())
        })?;
        Ok(gst::FlowSuccess::Ok)
    }
}

/// One face: its box, landmarks if asked, and its label above the box (inside it when the box
/// touches the top of the frame).
fn draw_face(
    planes: &mut [crate::engine::frame::PlaneMut<'_>],
    font: &Font,
    f: &Face,
    line: i64,
    size: f32,
    settings: &Settings,
) {
    let (x, y, bw, bh) = (
        f.rect.0 as i64,
        f.rect.1 as i64,
        f.rect.2 as i64,
        f.rect.3 as i64,
    );
    let colour = if f.identity.is_some() { KNOWN } else { OTHER };
    let r = Rect {
        x0: x,
        y0: y,
        x1: x + bw,
        y1: y + bh,
    };
    draw::outline(planes, r, line, colour);
    if settings.landmarks {
        let d = line.max(2);
        for l in &f.landmarks {
            let (lx, ly) = (l[0].round() as i64, l[1].round() as i64);
            draw::fill(
                planes,
                Rect {
                    x0: lx - d,
                    y0: ly - d,
                    x1: lx + d,
                    y1: ly + d,
                },
                colour,
            );
        }
    }
    // Label and score only for a face veilmatch identified; a track id for the others.
    let text = match &f.identity {
        Some(id) => format!("{} {:.2}", id.label, id.score),
        None if settings.track_ids => format!("#{}", f.track_id),
        None => return,
    };
    let mask = font.render(&text, size);
    let pad = (size / 6.0).ceil() as i64;
    let (lw, lh) = (mask.w as i64 + 2 * pad, mask.h as i64);
    let top = if y - lh >= 0 { y - lh } else { y };
    draw::fill(
        planes,
        Rect {
            x0: x,
            y0: top,
            x1: x + lw,
            y1: top + lh,
        },
        colour,
    );
    draw::blend(planes, &mask, x + pad, top, TEXT);
}
