// SPDX-License-Identifier: MIT
//! veilmatch implementation: properties, the watch list and its reloads, messages. Matching lives in
//! `engine::watchlist::index` and the decisions along tracks in `engine::matcher`.

use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::{Instant, SystemTime};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;

use crate::element;
use crate::engine::audit;
use crate::engine::embedder::{model_id, similarity_for};
use crate::engine::manifest::Task;
use crate::engine::matcher::{Config, Event, Fresh, Matcher};
use crate::engine::snapshot;
use crate::engine::watchlist::reload::{Outcome, Reloader, Source};
use crate::engine::watchlist::store::resolve_key;
use crate::engine::watchlist::{WatchlistError, file::Secret, now};
use crate::meta::{self, Face, IdentityTag};

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
/// Longest side of an attached snapshot, pixels.
const SNAPSHOT_SIDE: usize = 128;
const SNAPSHOT_QUALITY: u8 = 80;
/// How often the watch-list file is checked for changes.
const WATCH_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);
/// Tracks unseen for this many frames are forgotten.
const TRACK_MAX_AGE: u64 = 300;

#[derive(Debug, Clone)]
pub struct Settings {
    watchlist: Option<PathBuf>,
    key_file: Option<PathBuf>,
    allow_plaintext: bool,
    model: Option<PathBuf>,
    threshold: f32,
    threshold_gray: f32,
    min_hits: u32,
    hit_window: u32,
    cooldown: u32,
    camera_id: Option<String>,
    report_unknown: bool,
    audit_log: Option<PathBuf>,
    attach_snapshot: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            watchlist: None,
            key_file: None,
            allow_plaintext: DEFAULT_ALLOW_PLAINTEXT,
            model: None,
            threshold: DEFAULT_THRESHOLD,
            threshold_gray: DEFAULT_THRESHOLD,
            min_hits: DEFAULT_MIN_HITS,
            hit_window: DEFAULT_HIT_WINDOW,
            cooldown: DEFAULT_COOLDOWN,
            camera_id: None,
            report_unknown: DEFAULT_REPORT_UNKNOWN,
            audit_log: None,
            attach_snapshot: DEFAULT_ATTACH_SNAPSHOT,
        }
    }
}

crate::props::settings_properties!(Settings {
    "watchlist" => watchlist,
    "key-file" => key_file,
    "allow-plaintext" => allow_plaintext,
    "model" => model,
    "threshold" => threshold,
    "grayscale-threshold" => threshold_gray,
    "min-hits" => min_hits,
    "hit-window" => hit_window,
    "cooldown" => cooldown,
    "camera-id" => camera_id,
    "report-unknown" => report_unknown,
    "audit-log" => audit_log,
    "attach-snapshot" => attach_snapshot,
});

