//! facewatch implementation: properties, the watch list and its reloads, messages. Matching lives in
//! `core::watchlist::index` and the decisions along tracks in `core::matcher`.

use std::path::PathBuf;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Instant, SystemTime};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;

use crate::core::embedder::{model_id, similarity_for};
use crate::core::manifest::{ModelSpec, Task};
use crate::core::matcher::{Candidate, Config, Event, Fresh, Matcher};
use crate::core::similarity::Similarity;
use crate::core::watchlist::file::Secret;
use crate::core::watchlist::index::Index;
use crate::core::watchlist::store::{load, resolve_key};
use crate::core::watchlist::{WatchlistError, now};
use crate::errors::{model_error, runtime_error};
use crate::meta::{self, Face, IdentityTag};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "facewatch",
        gst::DebugColorFlags::empty(),
        Some("facewatch matcher"),
    )
});

const DEFAULT_EMBEDDER_FILE: &str = "dlib_resnet.onnx";
const DEFAULT_THRESHOLD: f32 = 0.0;
const DEFAULT_MIN_HITS: u32 = 2;
const DEFAULT_HIT_WINDOW: u32 = 30;
const DEFAULT_COOLDOWN: u32 = 60;
const DEFAULT_REPORT_UNKNOWN: bool = false;
const DEFAULT_ALLOW_PLAINTEXT: bool = false;
/// How often the watch-list file is checked for changes.
const WATCH_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);
/// Tracks unseen for this many frames are forgotten.
const TRACK_MAX_AGE: u64 = 300;

#[derive(Debug, Clone)]
struct Settings {
    watchlist: Option<PathBuf>,
    key_file: Option<PathBuf>,
    allow_plaintext: bool,
    model: Option<PathBuf>,
    threshold: f32,
    min_hits: u32,
    hit_window: u32,
    cooldown: u32,
    camera_id: Option<String>,
    report_unknown: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            watchlist: None,
            key_file: None,
            allow_plaintext: DEFAULT_ALLOW_PLAINTEXT,
            model: None,
            threshold: DEFAULT_THRESHOLD,
            min_hits: DEFAULT_MIN_HITS,
            hit_window: DEFAULT_HIT_WINDOW,
            cooldown: DEFAULT_COOLDOWN,
            camera_id: None,
            report_unknown: DEFAULT_REPORT_UNKNOWN,
        }
    }
}

/// A watch list ready for matching.
struct Loaded {
    index: Index,
    /// (modified, length) of the file when read, to notice changes.
    stamp: Option<(SystemTime, u64)>,
}

fn file_stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

struct State {
    path: PathBuf,
    secret: Secret,
    model_id: String,
    similarity: Similarity,
    manifest_threshold: f32,
    loaded: Arc<Loaded>,
    matcher: Matcher,
    frames: u64,
    last_check: Instant,
    started: Instant,
    /// A background reload in progress delivers here.
    pending: Option<std::sync::mpsc::Receiver<Result<Loaded, WatchlistError>>>,
    warned_no_descriptors: bool,
}

