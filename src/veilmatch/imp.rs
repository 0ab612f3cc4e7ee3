// SPDX-License-Identifier: MIT
//! veilmatch implementation: properties, the watch list's loading and the streaming glue. The
//! per-frame work (reloads, searches, decisions along tracks) lives in `engine::match_step`, the
//! bus messages in `messages`.

use std::path::PathBuf;
use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;

use crate::element;
use crate::engine::embedder::{model_id, similarity_for};
use crate::engine::manifest::Task;
use crate::engine::match_step::{Counts, DescriptorIn, FaceIn, FrameMatcher, Verdict};
use crate::engine::matcher::{Config, KNOWN_MARGIN};
use crate::engine::watchlist::reload::floor::Floor;
use crate::engine::watchlist::reload::{Key, OpenError, Reloader, Source};
use crate::engine::watchlist::{WatchlistError, file::Secret, now};
use crate::meta::{self, IdentityTag};

mod messages;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "veilmatch",
        gst::DebugColorFlags::empty(),
        Some("faceveil watch-list matcher"),
    )
});

const DEFAULT_THRESHOLD: f32 = 0.0;
const DEFAULT_MIN_HITS: u32 = 2;
const DEFAULT_HIT_WINDOW: u32 = 30;
const DEFAULT_COOLDOWN: u32 = 60;
const DEFAULT_REPORT_UNKNOWN: bool = false;
const DEFAULT_ALLOW_PLAINTEXT: bool = false;
const DEFAULT_ATTACH_SNAPSHOT: bool = false;
const DEFAULT_TRIAL: bool = false;
/// How often the watch-list file is checked for changes.
const WATCH_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct Settings {
    watchlist: Option<PathBuf>,
    key_file: Option<PathBuf>,
    allow_plaintext: bool,
    state_dir: Option<PathBuf>,
    model: Option<PathBuf>,
    threshold: f32,
    threshold_gray: f32,
    known_margin: f32,
    min_hits: u32,
    hit_window: u32,
    cooldown: u32,
    camera_id: Option<String>,
    report_unknown: bool,
    audit_log: Option<PathBuf>,
    attach_snapshot: bool,
    trial: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            watchlist: None,
            key_file: None,
            allow_plaintext: DEFAULT_ALLOW_PLAINTEXT,
            state_dir: None,
            model: None,
            threshold: DEFAULT_THRESHOLD,
            threshold_gray: DEFAULT_THRESHOLD,
            known_margin: KNOWN_MARGIN,
            min_hits: DEFAULT_MIN_HITS,
            hit_window: DEFAULT_HIT_WINDOW,
            cooldown: DEFAULT_COOLDOWN,
            camera_id: None,
            report_unknown: DEFAULT_REPORT_UNKNOWN,
            audit_log: None,
            attach_snapshot: DEFAULT_ATTACH_SNAPSHOT,
            trial: DEFAULT_TRIAL,
        }
    }
}

crate::props::settings_properties!(Settings {
    "watchlist" => watchlist,
    "key-file" => key_file,
    "allow-plaintext" => allow_plaintext,
    "state-dir" => state_dir,
    "model" => model,
    "threshold" => threshold,
    "grayscale-threshold" => threshold_gray,
    "known-margin" => known_margin,
    "min-hits" => min_hits,
    "hit-window" => hit_window,
    "cooldown" => cooldown,
    "camera-id" => camera_id,
    "report-unknown" => report_unknown,
    "audit-log" => audit_log,
    "attach-snapshot" => attach_snapshot,
    "trial" => trial,
});

