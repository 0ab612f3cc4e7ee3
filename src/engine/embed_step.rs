// SPDX-License-Identifier: MIT
//! The per-frame work of `veilembed`, GStreamer-free: for the faces of one frame, warp each chip
//! and score its quality, decide which faces get a fresh descriptor (gates, then the per-track
//! re-embed policy of `engine::reembed`), run them as one batched inference and hand every face its
//! descriptor, fresh or reused from its track. The element and the benchmark both run this.

use std::collections::HashMap;
use std::time::Instant;

use crate::engine::embedder::{Embedder, eye_distance, frontalness, square_pixels};
use crate::engine::frame::FrameView;
use crate::engine::reembed::{DescriptorCache, Policy, Reason};
use crate::engine::runtime::RuntimeError;

/// The element's settings that steer the per-frame decisions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gates {
    /// Faces whose eyes are closer than this many pixels get no descriptor.
    pub min_eye_distance: f32,
    /// Faces under this quality get no new descriptor.
    pub min_quality: f32,
    /// Most faces per inference (0 = all in one).
    pub max_batch: usize,
    /// Frames after which a track gets a fresh descriptor (0 = once per track).
    pub reembed_interval: u32,
}

/// The frame: its pixels, pixel aspect ratio (1 for square pixels; faces are aligned in square
/// pixels) and number (counted by the caller, one up per frame).
#[derive(Clone, Copy)]
pub struct FrameIn<'a, 'b> {
    pub view: &'a FrameView<'b>,
    pub par: f32,
    pub number: u64,
}

/// One face of the frame, as the detector left it: `detected` when its model found the face on
/// this frame (otherwise the landmarks are the tracker's prediction, good for a box and a quality,
/// not for a fresh descriptor). `verify`: its track carries a watch-list identity that is to be
/// confirmed on every frame the face is detected (a fresh descriptor whenever it passes the gates).
#[derive(Clone, Copy, Debug)]
pub struct FaceIn<'a> {
    pub track: u64,
    pub landmarks: &'a [[f32; 2]],
    pub detected: bool,
    pub verify: bool,
}

/// What the frame's face gets.
#[derive(Clone, Debug, PartialEq)]
pub struct FaceOut {
    pub quality: f32,
    /// The face is grayscale on this frame (see `embedder::colourfulness`).
    pub grayscale: bool,
    /// The descriptor: fresh, reused from the track, or none (gated and never embedded).
    pub vector: Option<Vec<f32>>,
    /// Computed on this frame.
    pub fresh: bool,
}

/// A decision about one face, for the element's debug log. Carries no descriptor.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Decision {
    /// Under `min_eye_distance` or `min_quality`, or landmarks that fit no chip (quality 0).
    Gated { eye_distance: f32, quality: f32 },
    /// Gets a fresh descriptor.
    Embed(Reason),
    /// Keeps its track's descriptor (`false`: the track has none yet).
    Reuse(bool),
}

/// Counters over all frames, as the element's `stats` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counts {
    pub frames: u64,
    pub faces: u64,
    pub descriptors: u64,
    pub inferences: u64,
    pub reused: u64,
    pub gated: u64,
    pub inference_ns: u64,
    /// Inferences that also carried other elements' (cameras') faces.
    pub shared: u64,
    /// Chips warped from the frame, with their quality and colour checks.
    pub chip_ns: u64,
    /// Chips warped.
    pub chips: u64,
}

#[derive(Debug)]
pub struct FrameEmbedder {
    embedder: Embedder,
    cache: DescriptorCache,
    /// Chips of the faces that get a fresh descriptor, one after another (reused across frames).
    chips: Vec<f32>,
    /// Per track, what its face looked like when the detector last ran: frames in between (the
    /// tracker's boxes) reuse it instead of warping a chip that could not be embedded anyway.
    seen: HashMap<u64, Seen>,
    counts: Counts,
}

/// A track's face on the last frame the detector ran on.
#[derive(Clone, Copy, Debug)]
struct Seen {
    size: f32,
    quality: f32,
    grayscale: bool,
    eligible: bool,
    /// The chip's sharpness and colour, and the frame they were measured on: a detected frame in
    /// between reuses them for [`SHARPNESS_EVERY`] frames, unless the track needs a descriptor.
    sharpness: Option<f32>,
    measured: u64,
}

impl Seen {
    /// Quality (this frame's frontalness × the sharpness) and whether the gates let it through.
    fn judge(&mut self, frontalness: f32, gates: &Gates) {
        self.quality = self.sharpness.map_or(0.0, |s| frontalness * s);
        self.eligible = self.sharpness.is_some()
            && self.size >= gates.min_eye_distance
            && self.quality >= gates.min_quality;
    }
}

/// Frames of a track between two measurements of its chip's sharpness (and colour) when it needs no
/// descriptor: a chip costs about 2 ms at 1080p, and the face's quality between them still follows
/// its landmarks (frontalness, size). A face that turns sharp is re-embedded at most this late.
pub const SHARPNESS_EVERY: u64 = 5;

impl FrameEmbedder {
    pub fn new(embedder: Embedder) -> Self {
        FrameEmbedder {
            embedder,
            cache: DescriptorCache::new(Policy::default()),
            chips: Vec::new(),
            seen: HashMap::new(),
            counts: Counts::default(),
        }
    }

