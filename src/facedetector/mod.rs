// SPDX-License-Identifier: MIT
//! `facedetector`: finds faces in raw video and attaches them as region-of-interest metadata.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct FaceDetector(ObjectSubclass<imp::FaceDetector>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "facedetector",
        gst::Rank::NONE,
        FaceDetector::static_type(),
    )
}
