//! facewatch: GStreamer elements that find faces, embed them and match them against a watch list.

use gst::glib;

pub mod core;
mod element;
mod errors;
mod facedetector;
mod faceembedder;
mod facewatch;
mod facewatchbin;
pub mod meta;
pub mod pipeline;
mod props;
mod video;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    meta::register();
    facedetector::register(plugin)?;
    faceembedder::register(plugin)?;
    facewatch::register(plugin)?;
    facewatchbin::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    facewatch,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MIT/X11",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
