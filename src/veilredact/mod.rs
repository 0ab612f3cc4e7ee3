// SPDX-License-Identifier: MIT
//! `veilredact`: pixelates, blurs or fills the faces veildetect found (all of them, those
//! veilmatch did not identify, or only those it did), in place, in the frame's own format;
//! `mode=none` passes the video through untouched.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct VeilRedact(ObjectSubclass<imp::VeilRedact>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub use imp::Method;

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // The enums of its properties are part of the plugin's interface (gst-inspect, documentation).
    crate::props::Whose::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    Method::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "veilredact",
        gst::Rank::NONE,
        VeilRedact::static_type(),
    )
}
