// SPDX-License-Identifier: MIT
//! `veilmatch`: matches face descriptors against an encrypted watch list and posts `faceveil-match`.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct VeilMatch(ObjectSubclass<imp::VeilMatch>)
        @extends gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "veilmatch",
        gst::Rank::NONE,
        VeilMatch::static_type(),
    )
}