impl Settings {
    /// The matcher's settings, copied for one frame (no allocation); `threshold` is the setting
    /// (0: the calibrated one, see `matcher::threshold`).
    fn config(&self) -> Config {
        Config {
            threshold: self.threshold,
            threshold_gray: self.threshold_gray,
            min_margin: 0.0,
            min_hits: self.min_hits,
            hit_window: self.hit_window as u64,
            cooldown: self.cooldown as f64,
            report_unknown: self.report_unknown,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    frames: u64,
    /// Fresh descriptors searched in the list.
    searches: u64,
    search_ns: u64,
    /// The whole per-frame matching (searches, track decisions).
    match_ns: u64,
}

impl element::Stats for Stats {
    fn structure(&self) -> gst::Structure {
        gst::Structure::builder("faceveil-stats")
            .field("frames", self.frames)
            .field("searches", self.searches)
            .field("search-time-us", self.search_ns / 1000)
            .field("match-time-us", self.match_ns / 1000)
            .build()
    }
}

pub struct State {
    /// The watch list in use and its reloads.
    list: Reloader,
    /// The embedder manifest's calibrated thresholds, colour and grayscale (used when the
    /// properties are 0).
    calibrated: (f32, f32),
    matcher: Matcher,
    frames: u64,
    started: Instant,
    warned_no_descriptors: bool,
    stats: Stats,
}

impl element::Running for State {
    type Stats = Stats;

    fn flush(&mut self) {
        self.matcher.reset_tracks();
    }

    fn stats(&self) -> Stats {
        self.stats
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
                    .blurb("Path of the watch-list file (made with 'faceveil init' and 'faceveil enroll'). Reloaded when it changes")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("key-file")
                    .nick("Key file")
                    .blurb("Key file of the watch list. Unset: $FACEVEIL_KEY (64 hex digits) if set, else <watchlist>.key. Read at start")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("allow-plaintext")
                    .nick("Allow plaintext")
                    .blurb("Read an unencrypted watch list (made with 'faceveil init --plaintext') instead of an encrypted one; posts a warning")
                    .default_value(DEFAULT_ALLOW_PLAINTEXT)
                    .mutable_ready()
                    .build(),
                crate::props::model(
                    Task::Embedder,
                    " the descriptors come from (as veilembed's 'model'): its manifest gives the \
                     default threshold and the mean descriptor",
                ),
                glib::ParamSpecFloat::builder("threshold")
                    .nick("Threshold")
                    .blurb(
                        "Minimum similarity for a descriptor to count as a hit. 0 = the calibrated \
                         threshold of the embedder's manifest (0.66 for dlib_resnet; docs/CALIBRATION.md)",
                    )
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecFloat::builder("grayscale-threshold")
                    .nick("Grayscale threshold")
                    .blurb(
                        "Minimum similarity for a descriptor of a grayscale face (IR or black-and-white \
                         source: veilembed's 'grayscale') to count as a hit; their impostor scores \
                         run higher. 0 = the calibrated grayscale threshold of the embedder's manifest \
                         (docs/CALIBRATION.md)",
                    )
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_THRESHOLD)
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
                    .blurb("Camera name put in every message. Unset: the element's name")
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
                        "Append a line for each reported match (camera, identity, label, score, \
                         time; never descriptors or images) to this hash-chained audit log, the \
                         one the faceveil CLI writes (<list>.audit by default); check it with \
                         'faceveil audit verify'. Unset: matches are not logged",
                    )
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("attach-snapshot")
                    .nick("Attach snapshot")
                    .blurb(
                        "Add a small JPEG of the matched face (field 'snapshot', a sample of \
                         image/jpeg, at most 128 px) to faceveil-match. Only matches, never \
                         unknown faces. Off by default: the image is then in every application \
                         that reads the bus, and in whatever it stores",
                    )
                    .default_value(DEFAULT_ATTACH_SNAPSHOT)
                    .mutable_playing()
                    .build(),
                crate::props::stats(
                    "frames, searches (fresh descriptors looked up in the list), \
                     search-time-us, match-time-us (all of the per-frame matching)",
                ),
                glib::ParamSpecUInt::builder("identities")
                    .nick("Identities")
                    .blurb("Identities in the list in use (not expired)")
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

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        self.base.set_property(self, *CAT, value, pspec);
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        match pspec.name() {
            "camera-id" => self.camera_id().to_value(),
            "identities" => self
                .base
                .peek(|st| st.map_or(0, |s| s.list.index().len()) as u32)
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
        let secret = if s.allow_plaintext {
            Secret::Plaintext
        } else {
            resolve_key(s.key_file.as_deref(), &path).map_err(|e| list_error(&e))?
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
            secret,
            model_id,
            similarity,
        };
        let list = Reloader::open(source, WATCH_PERIOD).map_err(|e| list_error(&e))?;
        let path = list.source().path.clone();
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
        Ok(State {
            list,
            calibrated,
            matcher: Matcher::new(s.config().calibrated(calibrated.0, calibrated.1)),
            frames: 0,
            started: Instant::now(),
            warned_no_descriptors: false,
            stats: Stats::default(),
        })
    }

    fn process(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let config = self.base.live(Settings::config);
        let faces = meta::faces(buf);
        let (running, stream) = element::buffer_times(self, buf);
        let unix = now();
        let mut events = Vec::new();
        let mut tags = Vec::new();
        let (frame, reload, warn, result) = self.base.with_state(|state| {
            let t_match = Instant::now();
            let reload = state.list.poll();
            let frame = state.frames;
            state.frames += 1;
            state.stats.frames += 1;
            let config = config.calibrated(state.calibrated.0, state.calibrated.1);
            state.matcher.set_config(config);
            if !faces.is_empty() && faces.iter().all(|f| f.embedding.is_none()) {
                let warn = !std::mem::replace(&mut state.warned_no_descriptors, true);
                return Ok((frame, reload, warn, Ok(config.threshold)));
            }
            let clock = running.map_or_else(
                || state.started.elapsed().as_secs_f64(),
                |t| t.nseconds() as f64 / 1e9,
            );
            let source = state.list.source();
            for f in &faces {
                let fresh = match &f.embedding {
                    Some(e) if e.fresh => {
                        if e.model_id != source.model_id {
                            let m = format!(
                                "Watch list {} is for embedder model {}, but the descriptors come from {}; use the same model in veilembed and veilmatch",
                                source.path.display(),
                                source.model_id,
                                e.model_id
                            );
                            return Ok((frame, reload, false, Err(m)));
                        }
                        let vector = e.vector.as_deref().unwrap_or(&[]);
                        let t = Instant::now();
                        let found = Fresh::search(
                            state.list.index(),
                            &source.similarity,
                            vector,
                            e.grayscale,
                            unix,
                        );
                        state.stats.searches += 1;
                        state.stats.search_ns += t.elapsed().as_nanos() as u64;
                        Some(found)
                    }
                    _ => None,
                };
                let had = fresh.is_some();
                let ev = state.matcher.observe(f.track_id, frame, fresh, clock);
                let who = state.matcher.identity(f.track_id);
                // Decisions only: the label and score of a face that did not match are never logged.
                if had {
                    gst::debug!(
                        CAT,
                        imp = self,
                        "frame {frame} track {}: fresh descriptor, {}",
                        f.track_id,
                        if who.is_some() { "matched" } else { "not matched" }
                    );
                }
                if let Some(ev) = ev {
                    events.push((f.clone(), ev));
                }
                if let Some(m) = who {
                    tags.push((
                        f.index,
                        IdentityTag {
                            label: m.label.clone(),
                            identity_id: m.identity_id.clone(),
                            score: m.score,
                        },
                    ));
                }
            }
            state.matcher.prune(frame, TRACK_MAX_AGE);
            state.stats.match_ns += t_match.elapsed().as_nanos() as u64;
            Ok((frame, reload, false, Ok(config.threshold)))
        })?;
        self.post_reload(reload);
        if warn {
            gst::element_imp_warning!(
                self,
                gst::StreamError::Format,
                ("Faces without descriptors pass through unmatched: put veilembed before veilmatch")
            );
        }
        let threshold = result.map_err(|m| {
            element::fail(self, gst::error_msg!(gst::StreamError::WrongType, ("{m}")))
        })?;

        for (index, tag) in &tags {
            meta::set_identity(buf, *index, tag);
        }
        if events.is_empty() {
            return Ok(gst::FlowSuccess::Ok);
        }
        let camera = self.camera_id();
        let model_id = self
            .base
            .peek(|st| st.map(|s| s.list.source().model_id.clone()));
        let (audit_log, snapshot) = self.base.live(|s| (s.audit_log.clone(), s.attach_snapshot));
        if let Some(log) = audit_log {
            self.audit(&log, &camera, &events);
        }
        for (face, ev) in events {
            self.post_event(
                buf,
                &face,
                &ev,
                &camera,
                threshold,
                frame,
                model_id.as_deref().unwrap_or_default(),
                (running, stream),
                snapshot,
            );
        }
        Ok(gst::FlowSuccess::Ok)
    }
}

impl VeilMatch {
    /// Appends the frame's matches to the audit log; a failure is a warning (the video goes on).
    fn audit(&self, log: &std::path::Path, camera: &str, events: &[(Face, Event)]) {
        let lines: Vec<audit::Event> = events
            .iter()
            .filter_map(|(_, ev)| match ev {
                Event::Match(m) => Some(audit::Event {
                    actor: format!("camera:{camera}"),
                    action: "match".into(),
                    identity: Some(m.identity_id.clone()),
                    label: Some(m.label.clone()),
                    detail: Some(format!("score {:.3}", m.score)),
                }),
                Event::Unknown => None,
            })
            .collect();
        if lines.is_empty() {
            return;
        }
        if let Err(e) = audit::append(log, &lines, now()) {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::Write,
                ("Match not recorded in the audit log: {e}")
            );
        }
    }

