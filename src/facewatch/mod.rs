// SPDX-License-Identifier: MIT
//! `facewatch`: matches face descriptors against an encrypted watch list and posts `facewatch-match`.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct FaceWatch(ObjectSubclass<imp::FaceWatch>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "facewatch",
        gst::Rank::NONE,
        FaceWatch::static_type(),
    )
}
