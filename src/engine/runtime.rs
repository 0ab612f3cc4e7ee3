// SPDX-License-Identifier: MIT
//! The process-wide ONNX Runtime environment and model sessions.
//!
//! ONNX Runtime allows one environment per process, so every element instance (and the CLI) shares
//! one, created on first use. The shared library is loaded at run time (`ort`'s `load-dynamic`), from,
//! in order: `$ORT_DYLIB_PATH` (only that, when set), the library meson installs beside the plugin
//! (`<libdir>/faceveil/libonnxruntime.so.1`, fixed at build time), then `libonnxruntime.so.1` and
//! `libonnxruntime.so` on the system's library path.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use ort::environment::Environment;

use crate::engine::batch::{Combiner, Turn, Turns};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeError {
    /// The ONNX Runtime shared library could not be loaded.
    Library(String),
    /// A model could not be loaded into a session.
    Model { path: PathBuf, reason: String },
    /// Inference failed.
    Run(String),
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuntimeError::Library(r) => write!(
                f,
                "ONNX Runtime could not be loaded: {r}. Set ORT_DYLIB_PATH to libonnxruntime.so \
                 (scripts/setup.sh unpacks it into third_party/onnxruntime/; 'source scripts/env.sh' sets it)"
            ),
            RuntimeError::Model { path, reason } => {
                write!(f, "model {} could not be loaded: {reason}", path.display())
            }
            RuntimeError::Run(r) => write!(f, "inference failed: {r}"),
        }
    }
}

impl std::error::Error for RuntimeError {}

static ENVIRONMENT: Mutex<Option<Environment>> = Mutex::new(None);

fn library_candidates() -> Vec<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        return vec![PathBuf::from(p)];
    }
    let mut v = Vec::new();
    if let Some(d) = option_env!("FACEVEIL_INSTALL_ORT_DIR") {
        v.push(Path::new(d).join("libonnxruntime.so.1"));
    }
    v.push(PathBuf::from("libonnxruntime.so.1"));
    v.push(PathBuf::from("libonnxruntime.so"));
    v
}

/// ONNX Runtime's switch for its telemetry client. The Linux library of 1.32 (the onnxruntime wheel's)
/// has a 1DS client that, unless this is `1` when the library initialises, writes a persistent device
/// id and queued events (executable path, OS, CPU, memory) under
/// `~/.cache/Microsoft/DeveloperTools/.onnxruntime/` and uploads them. `with_telemetry(false)` does
/// not stop it; with the variable at `1` nothing is created, persisted or sent.
pub const NO_TELEMETRY_VAR: &str = "ORT_DISABLE_TELEMETRY";

/// Turns ONNX Runtime's telemetry off for this process, whatever the user's environment says. Must
/// run before the library is loaded (it reads the variable once, when it initialises). The
/// programs call it first thing in `main` and the plugin when it registers, before their threads
/// start; loading the library calls it again (then it changes nothing).
pub fn disable_telemetry() {
    if std::env::var_os(NO_TELEMETRY_VAR).is_none_or(|v| v != "1") {
        // SAFETY: called under the ENVIRONMENT lock before ONNX Runtime is loaded, the only code
        // of this process that reads the variable; setenv races only with a concurrent getenv of
        // another thread, which the glib/GStreamer threads running at this point do not do for
        // this name.
        unsafe { std::env::set_var(NO_TELEMETRY_VAR, "1") };
    }
}

/// The shared environment; loads the library on first use. A failure is not cached, so a later call
/// (e.g. after fixing `ORT_DYLIB_PATH`) tries again.
pub fn environment() -> Result<Environment, RuntimeError> {
    let mut guard = ENVIRONMENT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(env) = guard.as_ref() {
        return Ok(env.clone());
    }
    disable_telemetry();
    let mut errors = Vec::new();
    for cand in library_candidates() {
        match ort::init_from(&cand) {
            Ok(builder) => {
                let env = builder
                    .with_name("faceveil")
                    .with_telemetry(false)
                    .build()
                    .map_err(|e| RuntimeError::Library(format!("{}: {e}", cand.display())))?;
                *guard = Some(env.clone());
                return Ok(env);
            }
            Err(e) => errors.push(format!("{}: {e}", cand.display())),
        }
    }
    Err(RuntimeError::Library(errors.join("; ")))
}

/// Intra-op threads for `threads` (0 = the machine's available parallelism, at most 4: past that a
/// single face model gains little and starves the decoder and the other elements).
pub fn resolve_threads(threads: u32) -> usize {
    if threads > 0 {
        return threads as usize;
    }
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4)
}

