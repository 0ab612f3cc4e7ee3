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

/// One loaded model and what its users share: runs are taken in turn, first come first served (so
/// under load every camera gets the same share), and [`Model::combiner`] lets callers with rows of
/// the same kind (face chips) go in one run.
#[derive(Debug)]
pub struct Model {
    session: Mutex<Session>,
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

/// A loaded session: (model file, its modified time and length, threads) and the session while
/// anyone uses it. A model file replaced on disk is a new key: its elements load the new weights.
type Loaded = (
    (PathBuf, Option<std::time::SystemTime>, u64),
    usize,
    Weak<Model>,
);

/// The sessions loaded in this process.
static SESSIONS: Mutex<Vec<Loaded>> = Mutex::new(Vec::new());

/// How many models are loaded in this process now (for tests and diagnostics).
pub fn loaded_sessions() -> usize {
    let reg = SESSIONS.lock().unwrap_or_else(|e| e.into_inner());
    reg.iter().filter(|(_, _, w)| w.strong_count() > 0).count()
}

/// Waits for the caller's turn at a shared session (first come, first served; a panic in another
/// thread's run does not make it unusable).
pub fn lock(model: &SharedSession) -> SessionGuard<'_> {
    let turn = model.turns.take();
    SessionGuard {
        session: model.session.lock().unwrap_or_else(|e| e.into_inner()),
        _turn: turn,
    }
}

/// The session of `model` with `threads` intra-op threads: the one already loaded in this process,
/// or a new one (see [`SharedSession`]).
pub fn load_session(model: &Path, threads: u32) -> Result<SharedSession, RuntimeError> {
    let model_err = |e: &dyn fmt::Display| RuntimeError::Model {
        path: model.to_path_buf(),
        reason: e.to_string(),
    };
    let path = std::fs::canonicalize(model)
        .or_else(|_| std::path::absolute(model))
        .map_err(|e| model_err(&e))?;
    let meta = std::fs::metadata(&path).map_err(|e| model_err(&e))?;
    let key = (path, meta.modified().ok(), meta.len());
    let n = resolve_threads(threads);
    let mut reg = SESSIONS.lock().unwrap_or_else(|e| e.into_inner());
    reg.retain(|(_, _, w)| w.strong_count() > 0);
    if let Some(s) = reg
        .iter()
        .filter(|(p, t, _)| *p == key && *t == n)
        .find_map(|(_, _, w)| w.upgrade())
    {
        return Ok(s);
    }
    let session = Arc::new(Model {
        session: Mutex::new(new_session(&key.0, n)?),
        turns: Turns::default(),
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
