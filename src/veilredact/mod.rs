// SPDX-License-Identifier: MIT
//! `veilredact`: pixelates, blurs or fills the faces veildetect found (all of them, those
//! veilmatch did not identify, or only those it did), in place, in the frame's own format.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct VeilRedact(ObjectSubclass<imp::VeilRedact>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "veilredact",
        gst::Rank::NONE,
        VeilRedact::static_type(),
    )
}
