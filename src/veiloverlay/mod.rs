// SPDX-License-Identifier: MIT
//! `veiloverlay`: draws the faces the faceveil elements found on the video (boxes, optional
//! landmarks, track ids, and label and score of identified faces), for demos and debugging.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct VeilOverlay(ObjectSubclass<imp::VeilOverlay>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "veiloverlay",
        gst::Rank::NONE,
        VeilOverlay::static_type(),
    )
}
