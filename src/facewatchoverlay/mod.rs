// SPDX-License-Identifier: MIT
//! `facewatchoverlay`: draws the faces the facewatch elements found on the video (boxes, optional
//! landmarks, track ids, and label and score of identified faces), for demos and debugging.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct FaceWatchOverlay(ObjectSubclass<imp::FaceWatchOverlay>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "facewatchoverlay",
        gst::Rank::NONE,
        FaceWatchOverlay::static_type(),
    )
}