/// A loaded model, shared by every element of the process that loads the same file with the same
/// number of threads (one copy of the weights and of ONNX Runtime's buffers however many cameras
/// use it).
pub type SharedSession = Arc<Model>;

/// How the cameras (elements) of a process share the detector's model: the environment variable
/// [`SHARING_VAR`] chooses, the default is [`Sharing::Pool`]. Measured in BENCHMARKS.md
/// ("Detector concurrency").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// One session with all the intra-op threads: one run at a time, each as fast as it gets.
    Single,
    /// As many single-thread sessions as threads: that many runs at once (cameras that wait run
    /// side by side, each on a core of its own).
    Pool,
}

/// The environment variable that chooses [`Sharing`]: `single` or `pool`.
pub const SHARING_VAR: &str = "FACEVEIL_DETECTOR_SHARING";

impl Sharing {
    /// The process's choice ([`SHARING_VAR`]; unset or empty: pool). Another value is an error
    /// that names the variable and the values it takes.
    pub fn from_env() -> Result<Sharing, String> {
        Sharing::parse(&std::env::var_os(SHARING_VAR).unwrap_or_default())
    }

    /// A value of [`SHARING_VAR`] (empty: the default).
    pub fn parse(v: &std::ffi::OsStr) -> Result<Sharing, String> {
        match v.to_str() {
            Some("" | "pool") => Ok(Sharing::Pool),
            Some("single") => Ok(Sharing::Single),
            _ => Err(format!(
                "{SHARING_VAR} is {v:?}: it must be 'pool' (the default) or 'single'"
            )),
        }
    }

    /// (sessions, intra-op threads per session) for `threads` threads in all.
    pub fn layout(self, threads: usize) -> (usize, usize) {
        let threads = threads.max(1);
        match self {
            Sharing::Single => (1, threads),
            Sharing::Pool => (threads, 1),
        }
    }
}

/// One loaded model and what its users share: runs are taken in turn, first come first served (so
/// under load every camera gets the same share), on one session or on a pool of them (as many runs
/// at once as sessions), and [`Model::combiner`] lets callers with rows of the same kind (face
/// chips) go in one run.
#[derive(Debug)]
pub struct Model {
    sessions: Vec<Mutex<Session>>,
    turns: Turns,
    combiner: Combiner<RuntimeError>,
}

impl Model {
    /// Combines rows of several callers into one run (see [`Combiner`]).
    pub fn combiner(&self) -> &Combiner<RuntimeError> {
        &self.combiner
    }

    /// Callers running or waiting to run this model now (other cameras' elements included).
    pub fn queued(&self) -> u64 {
        self.turns.queued()
    }

    /// How many runs can go on at once (the sessions of the pool).
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }
}

/// The session while it is the holder's turn; the next waiting caller's turn comes when it drops.
pub struct SessionGuard<'a> {
    // Fields drop in order: the session before the turn.
    session: MutexGuard<'a, Session>,
    _turn: Turn<'a>,
}

impl std::ops::Deref for SessionGuard<'_> {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl std::ops::DerefMut for SessionGuard<'_> {
    fn deref_mut(&mut self) -> &mut Session {
        &mut self.session
    }
}

/// A loaded session: (model file, its modified time and length, (sessions, threads per session)) and
/// the model while anyone uses it. A model file replaced on disk is a new key: its elements load the new weights.
type Loaded = (
    (PathBuf, Option<std::time::SystemTime>, u64),
    (usize, usize),
    Weak<Model>,
);

/// The sessions loaded in this process.
static SESSIONS: Mutex<Vec<Loaded>> = Mutex::new(Vec::new());

/// How many models are loaded in this process now (for tests and diagnostics).
pub fn loaded_sessions() -> usize {
    let reg = SESSIONS.lock().unwrap_or_else(|e| e.into_inner());
    reg.iter().filter(|(_, _, w)| w.strong_count() > 0).count()
}

/// Waits for the caller's turn at a shared model and takes one of its free sessions (first come,
/// first served; a panic in another thread's run does not make it unusable).
pub fn lock(model: &SharedSession) -> SessionGuard<'_> {
    let turn = model.turns.take();
    // A turn means a free seat, and a seat is given back only after its session is unlocked
    // (`SessionGuard` drops the session first), so one of these is free.
    let free = model.sessions.iter().find_map(|s| match s.try_lock() {
        Ok(g) => Some(g),
        Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    });
    SessionGuard {
        session: free
            .unwrap_or_else(|| model.sessions[0].lock().unwrap_or_else(|e| e.into_inner())),
        _turn: turn,
    }
}

