//! The skeleton of every facewatch filter element (`facedetector`, `faceembedder`, `facewatch`, and
//! the ones to come): settings behind a mutex, the state that exists between `start()` and `stop()`,
//! the `stats` mirror readable while streaming and after stop, model resolving with errors that name
//! the file and the fix, input negotiation, FlushStop, and post-an-error-then-fail in the streaming
//! path. An element keeps only what is its own: its properties, its `Running` state and its
//! per-frame glue.

use std::path::Path;
use std::sync::Mutex;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::core::manifest::{ModelSpec, Task};
use crate::core::runtime::RuntimeError;
use crate::errors::{model_error, runtime_error};
use crate::video;

/// The counters an element publishes in its read-only `stats` property.
pub trait Stats: Copy + Default + Send + 'static {
    /// The property's value (a structure named `<element>-stats`).
    fn structure(&self) -> gst::Structure;
}

/// What an element holds while started.
pub trait Running: Send + 'static {
    type Stats: Stats;
    /// After a FlushStop (seek): forget what belongs to the frames before.
    fn flush(&mut self) {}
    /// Newly negotiated input (elements that read pixels).
    fn set_input(&mut self, _input: video::Input) {}
    fn stats(&self) -> Self::Stats;
}

/// Settings, running state and published stats of one element instance.
pub struct Base<S, R: Running> {
    settings: Mutex<S>,
    state: Mutex<Option<R>>,
    stats: Mutex<R::Stats>,
}

impl<S: Default, R: Running> Default for Base<S, R> {
    fn default() -> Self {
        Base {
            settings: Mutex::new(S::default()),
            state: Mutex::new(None),
            stats: Mutex::new(R::Stats::default()),
        }
    }
}

impl<S: Clone, R: Running> Base<S, R> {
    /// A copy of the settings (for `start()`).
    pub fn settings(&self) -> S {
        self.settings.lock().unwrap().clone()
    }

    /// What the streaming thread needs of the settings on this frame, copied under the lock.
    pub fn live<L>(&self, f: impl FnOnce(&S) -> L) -> L {
        f(&self.settings.lock().unwrap())
    }

    /// `set_property`: changes the settings under the lock.
    pub fn set(&self, f: impl FnOnce(&mut S)) {
        f(&mut self.settings.lock().unwrap())
    }

    /// Begins streaming with `running`; the stats start again from zero.
    pub fn start(&self, running: R) {
        *self.stats.lock().unwrap() = running.stats();
        *self.state.lock().unwrap() = Some(running);
    }

    /// Drops the running state (models, buffers); the last stats stay readable.
    pub fn stop(&self) {
        self.state.lock().unwrap().take();
    }

    /// Lets the running state see a sink event; call before chaining up.
    pub fn sink_event(&self, event: &gst::Event) {
        if let gst::EventView::FlushStop(_) = event.view()
            && let Some(state) = self.state.lock().unwrap().as_mut()
        {
            state.flush();
        }
    }

    /// Runs `f` on the running state and publishes its stats afterwards. Not started (a buffer
    /// racing with stop) is `Flushing`.
    pub fn with_state<T>(
        &self,
        f: impl FnOnce(&mut R) -> Result<T, gst::FlowError>,
    ) -> Result<T, gst::FlowError> {
        let mut guard = self.state.lock().unwrap();
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let result = f(state);
        *self.stats.lock().unwrap() = state.stats();
        result
    }

    /// Reads the running state, if started (for read-only properties).
    pub fn peek<T>(&self, f: impl FnOnce(Option<&R>) -> T) -> T {
        f(self.state.lock().unwrap().as_ref())
    }

    /// The `stats` property's value.
    pub fn stats_value(&self) -> glib::Value {
        self.stats.lock().unwrap().structure().to_value()
    }

    /// `set_info` of an element that reads pixels: refuses a format the samplers cannot read, with
    /// an element error that lists the ones they can, and hands the input to the running state.
    pub fn set_input<E: ElementImpl>(
        &self,
        imp: &E,
        cat: gst::DebugCategory,
        incaps: &gst::Caps,
        info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        let Some(input) = video::Input::new(info) else {
            gst::element_imp_error!(
                imp,
                gst::CoreError::Negotiation,
                (
                    "Unsupported video format {:?} (caps {incaps}); {} takes {}",
                    info.format(),
                    imp.obj()
                        .factory()
                        .map_or("this element".into(), |f| f.name()),
                    video::format_names()
                )
            );
            return Err(gst::loggable_error!(cat, "unsupported format"));
        };
        gst::debug!(cat, imp = imp, "input {incaps}, {:?}", input.matrix);
        let mut guard = self.state.lock().unwrap();
        let state = guard
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(cat, "caps before start"))?;
        state.set_input(input);
        Ok(())
    }
}

/// Resolves an element's `model` property for `task` and builds what the element needs from it
/// (`make`: a session, or the model's id and metric). Both failures become element errors that name
/// the file and the fix.
pub fn load_model<E: ObjectSubclass, T>(
    imp: &E,
    cat: gst::DebugCategory,
    model: Option<&Path>,
    task: Task,
    make: impl FnOnce(ModelSpec) -> Result<T, RuntimeError>,
) -> Result<T, gst::ErrorMessage>
where
    E::Type: IsA<glib::Object>,
{
    let spec = ModelSpec::resolve(model, task).map_err(|e| model_error(&e))?;
    gst::info!(cat, imp = imp, "loading {}", spec.model_path.display());
    make(spec).map_err(|e| runtime_error(&e))
}

/// In the streaming path: posts `msg` as the element's error and returns the flow error to stop
/// the stream with.
pub fn fail<E: ElementImpl>(imp: &E, msg: gst::ErrorMessage) -> gst::FlowError {
    imp.post_error_message(msg);
    gst::FlowError::Error
}

/// `fail` for a runtime (inference) error.
pub fn fail_run<E: ElementImpl>(imp: &E, e: &RuntimeError) -> gst::FlowError {
    fail(imp, runtime_error(e))
}

/// Running, stream and segment times of a buffer's PTS in the element's current segment.
pub fn buffer_times<E: gst_base::subclass::prelude::BaseTransformImpl>(
    imp: &E,
    buf: &gst::BufferRef,
) -> (Option<gst::ClockTime>, Option<gst::ClockTime>)
where
    E::Type: IsA<gst_base::BaseTransform>,
{
    use gst_base::prelude::BaseTransformExtManual;
    let segment = imp.obj().segment();
    let segment = segment.downcast_ref::<gst::ClockTime>();
    let pts = buf.pts();
    (
        pts.and_then(|t| segment?.to_running_time(t)),
        pts.and_then(|t| segment?.to_stream_time(t)),
    )
}
