// SPDX-License-Identifier: MIT
//! Model and runtime failures as GStreamer errors that name the file and the fix.

use crate::engine::manifest::ManifestError;
use crate::engine::runtime::RuntimeError;

/// Turns a model-loading failure into the element error that names the file and the fix.
pub fn model_error(e: &ManifestError) -> gst::ErrorMessage {
    match e {
        ManifestError::NotFound { .. }
        | ManifestError::MissingModel(_)
        | ManifestError::MissingManifest { .. } => {
            gst::error_msg!(gst::ResourceError::NotFound, ("{e}"))
        }
        ManifestError::Invalid { .. } => gst::error_msg!(gst::ResourceError::Settings, ("{e}")),
    }
}

pub fn runtime_error(e: &RuntimeError) -> gst::ErrorMessage {
    match e {
        RuntimeError::Library(_) => gst::error_msg!(gst::LibraryError::Init, ("{e}")),
        RuntimeError::Model { .. } => gst::error_msg!(gst::ResourceError::OpenRead, ("{e}")),
        RuntimeError::Run(_) => gst::error_msg!(gst::StreamError::Failed, ("{e}")),
    }
}
