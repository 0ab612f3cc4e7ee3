// SPDX-License-Identifier: MIT
//! The skeleton of every faceveil filter element (`veildetect`, `veilembed`, `veilmatch`,
//! `veilredact`, `veiloverlay`; `veilbin` is a bin of them): settings behind a mutex, the state that exists between `start()` and `stop()`,
//! the `stats` mirror readable while streaming and after stop, model resolving with errors that name
//! the file and the fix, input negotiation, FlushStop, and post-an-error-then-fail in the streaming
//! path. An element keeps only what is its own: its properties, its `Running` state and its
//! per-frame glue.

use std::path::Path;
use std::sync::Mutex;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use crate::engine::manifest::{ModelSpec, Task};
use crate::engine::runtime::RuntimeError;
use crate::errors::{model_error, runtime_error};
use crate::props::Properties;
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
    /// The negotiated input (elements that read pixels) changed from `old` to `new`.
    fn input_changed(&mut self, _old: Option<&video::Input>, _new: &video::Input) {}
    fn stats(&self) -> Self::Stats;
}

/// The running state and the input negotiated for it.
struct Started<R> {
    running: R,
    input: Option<video::Input>,
}

/// Settings, running state and published stats of one element instance.
pub struct Base<S, R: Running> {
    settings: Mutex<S>,
    state: Mutex<Option<Started<R>>>,
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

    /// `set_property` of a settings field.
    pub fn set_property<E: ObjectSubclass>(
        &self,
        imp: &E,
        cat: gst::DebugCategory,
        value: &glib::Value,
        pspec: &glib::ParamSpec,
    ) where
        S: Properties,
        E::Type: IsA<glib::Object>,
    {
        self.settings.lock().unwrap().set(pspec.name(), value);
        gst::debug!(cat, imp = imp, "set {} to {:?}", pspec.name(), value);
    }

    /// `property` of a settings field, or `stats`.
    pub fn property(&self, pspec: &glib::ParamSpec) -> glib::Value
    where
        S: Properties,
    {
        match self.settings.lock().unwrap().get(pspec.name()) {
            Some(v) => v,
            None if pspec.name() == "stats" => self.stats_value(),
            None => unimplemented!("property {}", pspec.name()),
        }
    }

    /// Begins streaming with `running`; the stats start again from zero.
    pub fn start(&self, running: R) {
        *self.stats.lock().unwrap() = running.stats();
        *self.state.lock().unwrap() = Some(Started {
            running,
            input: None,
        });
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
            state.running.flush();
        }
    }

    /// Runs `f` on the running state and publishes its stats afterwards. Not started (a buffer
    /// racing with stop) is `Flushing`.
    pub fn with_state<T>(
        &self,
        f: impl FnOnce(&mut R) -> Result<T, gst::FlowError>,
    ) -> Result<T, gst::FlowError> {
        self.with_input(|state, _| f(state))
    }

    /// `with_state` with the negotiated input too; none negotiated yet is `NotNegotiated`.
    pub fn with_frame_state<T>(
        &self,
        f: impl FnOnce(&mut R, &video::Input) -> Result<T, gst::FlowError>,
    ) -> Result<T, gst::FlowError> {
        self.with_input(|state, input| f(state, input.ok_or(gst::FlowError::NotNegotiated)?))
    }

    fn with_input<T>(
        &self,
        f: impl FnOnce(&mut R, Option<&video::Input>) -> Result<T, gst::FlowError>,
    ) -> Result<T, gst::FlowError> {
        let mut guard = self.state.lock().unwrap();
        let started = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let result = f(&mut started.running, started.input.as_ref());
        *self.stats.lock().unwrap() = started.running.stats();
        result
    }

    /// Reads the running state, if started (for read-only properties).
    pub fn peek<T>(&self, f: impl FnOnce(Option<&R>) -> T) -> T {
        f(self.state.lock().unwrap().as_ref().map(|s| &s.running))
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
        let (w, h) = (info.width(), info.height());
        let min = video::MIN_SIZE as u32;
        if w < min || h < min {
            gst::element_imp_error!(
                imp,
                gst::CoreError::Negotiation,
                (
                    "Frames of {w}x{h} are smaller than the {min}x{min} that {} takes: scale them up \
                     (videoscale) or leave this stream out",
                    imp.obj()
                        .factory()
                        .map_or("this element".into(), |f| f.name())
                )
            );
            return Err(gst::loggable_error!(cat, "frame too small"));
        }
        gst::debug!(cat, imp = imp, "input {incaps}, {:?}", input.matrix);
        let mut guard = self.state.lock().unwrap();
        let started = guard
            .as_mut()
            .ok_or_else(|| gst::loggable_error!(cat, "caps before start"))?;
        started
            .running
            .input_changed(started.input.as_ref(), &input);
        started.input = Some(input);
        Ok(())
    }
}

/// What an element built on [`Base`] provides; [`in_place_filter!`] turns it into the
/// `BaseTransformImpl` (and, for pixel readers, `VideoFilterImpl`) every faceveil element shares:
/// in place, never passthrough, state made at start and dropped at stop, FlushStop handed on.
/// The element's struct holds its [`Base`] in a field named `base`.
pub trait Filter: ElementImpl {
    type State: Running;
    /// `start()`: resolves and loads what the element needs; errors name the file and the fix.
    fn open(&self) -> Result<Self::State, gst::ErrorMessage>;
    /// One buffer, in place.
    fn process(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError>;
}

/// `in_place_filter!(Imp)` or `in_place_filter!(Imp, video CAT)` (the element reads pixels: a
/// `VideoFilter` whose `set_info` goes through [`Base::set_input`]).
macro_rules! in_place_filter {
    ($imp:ty) => {
        impl gst_base::subclass::prelude::BaseTransformImpl for $imp {
            const MODE: gst_base::subclass::BaseTransformMode =
                gst_base::subclass::BaseTransformMode::AlwaysInPlace;
            const PASSTHROUGH_ON_SAME_CAPS: bool = false;
            const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

            fn start(&self) -> Result<(), gst::ErrorMessage> {
                use $crate::element::Filter;
                let state = self.open()?;
                self.base.start(state);
                Ok(())
            }

            fn stop(&self) -> Result<(), gst::ErrorMessage> {
                self.base.stop();
                Ok(())
            }

            fn sink_event(&self, event: gst::Event) -> bool {
                self.base.sink_event(&event);
                self.parent_sink_event(event)
            }

            fn transform_ip(
                &self,
                buf: &mut gst::BufferRef,
            ) -> Result<gst::FlowSuccess, gst::FlowError> {
                use $crate::element::Filter;
                self.process(buf)
            }
        }
    };
    ($imp:ty, video $cat:expr) => {
        $crate::element::in_place_filter!($imp);

        impl gst_video::subclass::prelude::VideoFilterImpl for $imp {
            fn set_info(
                &self,
                incaps: &gst::Caps,
                in_info: &gst_video::VideoInfo,
                _outcaps: &gst::Caps,
                _out_info: &gst_video::VideoInfo,
            ) -> Result<(), gst::LoggableError> {
                self.base.set_input(self, *$cat, incaps, in_info)
            }
        }
    };
}
pub(crate) use in_place_filter;

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