#[derive(Default)]
pub struct FaceWatch {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

#[glib::object_subclass]
impl ObjectSubclass for FaceWatch {
    const NAME: &'static str = "GstFaceWatch";
    type Type = super::FaceWatch;
    type ParentType = gst_base::BaseTransform;
}

/// Reads, verifies and indexes a list; the old list stays in use until this succeeds.
fn load_list(
    path: &std::path::Path,
    secret: &Secret,
    model_id: &str,
    sim: &Similarity,
) -> Result<Loaded, WatchlistError> {
    let stamp = file_stamp(path);
    let list = load(path, secret)?;
    if list.model_id != model_id {
        return Err(WatchlistError::ModelMismatch {
            path: path.to_path_buf(),
            list: list.model_id,
            expected: model_id.to_string(),
        });
    }
    Ok(Loaded {
        index: Index::build(&list, sim, now()),
        stamp,
    })
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

impl ObjectImpl for FaceWatch {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("watchlist")
                    .nick("Watch list")
                    .blurb("Path of the watch-list file (made with 'facewatch init' and 'facewatch enroll'). Reloaded when it changes")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("key-file")
                    .nick("Key file")
                    .blurb("Key file of the watch list. Unset: $FACEWATCH_KEY (64 hex digits) if set, else <watchlist>.key. Read at start")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("allow-plaintext")
                    .nick("Allow plaintext")
                    .blurb("Read an unencrypted watch list (made with 'facewatch init --plaintext') instead of an encrypted one; posts a warning")
                    .default_value(DEFAULT_ALLOW_PLAINTEXT)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("model")
                    .nick("Embedder model")
                    .blurb(
                        "The embedder model the descriptors come from (as faceembedder's 'model'): its \
                         manifest gives the default threshold and the mean descriptor. Unset: \
                         dlib_resnet.onnx from the model dirs",
                    )
                    .mutable_ready()
                    .build(),
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
                    .blurb("Post 'facewatch-unknown' once for each track that stays unmatched after min-hits fresh descriptors")
                    .default_value(DEFAULT_REPORT_UNKNOWN)
                    .mutable_playing()
                    .build(),
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
                        let element = args[0].get::<super::FaceWatch>().expect("signal arg");
                        Some(element.imp().reload_now().to_value())
                    })
                    .build(),
            ]
        });
        SIGNALS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap();
        let path = crate::props::path;
        match pspec.name() {
            "watchlist" => s.watchlist = path(value),
            "key-file" => s.key_file = path(value),
            "allow-plaintext" => s.allow_plaintext = value.get().expect("type checked upstream"),
            "model" => s.model = path(value),
            "threshold" => s.threshold = value.get().expect("type checked upstream"),
            "min-hits" => s.min_hits = value.get().expect("type checked upstream"),
            "hit-window" => s.hit_window = value.get().expect("type checked upstream"),
            "cooldown" => s.cooldown = value.get().expect("type checked upstream"),
            "camera-id" => {
                s.camera_id = value
                    .get::<Option<String>>()
                    .expect("type checked upstream")
                    .filter(|c| !c.is_empty())
            }
            "report-unknown" => s.report_unknown = value.get().expect("type checked upstream"),
            _ => unimplemented!(),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap();
        let path = crate::props::path_value;
        match pspec.name() {
            "watchlist" => path(&s.watchlist),
            "key-file" => path(&s.key_file),
            "allow-plaintext" => s.allow_plaintext.to_value(),
            "model" => path(&s.model),
            "threshold" => s.threshold.to_value(),
            "min-hits" => s.min_hits.to_value(),
            "hit-window" => s.hit_window.to_value(),
            "cooldown" => s.cooldown.to_value(),
            "camera-id" => s
                .camera_id
                .clone()
                .unwrap_or_else(|| self.obj().name().to_string())
                .to_value(),
            "report-unknown" => s.report_unknown.to_value(),
            "identities" => {
                let st = self.state.lock().unwrap();
                (st.as_ref().map_or(0, |s| s.loaded.index.len()) as u32).to_value()
            }
            _ => unimplemented!(),
        }
    }
}

impl GstObjectImpl for FaceWatch {}