/// The session of `model` with `threads` intra-op threads: the one already loaded in this process,
/// or a new one (see [`SharedSession`]).
pub fn load_session(model: &Path, threads: u32) -> Result<SharedSession, RuntimeError> {
    load_shared(model, threads, Sharing::Single)
}

/// The model shared as `sharing` lays out `threads` threads (0 = [`resolve_threads`]): the one
/// already loaded in this process that way, or a new one.
pub fn load_shared(
    model: &Path,
    threads: u32,
    sharing: Sharing,
) -> Result<SharedSession, RuntimeError> {
    let model_err = |e: &dyn fmt::Display| RuntimeError::Model {
        path: model.to_path_buf(),
        reason: e.to_string(),
    };
    let path = std::fs::canonicalize(model)
        .or_else(|_| std::path::absolute(model))
        .map_err(|e| model_err(&e))?;
    let meta = std::fs::metadata(&path).map_err(|e| model_err(&e))?;
    let key = (path, meta.modified().ok(), meta.len());
    let n = sharing.layout(resolve_threads(threads));
    let mut reg = SESSIONS.lock().unwrap_or_else(|e| e.into_inner());
    reg.retain(|(_, _, w)| w.strong_count() > 0);
    if let Some(s) = reg
        .iter()
        .filter(|(p, t, _)| *p == key && *t == n)
        .find_map(|(_, _, w)| w.upgrade())
    {
        return Ok(s);
    }
    let sessions = (0..n.0)
        .map(|_| new_session(&key.0, n.1).map(Mutex::new))
        .collect::<Result<Vec<_>, _>>()?;
    let session = Arc::new(Model {
        turns: Turns::with_seats(sessions.len()),
        sessions,
        combiner: Combiner::default(),
    });
    reg.push((key, n, Arc::downgrade(&session)));
    Ok(session)
}

/// Loads a model into a CPU session: full graph optimisation, `threads` intra-op threads that sleep
/// instead of spinning between runs (spinning workers of several sessions fight for the cores).
fn new_session(model: &Path, threads: usize) -> Result<Session, RuntimeError> {
    let env = environment()?;
    let model_err = |e: &dyn fmt::Display| RuntimeError::Model {
        path: model.to_path_buf(),
        reason: e.to_string(),
    };
    let builder = || -> ort::Result<_> {
        Ok(Session::builder(&env)?
            .with_optimization_level(GraphOptimizationLevel::All)?
            .with_intra_threads(threads)?
            .with_inter_threads(1)?
            .with_intra_op_spinning(false)?)
    };
    builder()
        .map_err(|e| model_err(&e))?
        .commit_from_file(model)
        .map_err(|e| model_err(&e))
}

/// Checks that a loaded model has the input and outputs its manifest names; the error names the
/// model file and lists what it has.
pub fn check_names(
    session: &Session,
    model: &Path,
    input: &str,
    outputs: &[&str],
) -> Result<(), RuntimeError> {
    let names = |list: &[ort::value::Outlet]| {
        list.iter()
            .map(|o| o.name().to_string())
            .collect::<Vec<_>>()
    };
    let (have_in, have_out) = (names(session.inputs()), names(session.outputs()));
    let missing_in = (!have_in.iter().any(|n| n == input)).then(|| format!("input '{input}'"));
    let missing = missing_in.into_iter().chain(
        outputs
            .iter()
            .filter(|o| !have_out.iter().any(|n| n == *o))
            .map(|o| format!("output '{o}'")),
    );
    let missing: Vec<String> = missing.collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(RuntimeError::Model {
        path: model.to_path_buf(),
        reason: format!(
            "the manifest names {}, the model has inputs {have_in:?} and outputs {have_out:?}",
            missing.join(" and ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sharing_parses_its_values_and_refuses_others() {
        use std::ffi::OsStr;
        assert_eq!(Sharing::parse(OsStr::new("")), Ok(Sharing::Pool));
        assert_eq!(Sharing::parse(OsStr::new("pool")), Ok(Sharing::Pool));
        assert_eq!(Sharing::parse(OsStr::new("single")), Ok(Sharing::Single));
        for bad in ["Pool", "batch", "single ", "2"] {
            let e = Sharing::parse(OsStr::new(bad)).unwrap_err();
            assert!(e.contains(SHARING_VAR) && e.contains("single"), "{e}");
        }
    }

    #[test]
    fn a_pool_has_one_single_thread_session_per_thread() {
        assert_eq!(Sharing::Pool.layout(2), (2, 1));
        assert_eq!(Sharing::Pool.layout(1), (1, 1));
        assert_eq!(Sharing::Single.layout(4), (1, 4));
        assert_eq!(Sharing::Single.layout(0), (1, 1));
    }
}
