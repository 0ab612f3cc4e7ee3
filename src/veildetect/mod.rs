// SPDX-License-Identifier: MIT
//! `veildetect`: finds faces in raw video and attaches them as region-of-interest metadata.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct VeilDetect(ObjectSubclass<imp::VeilDetect>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "veildetect",
        gst::Rank::NONE,
        VeilDetect::static_type(),
    )
}
