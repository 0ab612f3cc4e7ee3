// SPDX-License-Identifier: MIT
//! `veilbin`: `veildetect ! veilembed ! veilmatch` in one element, for gst-launch lines and
//! applications that want one thing to drop into a pipeline.

use gst::glib;
use gst::prelude::*;

mod imp;
mod proxy;

glib::wrapper! {
    pub struct VeilBin(ObjectSubclass<imp::VeilBin>)
        @extends gst::Bin, gst::Element, gst::Object,
        @implements gst::ChildProxy;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    // The enums of its properties are part of the plugin's interface (gst-inspect, documentation).
    crate::props::Whose::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    crate::veilredact::Method::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "veilbin",
        gst::Rank::NONE,
        VeilBin::static_type(),
    )
}