impl ElementImpl for FaceWatch {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face watch-list matcher",
                "Filter/Analyzer/Video",
                "Matches the descriptors of faceembedder against an encrypted watch list, tags matched \
                 faces and posts a 'facewatch-match' element message once per visit; video passes through",
                "facewatch developers",
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

impl BaseTransformImpl for FaceWatch {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let s = self.settings.lock().unwrap().clone();
        let path = s.watchlist.clone().ok_or_else(|| {
            gst::error_msg!(
                gst::ResourceError::NotFound,
                ("No watch list: set the 'watchlist' property (a file made with 'facewatch init')")
            )
        })?;
        let secret = if s.allow_plaintext {
            Secret::Plaintext
        } else {
            resolve_key(s.key_file.as_deref(), &path).map_err(|e| list_error(&e))?
        };
        let spec = ModelSpec::resolve(s.model.as_deref(), DEFAULT_EMBEDDER_FILE, Task::Embedder)
            .map_err(|e| model_error(&e))?;
        let model_id = model_id(&spec).map_err(|e| runtime_error(&e))?;
        let similarity = similarity_for(&spec).map_err(|e| runtime_error(&e))?;
        let manifest_threshold = spec
            .manifest
            .embedder
            .as_ref()
            .and_then(|e| e.threshold)
            .unwrap_or(0.66);
        let loaded =
            load_list(&path, &secret, &model_id, &similarity).map_err(|e| list_error(&e))?;
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
            loaded.index.len()
        );
        let threshold = if s.threshold > 0.0 {
            s.threshold
        } else {
            manifest_threshold
        };
        *self.state.lock().unwrap() = Some(State {
            path,
            secret,
            model_id,
            similarity,
            manifest_threshold,
            loaded: Arc::new(loaded),
            matcher: Matcher::new(config(&s, threshold)),
            frames: 0,
            last_check: Instant::now(),
            started: Instant::now(),
            pending: None,
            warned_no_descriptors: false,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        self.state.lock().unwrap().take();
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::FlushStop(_) = event.view()
            && let Some(state) = self.state.lock().unwrap().as_mut()
        {
            state.matcher.reset_tracks();
        }
        self.parent_sink_event(event)
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        // The matcher's settings, copied (no allocation); the camera id is read only for an event.
        let (threshold_setting, mut live) = {
            let s = self.settings.lock().unwrap();
            (s.threshold, config(&s, s.threshold))
        };
        let mut guard = self.state.lock().unwrap();
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let notice = self.poll_reload(state);
        let frame = state.frames;
        state.frames += 1;
        let threshold = if threshold_setting > 0.0 {
            threshold_setting
        } else {
            state.manifest_threshold
        };
        live.threshold = threshold;
        state.matcher.set_config(live);

        let faces = meta::faces(buf);
        if !faces.is_empty() && faces.iter().all(|f| f.embedding.is_none()) {
            let warn = !state.warned_no_descriptors;
            state.warned_no_descriptors = true;
            drop(guard);
            self.post_notice(notice);
            if warn {
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Format,
                    ("Faces without descriptors pass through unmatched: put faceembedder before facewatch")
                );
            }
            return Ok(gst::FlowSuccess::Ok);
        }
        let obj = self.obj();
        let segment = obj.segment();
        let running = buf
            .pts()
            .and_then(|t| segment.downcast_ref::<gst::ClockTime>()?.to_running_time(t));
        let clock = running.map_or_else(
            || state.started.elapsed().as_secs_f64(),
            |t| t.nseconds() as f64 / 1e9,
        );
        let unix = now();
        let mut events = Vec::new();
        let mut tags = Vec::new();
        let mut mismatch = None;
        for f in &faces {
            let fresh = match &f.embedding {
                Some(e) if e.fresh => {
                    if e.model_id != state.model_id {
                        mismatch = Some(format!(
                            "Watch list {} is for embedder model {}, but the descriptors come from {}; use the same model in faceembedder and facewatch",
                            state.path.display(),
                            state.model_id,
                            e.model_id
                        ));
                        break;
                    }
                    let q = state.similarity.prepare(e.vector.as_deref().unwrap_or(&[]));
                    let index = &state.loaded.index;
                    let candidate = index.search(&q, unix).map(|h| {
                        let entry = &index.entries()[h.identity];
                        Candidate {
                            identity_id: entry.id.clone(),
                            label: entry.label.clone(),
                            score: h.score,
                            margin: h.margin,
                        }
                    });
                    if let Some(c) = &candidate {
                        gst::debug!(
                            CAT,
                            imp = self,
                            "track {}: best {} {:.3}",
                            f.track_id,
                            c.label,
                            c.score
                        );
                    }
                    Some(Fresh {
                        descriptor: q,
                        candidate,
                    })
                }
                _ => None,
            };
            if let Some(ev) = state.matcher.observe(f.track_id, frame, fresh, clock) {
                events.push((f.clone(), ev));
            }
            if let Some(m) = state.matcher.identity(f.track_id) {
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
        let model_id = state.model_id.clone();
        drop(guard);
        self.post_notice(notice);
        if let Some(m) = mismatch {
            gst::element_imp_error!(self, gst::StreamError::WrongType, ("{m}"));
            return Err(gst::FlowError::Error);
        }

        for (index, tag) in &tags {
            meta::set_identity(buf, *index, tag);
        }
        if events.is_empty() {
            return Ok(gst::FlowSuccess::Ok);
        }
        let camera = self.settings.lock().unwrap().camera_id.clone();
        let camera = camera.unwrap_or_else(|| obj.name().to_string());
        for (face, ev) in events {
            self.post_event(
                buf, &face, &ev, &camera, threshold, frame, &model_id, running,
            );
        }
        Ok(gst::FlowSuccess::Ok)
    }
}

/// Something to tell the application after a reload attempt.
enum Notice {
    None,
    Reloaded(String, u32),
    Failed(String),
}

fn config(s: &Settings, threshold: f32) -> Config {
    Config {
        threshold,
        min_hits: s.min_hits,
        hit_window: s.hit_window as u64,
        cooldown: s.cooldown as f64,
        report_unknown: s.report_unknown,
    }
}

impl FaceWatch {
    /// The `reload` action signal: loads the list now, in the caller's thread. On failure the old
    /// list stays and a warning is posted. Returns whether the new list is in use.
    fn reload_now(&self) -> bool {
        let (path, secret, model_id, sim) = {
            let st = self.state.lock().unwrap();
            let Some(s) = st.as_ref() else { return false };
            (
                s.path.clone(),
                s.secret.clone(),
                s.model_id.clone(),
                s.similarity.clone(),
            )
        };
        let result = load_list(&path, &secret, &model_id, &sim);
        let notice = match self.state.lock().unwrap().as_mut() {
            Some(s) => self.apply_reload(s, result),
            None => Notice::None,
        };
        self.post_notice(notice)
    }

    /// Checks the file once per WATCH_PERIOD; a change starts a reload in a thread, whose result is
    /// applied on a later frame.
    fn poll_reload(&self, state: &mut State) -> Notice {
        if let Some(rx) = &state.pending {
            match rx.try_recv() {
                Ok(result) => {
                    state.pending = None;
                    return self.apply_reload(state, result);
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => return Notice::None,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => state.pending = None,
            }
        }
        if state.last_check.elapsed() < WATCH_PERIOD {
            return Notice::None;
        }
        state.last_check = Instant::now();
        let stamp = file_stamp(&state.path);
        if stamp.is_none() || stamp == state.loaded.stamp {
            return Notice::None;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let (path, secret, model_id, sim) = (
            state.path.clone(),
            state.secret.clone(),
            state.model_id.clone(),
            state.similarity.clone(),
        );
        std::thread::spawn(move || {
            let _ = tx.send(load_list(&path, &secret, &model_id, &sim));
        });
        state.pending = Some(rx);
        Notice::None
    }

    /// Swaps in a reloaded list, or keeps the old one. Returns what to tell the application, to be
    /// posted once the state lock is released.
    fn apply_reload(&self, state: &mut State, result: Result<Loaded, WatchlistError>) -> Notice {
        match result {
            Ok(loaded) => {
                gst::info!(
                    CAT,
                    imp = self,
                    "reloaded {}: {} identities",
                    state.path.display(),
                    loaded.index.len()
                );
                let n = loaded.index.len() as u32;
                state.loaded = Arc::new(loaded);
                Notice::Reloaded(state.path.display().to_string(), n)
            }
            Err(e) => {
                // Keep the old list; remember the stamp so the same bad file is not retried every second.
                let stamp = file_stamp(&state.path);
                let index = state.loaded.index.clone();
                state.loaded = Arc::new(Loaded { index, stamp });
                Notice::Failed(e.to_string())
            }
        }
    }

    fn post_notice(&self, notice: Notice) -> bool {
        match notice {
            Notice::None => false,
            Notice::Reloaded(path, n) => {
                let s = gst::Structure::builder("facewatch-reloaded")
                    .field("watchlist", path)
                    .field("identities", n)
                    .build();
                let _ = self
                    .obj()
                    .post_message(gst::message::Element::builder(s).src(&*self.obj()).build());
                true
            }
            Notice::Failed(e) => {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::Read,
                    ("Watch list not reloaded, the previous one stays in use: {e}")
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
        running: Option<gst::ClockTime>,
    ) {
        let obj = self.obj();
        let segment = obj.segment();
        let stream = buf
            .pts()
            .and_then(|t| segment.downcast_ref::<gst::ClockTime>()?.to_stream_time(t));
        let (x, y, w, h) = face.rect;
        let utc = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let name = match ev {
            Event::Match(_) => "facewatch-match",
            Event::Unknown => "facewatch-unknown",
        };
        let mut b = gst::Structure::builder(name);
        if let Event::Match(m) = ev {
            b = b
                .field("label", &m.label)
                .field("identity-id", &m.identity_id)
                .field("score", m.score as f64)
                .field("threshold", threshold as f64)
                .field("margin", m.margin as f64);
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
