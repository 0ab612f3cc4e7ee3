// SPDX-License-Identifier: MIT
//! `faceembedder`: computes face descriptors for the faces facedetector found.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct FaceEmbedder(ObjectSubclass<imp::FaceEmbedder>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "faceembedder",
        gst::Rank::NONE,
        FaceEmbedder::static_type(),
    )
}
