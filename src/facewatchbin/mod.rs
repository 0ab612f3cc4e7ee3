// SPDX-License-Identifier: MIT
//! `facewatchbin`: `facedetector ! faceembedder ! facewatch` in one element, for gst-launch lines and
//! applications that want one thing to drop into a pipeline.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct FaceWatchBin(ObjectSubclass<imp::FaceWatchBin>)
        @extends gst::Bin, gst::Element, gst::Object,
        @implements gst::ChildProxy;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "facewatchbin",
        gst::Rank::NONE,
        FaceWatchBin::static_type(),
    )
}