    /// A small JPEG of `face` from the frame in `buf`, if its format can be read.
    fn snapshot(&self, buf: &gst::BufferRef, face: &Face) -> Option<gst::Sample> {
        let caps = self.obj().static_pad("sink")?.current_caps()?;
        let info = gst_video::VideoInfo::from_caps(&caps).ok()?;
        let input = crate::video::Input::new(&info)?;
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buf, &info).ok()?;
        let view = crate::video::frame_view(&frame, input.format, input.matrix).ok()?;
        let (x, y, w, h) = face.rect;
        let jpeg = snapshot::jpeg(
            &view,
            (x as f32, y as f32, w as f32, h as f32),
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
        let Some(source) = self.base.peek(|st| st.map(|s| s.list.source())) else {
            return false;
        };
        let before = source.stamp();
        let result = source.load();
        let outcome = self
            .base
            .with_state(|s| Ok(s.list.apply(before, result)))
            .ok();
        self.post_reload(outcome)
    }

    /// Tells the application what a reload did (outside the state lock). Returns whether a new
    /// list is in use.
    fn post_reload(&self, outcome: Option<Outcome>) -> bool {
        let path = || {
            self.base
                .peek(|st| st.map(|s| s.list.source().path.display().to_string()))
                .unwrap_or_default()
        };
        match outcome {
            None => false,
            Some(Outcome::Reloaded(n)) => {
                gst::info!(CAT, imp = self, "reloaded {}: {n} identities", path());
                let s = gst::Structure::builder("faceveil-reloaded")
                    .field("watchlist", path())
                    .field("identities", n as u32)
                    .build();
                let _ = self
                    .obj()
                    .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
                true
            }
            Some(Outcome::Failed(e)) => {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Read,
                    ("Watch list not reloaded, the previous one stays in use: {e}")
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
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Read,
                    (
                        "Watch list {} was replaced by an older copy (generation {found}, the list \
                         last in use is generation {held}): refused, the list in use stays (empty if \
                         the file had been deleted). Restore the current list, or restart the \
                         pipeline to accept this one",
                        path()
                    )
                );
                false
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn post_event(
        &self,
        buf: &gst::BufferRef,
        face: &Face,
        ev: &Event,
        camera: &str,
        threshold: f32,
        frame: u64,
        model_id: &str,
        (running, stream): (Option<gst::ClockTime>, Option<gst::ClockTime>),
        snapshot: bool,
    ) {
        let obj = self.obj();
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
                .field("score", m.score as f64)
                .field("threshold", threshold as f64)
                .field("margin", m.margin as f64);
            // Only for matches, only when asked.
            if snapshot && let Some(jpeg) = self.snapshot(buf, face) {
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
