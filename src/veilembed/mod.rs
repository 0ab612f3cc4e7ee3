// SPDX-License-Identifier: MIT
//! `veilembed`: computes face descriptors for the faces veildetect found.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct VeilEmbed(ObjectSubclass<imp::VeilEmbed>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "veilembed",
        gst::Rank::NONE,
        VeilEmbed::static_type(),
    )
}
