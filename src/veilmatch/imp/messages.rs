// SPDX-License-Identifier: MIT
//! What veilmatch tells the application: the `faceveil-match`, `faceveil-unknown` and
//! `faceveil-reloaded` messages (docs/EVENTS.md), the reload warnings, the audit-log lines and the
//! snapshots of matched faces.

use std::time::SystemTime;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::{CAT, VeilMatch};
use crate::engine::matcher::{Event, Hit};
use crate::engine::watchlist::now;
use crate::engine::watchlist::reload::Outcome;
use crate::engine::{audit, snapshot};
use crate::meta::Face;

/// Longest side of an attached snapshot, pixels.
const SNAPSHOT_SIDE: usize = 128;
const SNAPSHOT_QUALITY: u8 = 80;

impl VeilMatch {
    /// Appends the frame's match `lines` to the audit log, anchored to the head this process last
    /// wrote (else the log's `.head` file). After a gap (the log cut, deleted or rewritten) a new
    /// segment is started, the old file kept aside, and a warning names the gap: the matches are
    /// never dropped nor written after it. A failure is a warning (the video goes on).
    pub(super) fn audit(&self, log: &std::path::Path, camera: &str, lines: &[audit::Event]) {
        if lines.is_empty() {
            return;
        }
        let first = |gap: &audit::AuditError, aside: Option<&std::path::Path>| audit::Event {
            actor: format!("camera:{camera}"),
            action: "new-segment".into(),
            detail: Some(audit::segment_detail(&gap.to_string(), aside)),
            ..Default::default()
        };
        match audit::append_anchored(log, lines, now(), first) {
            Ok(done) => {
                if let Some((gap, aside)) = done.new_segment {
                    gst::element_imp_warning!(
                        self,
                        gst::ResourceError::Write,
                        ("Gap in the audit log: started a new segment"),
                        [
                            "{gap}; the old log was kept as {}",
                            aside.map_or("(none)".into(), |p| p.display().to_string())
                        ]
                    );
                }
                if let Some(e) = done.head_file_error {
                    gst::element_imp_warning!(
                        self,
                        gst::ResourceError::Write,
                        ("Audit log head not saved: {e}")
                    );
                }
            }
            Err(e) => gst::element_imp_warning!(
                self,
                gst::ResourceError::Write,
                ("Match not recorded in the audit log: {e}")
            ),
        }
    }

