// SPDX-License-Identifier: MIT
//! `faceredact`: pixelates, blurs or fills the faces facedetector found (all of them, those
//! facewatch did not identify, or only those it did), in place, in the frame's own format.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct FaceRedact(ObjectSubclass<imp::FaceRedact>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "faceredact",
        gst::Rank::NONE,
        FaceRedact::static_type(),
    )
}