impl Settings {
    /// The matcher's settings, copied for one frame (no allocation); `threshold` is the setting
    /// (0: the calibrated one, see `matcher::threshold`).
    fn config(&self) -> Config {
        Config {
            threshold: self.threshold,
            threshold_gray: self.threshold_gray,
            min_margin: 0.0,
            known_margin: self.known_margin,
            min_hits: self.min_hits,
            hit_window: self.hit_window as u64,
            cooldown: self.cooldown as f64,
            report_unknown: self.report_unknown,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    counts: Counts,
    /// The write generation of the list in use.
    generation: u64,
}

impl element::Stats for Stats {
    fn structure(&self) -> gst::Structure {
        let c = &self.counts;
        gst::Structure::builder("veilmatch-stats")
            .field("frames", c.frames)
            .field("searches", c.searches)
            .field("search-time-us", c.search_ns / 1000)
            .field("match-time-us", c.match_ns / 1000)
            .field("failed-reloads", c.failed_reloads)
            .field("refused-rollbacks", c.refused_rollbacks)
            .field("generation", self.generation)
            .field("trial-matches", c.trial_matches)
            .field("known-held", c.known_held)
            .build()
    }
}

pub struct State {
    /// The watch list in use, its reloads and the decisions along tracks.
    matcher: FrameMatcher,
}

impl element::Running for State {
    type Stats = Stats;

    fn flush(&mut self) {
        self.matcher.clear();
    }

    fn stats(&self) -> Stats {
        Stats {
            counts: self.matcher.counts(),
            generation: self.matcher.list().generation(),
        }
    }
}

#[derive(Default)]
pub struct VeilMatch {
    base: element::Base<Settings, State>,
}

#[glib::object_subclass]
impl ObjectSubclass for VeilMatch {
    const NAME: &'static str = "GstVeilMatch";
    type Type = super::VeilMatch;
    type ParentType = gst_base::BaseTransform;
}

fn open_error(e: &OpenError) -> gst::ErrorMessage {
    match e {
        OpenError::List(e) => list_error(e),
        OpenError::Rollback { .. } => gst::error_msg!(gst::ResourceError::Settings, ("{e}")),
    }
}

fn list_error(e: &WatchlistError) -> gst::ErrorMessage {
    match e {
        WatchlistError::Io { error, .. } if error.kind() == std::io::ErrorKind::NotFound => {
            gst::error_msg!(gst::ResourceError::NotFound, ("{e}"))
        }
        WatchlistError::Io { .. } => gst::error_msg!(gst::ResourceError::OpenRead, ("{e}")),
        _ => gst::error_msg!(gst::ResourceError::Settings, ("{e}")),
    }
}

impl ObjectImpl for VeilMatch {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("watchlist")
                    .nick("Watch list")
                    .blurb("Path of the watch-list file (made with 'faceveil init' and 'faceveil enroll'), reloaded when it changes")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("key-file")
                    .nick("Key file")
                    .blurb("Key file of the watch list, read at start and at each reload (unset: $FACEVEIL_KEY if set, else <watchlist>.key)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("allow-plaintext")
                    .nick("Allow plaintext")
                    .blurb("Read an unencrypted watch list (made with 'faceveil init --plaintext') instead of an encrypted one; posts a warning")
                    .default_value(DEFAULT_ALLOW_PLAINTEXT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("state-dir")
                    .nick("State directory")
                    .blurb("Directory where the highest list generation used is kept, so that an older list is refused after a restart too (unset: in memory only)")
                    .mutable_ready()
                    .build(),
                crate::props::model(
                    Task::Embedder,
                    " the descriptors come from (as veilembed's 'model')",
                ),
                glib::ParamSpecFloat::builder("threshold")
                    .nick("Threshold")
                    .blurb(
                        "Minimum similarity for a descriptor to count as a hit (0: the embedder \
                         manifest's calibrated threshold)",
                    )
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("grayscale-threshold")
                    .nick("Grayscale threshold")
                    .blurb(
                        "Minimum similarity for a descriptor of a grayscale face to count as a hit \
                         (0: the embedder manifest's calibrated grayscale threshold)",
                    )
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("known-margin")
                    .nick("Known margin")
                    .blurb(
                        "How far a listed person's score must lead the best known person's \
                         (people enrolled with 'faceveil enroll --known', never alerted on) for a \
                         descriptor to count as a hit; a face that a known person scores as high, \
                         or within this margin, is held back",
                    )
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(KNOWN_MARGIN)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("min-hits")
                    .nick("Minimum hits")
                    .blurb("Fresh descriptors of a track that must match the same identity within hit-window frames before it is reported")
                    .minimum(1)
                    .default_value(DEFAULT_MIN_HITS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("hit-window")
                    .nick("Hit window")
                    .blurb("Frames within which min-hits hits must fall")
                    .minimum(1)
                    .default_value(DEFAULT_HIT_WINDOW)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("cooldown")
                    .nick("Cooldown")
                    .blurb("Seconds (of running time) before the same identity is reported again on this camera: one alert per visit")
                    .default_value(DEFAULT_COOLDOWN)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("camera-id")
                    .nick("Camera id")
                    .blurb("Camera name put in every message (unset: the element's name)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("report-unknown")
                    .nick("Report unknown")
                    .blurb("Post 'faceveil-unknown' once for each track that stays unmatched after min-hits fresh descriptors")
                    .default_value(DEFAULT_REPORT_UNKNOWN)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("audit-log")
                    .nick("Audit log")
                    .blurb(
                        "Hash-chained audit log that each reported match is appended to, anchored by <log>.head (unset: matches are not logged)",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("attach-snapshot")
                    .nick("Attach snapshot")
                    .blurb(
                        "Add a small JPEG of the matched face to faceveil-match as field 'snapshot' \
                         (never for unknown faces)",
                    )
                    .default_value(DEFAULT_ATTACH_SNAPSHOT)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("trial")
                    .nick("Trial")
                    .blurb(
                        "Decide and log matches (flagged trial-match in audit-log) but post no \
                         faceveil-match message",
                    )
                    .default_value(DEFAULT_TRIAL)
                    .mutable_playing()
                    .build(),
                crate::props::stats(
                    "frames, searches (fresh descriptors looked up in the list), \
                     search-time-us, match-time-us (all of the per-frame matching), \
                     failed-reloads, refused-rollbacks, generation (the write generation of \
                     the list in use), trial-matches (matches decided in trial mode, not \
                     posted), known-held (fresh descriptors held back because a known person \
                     scored as high as the listed one, within known-margin)",
                ),
                glib::ParamSpecUInt::builder("identities")
                    .nick("Identities")
                    .blurb("Identities in the list in use (not expired; known people too)")
                    .read_only()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            vec![
                glib::subclass::Signal::builder("reload")
                    .action()
                    .return_type::<bool>()
                    .class_handler(|args| {
                        let element = args[0].get::<super::VeilMatch>().expect("signal arg");
                        Some(element.imp().reload_now().to_value())
                    })
                    .build(),
            ]
        });
        SIGNALS.as_ref()
    }

    fn constructed(&self) {
        self.parent_constructed();
        // Answers veilembed's query for the tracks that carry an identity (meta::IDENTIFIED_QUERY),
        // so that it verifies them on every frame they are detected.
        let weak = self.obj().downgrade();
        if let Some(pad) = self.obj().static_pad("sink") {
            pad.add_probe(gst::PadProbeType::QUERY_DOWNSTREAM, move |_, info| {
                let Some(q) = info.query_mut().filter(|q| meta::is_identified_query(q)) else {
                    return gst::PadProbeReturn::Ok;
                };
                let Some(tracks) = weak
                    .upgrade()
                    .and_then(|o| o.imp().base.peek(|st| st.map(|s| s.matcher.identified())))
                else {
                    return gst::PadProbeReturn::Ok;
                };
                meta::answer_identified(q, &tracks);
                gst::PadProbeReturn::Handled
            });
        }
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        self.base.set_property(self, *CAT, value, pspec);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "camera-id" => self.camera_id().to_value(),
            "identities" => self
                .base
                .peek(|st| st.map_or(0, |s| s.matcher.list().index().len()) as u32)
                .to_value(),
            _ => self.base.property(pspec),
        }
    }
}

impl GstObjectImpl for VeilMatch {}

impl ElementImpl for VeilMatch {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face watch-list matcher",
                "Filter/Analyzer/Video",
                "The matcher element of the faceveil plugin: matches the descriptors of veilembed \
                 against an encrypted watch list (made with the 'faceveil' command-line tool), tags \
                 matched faces and posts a 'faceveil-match' element message once per visit; video \
                 passes through",
                "faceveil developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            crate::props::pad_templates(&gst::Caps::builder("video/x-raw").build())
        });
        TEMPLATES.as_ref()
    }
}