    /// A small JPEG of face `i` of `faces` from the frame in `buf`, if its format can be read; the
    /// other faces are blanked where they fall into it.
    fn snapshot(&self, buf: &gst::BufferRef, faces: &[Face], i: usize) -> Option<gst::Sample> {
        let caps = self.obj().static_pad("sink")?.current_caps()?;
        let info = gst_video::VideoInfo::from_caps(&caps).ok()?;
        let input = crate::video::Input::new(&info)?;
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buf, &info).ok()?;
        let view = crate::video::frame_view(&frame, input.format, input.matrix).ok()?;
        let rect = |f: &Face| {
            let (x, y, w, h) = f.rect;
            (x as f32, y as f32, w as f32, h as f32)
        };
        let others: Vec<snapshot::Rect> = faces
            .iter()
            .enumerate()
            .filter(|&(k, _)| k != i)
            .map(|(_, f)| rect(f))
            .collect();
        let jpeg = snapshot::jpeg(
            &view,
            rect(&faces[i]),
            &others,
            0.2,
            SNAPSHOT_SIDE,
            SNAPSHOT_QUALITY,
        )?;
        Some(
            gst::Sample::builder()
                .buffer(&gst::Buffer::from_mut_slice(jpeg))
                .caps(&gst::Caps::builder("image/jpeg").build())
                .build(),
        )
    }

    /// Tells the application what a reload did (outside the state lock). Returns whether a new
    /// list is in use.
    pub(super) fn post_reload(&self, outcome: Option<Outcome>) -> bool {
        let path = || {
            self.base
                .peek(|st| st.map(|s| s.matcher.list().source().path.display().to_string()))
                .unwrap_or_default()
        };
        // The people of the new list who cannot be matched under the model, and the warning.
        let without_model = || {
            self.base
                .peek(|st| {
                    st.map(|s| {
                        let list = s.matcher.list();
                        (list.index().without_model(), list.without_model_warning())
                    })
                })
                .unwrap_or_default()
        };
        let warn_without_model = |w: Option<String>| {
            if let Some(w) = w {
                gst::element_imp_warning!(self, gst::ResourceError::Settings, ("{w}"));
            }
        };
        match outcome {
            None => false,
            Some(Outcome::Reloaded(n)) => {
                gst::info!(CAT, imp = self, "reloaded {}: {n} identities", path());
                let (missing, warning) = without_model();
                let s = gst::Structure::builder("faceveil-reloaded")
                    .field("watchlist", path())
                    .field("identities", n as u32)
                    .field("without-model", missing as u32)
                    .build();
                let _ = self
                    .obj()
                    .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
                warn_without_model(warning);
                true
            }
            Some(Outcome::ReloadedFloorNotSaved(n, e)) => {
                let details = gst::Structure::builder("faceveil-floor-not-saved")
                    .field("watchlist", path())
                    .field("reason", e.to_string())
                    .build();
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Write,
                    (
                        "Watch list {} reloaded ({n} identities), but its generation could not be                          recorded in the state directory: {e}. An older copy put back would be                          accepted after a restart until this is fixed",
                        path()
                    ),
                    details: details
                );
                warn_without_model(without_model().1);
                true
            }
            Some(Outcome::Failed(e)) => {
                // The details let an application (faceveil-nvr) tell this warning from others.
                let details = gst::Structure::builder("faceveil-reload-failed")
                    .field("watchlist", path())
                    .field("reason", e.to_string())
                    .build();
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Read,
                    (
                        "Watch list {} reload failed: {e} (old list kept)",
                        path()
                    ),
                    details: details
                );
                false
            }
            Some(Outcome::Deleted) => {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::NotFound,
                    (
                        "Watch list {} was deleted: matching stops (no identities) until a list is \
                         back at that path",
                        path()
                    )
                );
                false
            }
            Some(Outcome::Rollback { held, found }) => {
                let details = gst::Structure::builder("faceveil-rollback-refused")
                    .field("watchlist", path())
                    .field("held", held)
                    .field("found", found)
                    .build();
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Read,
                    (
                        "Watch list {} was replaced by an older copy (generation {found}, the list \
                         last in use is generation {held}): refused, old list kept (empty if the \
                         file had been deleted). Restore the current list, or accept this one \
                         deliberately with 'faceveil restore' (docs/WATCHLIST.md)",
                        path()
                    ),
                    details: details
                );
                false
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn post_event(
        &self,
        buf: &gst::BufferRef,
        faces: &[Face],
        i: usize,
        ev: &Event,
        camera: &str,
        frame: u64,
        model_id: &str,
        (running, stream): (Option<gst::ClockTime>, Option<gst::ClockTime>),
        snapshot: bool,
    ) {
        let obj = self.obj();
        let face = &faces[i];
        let (x, y, w, h) = face.rect;
        let utc = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let name = match ev {
            Event::Match(_) => "faceveil-match",
            Event::Unknown => "faceveil-unknown",
        };
        let mut b = gst::Structure::builder(name);
        if let Event::Match(m) = ev {
            b = b
                .field("label", &m.label)
                .field("identity-id", &m.identity_id)
                .field("score", m.score as f64);
            // What the match rests on (docs/EVENTS.md): its best hit (the one `score` reports),
            // then every hit. The matcher's matches always have hits.
            if let Some(best) = m.best() {
                let each =
                    |f: fn(&Hit) -> glib::SendValue| gst::Array::from_values(m.hits.iter().map(f));
                b = b
                    .field("threshold", best.threshold as f64)
                    .field("margin", m.margin as f64)
                    .field("reference", best.reference)
                    .field("references", best.references)
                    .field("quality", best.quality as f64)
                    .field("grayscale", best.grayscale)
                    .field("hit-frames", each(|h| h.frame.to_send_value()))
                    .field("hit-scores", each(|h| (h.score as f64).to_send_value()))
                    .field(
                        "hit-thresholds",
                        each(|h| (h.threshold as f64).to_send_value()),
                    )
                    .field(
                        "hit-qualities",
                        each(|h| (h.quality as f64).to_send_value()),
                    )
                    .field("hit-grayscale", each(|h| h.grayscale.to_send_value()));
            }
            // The aggregate of the track's fresh descriptors the match was decided on.
            if let Some(a) = &m.aggregate {
                b = b
                    .field("aggregate-score", a.score as f64)
                    .field("aggregate-threshold", a.threshold as f64)
                    .field("aggregate-margin", a.margin as f64)
                    .field("aggregate-count", a.descriptors)
                    .field("aggregate-grayscale", a.grayscale);
            }
            // Only for matches, only when asked.
            if snapshot && let Some(jpeg) = self.snapshot(buf, faces, i) {
                b = b.field("snapshot", jpeg);
            }
        }
        let s = b
            .field("camera-id", camera)
            .field("track-id", face.track_id)
            .field("x", x)
            .field("y", y)
            .field("width", w)
            .field("height", h)
            .field("pts", buf.pts())
            .field("running-time", running)
            .field("stream-time", stream)
            .field("utc", utc)
            .field("frame", frame)
            .field("model-id", model_id)
            .build();
        gst::info!(CAT, imp = self, "{name} on track {}", face.track_id);
        let _ = obj.post_message(gst::message::Element::builder(s).src(&*obj).build());
    }
}