    pub fn embedder(&self) -> &Embedder {
        &self.embedder
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Why the face of `f`, on `frame` at this size and quality, gets a fresh descriptor: its
    /// track's re-embed policy, else the verification of its identity.
    fn due(&self, f: &FaceIn<'_>, frame: u64, size: f32, quality: f32) -> Option<Reason> {
        self.cache.due(f.track, frame, size, quality, f.verify)
    }

    /// Forgets every track's descriptor (after a seek).
    pub fn clear(&mut self) {
        self.cache.clear();
        self.seen.clear();
    }

    /// Warps the face's chip into slot `n` of the chips and measures its sharpness and colour.
    fn measure(
        &mut self,
        view: &FrameView<'_>,
        landmarks: &[[f32; 2]],
        par: f32,
        n: usize,
        size: f32,
        frame: u64,
    ) -> Seen {
        let len = self.embedder.chip_len();
        self.chips.resize((n + 1) * len, 0.0);
        let chip = &mut self.chips[n * len..(n + 1) * len];
        let sharpness = self.embedder.chip_sharpness(view, landmarks, par, chip);
        self.counts.chips += 1;
        Seen {
            size,
            quality: 0.0,
            grayscale: sharpness.is_some() && self.embedder.is_grayscale(chip),
            eligible: false,
            sharpness,
            measured: frame,
        }
    }

    /// The faces of `frame`; returns one `FaceOut` per face, in order. `log` hears each decision
    /// with the face's track.
    pub fn process(
        &mut self,
        frame: &FrameIn<'_, '_>,
        faces: &[FaceIn<'_>],
        gates: &Gates,
        mut log: impl FnMut(u64, Decision),
    ) -> Result<Vec<FaceOut>, RuntimeError> {
        let FrameIn {
            view,
            par,
            number: frame_no,
        } = *frame;
        self.cache.set_policy(Policy {
            interval: gates.reembed_interval,
            ..Policy::default()
        });
        self.counts.frames += 1;
        self.counts.faces += faces.len() as u64;
        let len = self.embedder.chip_len();

        // Chip and quality for every face the detector saw on this frame (other frames carry them
        // from the last run); the chips of those that get a fresh descriptor stay.
        let mut plans = Vec::with_capacity(faces.len());
        let mut n = 0;
        let t_chips = Instant::now();
        for f in faces {
            let detected = f.detected;
            // Between detector runs a track's face is what it was at the last run: no chip.
            let prior = self.seen.get(&f.track).copied();
            let seen = match prior {
                Some(seen) if !detected => seen,
                _ => {
                    let square = square_pixels(f.landmarks, par);
                    let size = eye_distance(&square);
                    let front = frontalness(&square);
                    // A track that needs a descriptor whatever its quality, or whose sharpness is
                    // old, gets a chip now; others carry the sharpness and colour measured last.
                    let carried = prior.filter(|p| {
                        p.sharpness.is_some()
                            && frame_no.saturating_sub(p.measured) < SHARPNESS_EVERY
                            && self.due(f, frame_no, size, f32::NEG_INFINITY).is_none()
                    });
                    let mut seen = match carried {
                        Some(p) => Seen { size, ..p },
                        None => self.measure(view, f.landmarks, par, n, size, frame_no),
                    };
                    seen.judge(front, gates);
                    // Carried sharpness may make the face due (sharper): then it needs its chip.
                    let wants = seen.eligible
                        && detected
                        && self.due(f, frame_no, size, seen.quality).is_some();
                    if carried.is_some() && wants {
                        seen = self.measure(view, f.landmarks, par, n, size, frame_no);
                        seen.judge(front, gates);
                    }
                    if detected {
                        self.seen.insert(f.track, seen);
                    }
                    seen
                }
            };
            let Seen {
                size,
                quality,
                grayscale,
                eligible,
                ..
            } = seen;
            let reason = if eligible && detected {
                self.due(f, frame_no, size, quality)
            } else {
                None
            };
            let decision = match reason {
                _ if !eligible => Decision::Gated {
                    eye_distance: size,
                    quality,
                },
                Some(r) => Decision::Embed(r),
                None => Decision::Reuse(self.cache.touch(f.track, frame_no).is_some()),
            };
            log(f.track, decision);
            self.counts.gated += !eligible as u64;
            n += reason.is_some() as usize;
            plans.push((size, quality, grayscale, reason.is_some()));
        }
        self.chips.truncate(n * len);
        self.counts.chip_ns += t_chips.elapsed().as_nanos() as u64;

        let mut fresh = Vec::new().into_iter();
        if n > 0 {
            let t0 = Instant::now();
            fresh = self
                .embedder
                .embed_batches(&self.chips, n, gates.max_batch)?
                .into_iter();
            self.counts.inference_ns += t0.elapsed().as_nanos() as u64;
            self.counts.inferences += match gates.max_batch {
                0 => 1,
                b => n.div_ceil(b),
            } as u64;
            self.counts.descriptors += n as u64;
            self.counts.shared = self.embedder.shared_runs();
        }

        let mut out = Vec::with_capacity(faces.len());
        for (f, (size, quality, grayscale, embed)) in faces.iter().zip(plans) {
            let vector = if embed {
                let d = fresh.next();
                if let Some(d) = &d {
                    self.cache
                        .store(f.track, frame_no, size, quality, d.clone());
                }
                d
            } else {
                let cached = self
                    .cache
                    .touch(f.track, frame_no)
                    .map(|e| e.descriptor.clone());
                self.counts.reused += cached.is_some() as u64;
                cached
            };
            out.push(FaceOut {
                quality,
                grayscale,
                vector,
                fresh: embed,
            });
        }
        self.cache.prune(frame_no);
        // A track missing from a frame has ended.
        self.seen
            .retain(|track, _| faces.iter().any(|f| f.track == *track));
        Ok(out)
    }
}
