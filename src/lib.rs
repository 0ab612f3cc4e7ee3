// SPDX-License-Identifier: MIT
//! facewatch: GStreamer elements that find faces, embed them and match them against a watch list.
//!
//! One name, four things (the names are interface and stay): the *plugin* `facewatch`
//! (`libgstfacewatch.so`, this crate) holds the elements `facedetector`, `faceembedder`,
//! `facewatch` (the *matcher element*), `faceredact`, `facewatchoverlay` and `facewatchbin`; the *CLI* `facewatch` (`src/bin`) makes
//! and edits watch lists. `gst-inspect-1.0 facewatch` shows the matcher element;
//! `gst-inspect-1.0 libgstfacewatch.so` shows the plugin.
//!
//! Layout: `core/` is GStreamer-free (models, frames, tracking, embedding decisions, matching, the
//! watch list); `element.rs` is the skeleton every element is built on; each element directory is
//! thin glue over `core`.

use gst::glib;

pub mod core;
mod element;
mod errors;
mod facedetector;
mod faceembedder;
mod faceredact;
mod facewatch;
mod facewatchbin;
mod facewatchoverlay;
pub mod meta;
pub mod pipeline;
mod props;
mod video;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    core::runtime::disable_telemetry();
    meta::register();
    facedetector::register(plugin)?;
    faceembedder::register(plugin)?;
    faceredact::register(plugin)?;
    facewatchoverlay::register(plugin)?;
    facewatch::register(plugin)?;
    facewatchbin::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    facewatch,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    // GStreamer's name for the MIT licence (Cargo.toml and LICENSE: MIT).
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