element::in_place_filter!(VeilMatch);

impl element::Filter for VeilMatch {
    type State = State;

    fn open(&self) -> Result<State, gst::ErrorMessage> {
        let s = self.base.settings();
        let path = s.watchlist.clone().ok_or_else(|| {
            gst::error_msg!(
                gst::ResourceError::NotFound,
                ("No watch list: set the 'watchlist' property (a file made with 'faceveil init')")
            )
        })?;
        let key = if s.allow_plaintext {
            Key::Fixed(Secret::Plaintext)
        } else {
            let (key, warning) =
                Key::resolve(s.key_file.as_deref(), &path).map_err(|e| list_error(&e))?;
            if let Some(w) = warning {
                gst::element_imp_warning!(self, gst::ResourceError::OpenRead, ("{}", w));
            }
            key
        };
        let floor = match &s.state_dir {
            Some(dir) => Some(Floor::new(dir, &path).map_err(|e| list_error(&e))?),
            None => None,
        };
        let (model_id, similarity, calibrated) =
            element::load_model(self, *CAT, s.model.as_deref(), Task::Embedder, |spec| {
                let calibrated = spec.manifest.embedder.as_ref().map_or((0.66, 0.66), |e| {
                    (e.match_threshold(), e.match_threshold_gray())
                });
                Ok((model_id(&spec)?, similarity_for(&spec)?, calibrated))
            })?;
        let source = Source {
            path,
            key,
            model_id,
            similarity,
            floor,
        };
        let list = Reloader::open(source, WATCH_PERIOD).map_err(|e| open_error(&e))?;
        let path = list.source().path.clone();
        // People who would silently never alert: said at start (and on each reload while so).
        if let Some(w) = list.without_model_warning() {
            gst::element_imp_warning!(self, gst::ResourceError::Settings, ("{w}"));
        }
        if s.allow_plaintext {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Settings,
                (
                    "Watch list {} is read without encryption (allow-plaintext)",
                    path.display()
                )
            );
        }
        gst::info!(
            CAT,
            imp = self,
            "{}: {} identities",
            path.display(),
            list.index().len()
        );
        if s.trial && s.audit_log.is_none() {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Settings,
                ("Trial mode without an audit-log: matches are neither posted nor recorded, \
                     only counted (stats: trial-matches)")
            );
        }
        Ok(State {
            matcher: FrameMatcher::new(list, s.config(), calibrated),
        })
    }

    fn process(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let config = self.base.live(Settings::config);
        let faces = meta::faces(buf);
        let (running, stream) = element::buffer_times(self, buf);
        let face_in: Vec<FaceIn> = faces
            .iter()
            .map(|f| FaceIn {
                track: f.track_id,
                descriptor: f.embedding.as_ref().map(|e| DescriptorIn {
                    model_id: &e.model_id,
                    vector: e.vector.as_deref(),
                    fresh: e.fresh,
                    grayscale: e.grayscale,
                    quality: e.quality,
                }),
            })
            .collect();
        let clock = running.map(|t| t.nseconds() as f64 / 1e9);
        let out = self.base.with_state(|state| {
            // Decisions only: the label and score of a face that did not match are never logged.
            let log = |frame, track, matched: bool| {
                gst::debug!(
                    CAT,
                    imp = self,
                    "frame {frame} track {track}: fresh descriptor, {}",
                    if matched { "matched" } else { "not matched" }
                )
            };
            Ok(state.matcher.process(&face_in, config, clock, now(), log))
        })?;
        self.post_reload(out.reload);
        let frame = out.frame;
        let (tags, events) = match out.verdict {
            Verdict::Matched { tags, events } => (tags, events),
            Verdict::NoDescriptors { first } => {
                if first {
                    gst::element_imp_warning!(
                        self,
                        gst::StreamError::Format,
                        ("Faces without descriptors pass through unmatched: put veilembed before veilmatch")
                    );
                }
                return Ok(gst::FlowSuccess::Ok);
            }
            Verdict::ModelMismatch(m) => {
                let e = gst::error_msg!(gst::StreamError::WrongType, ("{m}"));
                return Err(element::fail(self, e));
            }
        };
        let tags: Vec<(u32, IdentityTag)> = tags
            .into_iter()
            .map(|(i, t)| {
                let tag = IdentityTag {
                    label: t.identity.label,
                    identity_id: t.identity.identity_id,
                    score: t.identity.score,
                    verified: t.verified,
                };
                (faces[i].index, tag)
            })
            .collect();
        if !tags.is_empty() {
            meta::set_identities(buf, &tags);
        }
        if events.is_empty() {
            return Ok(gst::FlowSuccess::Ok);
        }
        let camera = self.camera_id();
        let (audit_log, snapshot, trial) = self
            .base
            .live(|s| (s.audit_log.clone(), s.attach_snapshot, s.trial));
        let (report, model_id) = self.base.with_state(|st| {
            let model_id = st.matcher.list().source().model_id.clone();
            Ok((st.matcher.report(&camera, events, trial), model_id))
        })?;
        if let Some(log) = audit_log {
            self.audit(&log, &camera, &report.audit);
        }
        for (i, ev) in report.post {
            self.post_event(
                buf,
                &faces,
                i,
                &ev,
                &camera,
                frame,
                &model_id,
                (running, stream),
                snapshot,
            );
        }
        Ok(gst::FlowSuccess::Ok)
    }
}

impl VeilMatch {
    /// The camera id put in messages: the property, else the element's name.
    fn camera_id(&self) -> String {
        self.base
            .live(|s| s.camera_id.clone())
            .unwrap_or_else(|| self.obj().name().to_string())
    }

    /// The `reload` action signal: loads the list now, in the caller's thread, without holding the
    /// element's state while it decrypts. On failure the old list stays and a warning is posted.
    /// Returns whether the new list is in use.
    fn reload_now(&self) -> bool {
        let Some(source) = self.base.peek(|st| st.map(|s| s.matcher.list().source())) else {
            return false;
        };
        let before = source.stamp();
        let result = source.load();
        let outcome = self
            .base
            .with_state(|s| Ok(s.matcher.list_mut().apply(before, result)))
            .ok();
        self.post_reload(outcome)
    }
}
