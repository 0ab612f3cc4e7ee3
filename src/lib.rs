// SPDX-License-Identifier: MIT
//! faceveil: GStreamer elements that find faces, embed them and match them against a watch list.
//!
//! The names are interface: the *plugin* `faceveil` (`libgstfaceveil.so`, this crate) holds the
//! elements `veildetect`, `veilembed`, `veilmatch` (the matcher), `veilredact`, `veiloverlay` and
//! `veilbin`, all with the one prefix `veil`; the programs are `faceveil` (watch lists, audit,
//! identify), `faceveil-nvr` (cameras) and `faceveil-mqtt` (`src/bin`).
//!
//! Layout: `engine/` is GStreamer-free (models, frames, tracking, per-frame decisions, matching, the
//! watch list); `element.rs` is the skeleton every element is built on; each element directory is
//! glue between GStreamer and `engine`.

use gst::glib;

mod element;
pub mod engine;
mod errors;
pub mod meta;
pub mod pipeline;
mod props;
mod veilbin;
mod veildetect;
mod veilembed;
mod veilmatch;
mod veiloverlay;
mod veilredact;
mod video;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    engine::runtime::disable_telemetry();
    meta::register();
    veildetect::register(plugin)?;
    veilembed::register(plugin)?;
    veilredact::register(plugin)?;
    veiloverlay::register(plugin)?;
    veilmatch::register(plugin)?;
    veilbin::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    faceveil,
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
