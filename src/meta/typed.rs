// SPDX-License-Identifier: MIT
//! The frame's faces as typed values, in one buffer meta beside the face ROIs, so that each
//! element reads them without parsing the ROI params again (`super::faces`).
//!
//! The ROIs stay the one source: the typed faces count only while the face ROIs on the buffer
//! are the very metas they were stored with (same number and order, and each the same meta by its
//! sequence number, with the same id, box and number of param structures). A converter that copies
//! the ROIs makes new metas, an application may take a face ROI off, add one or add a param: the
//! key no longer matches and readers parse the ROIs as before. The meta is never copied to another
//! buffer (its ROIs there are other metas). Only the writers in `super` store faces here, after
//! their change to the ROIs. Not caught: a param structure edited in place through the C API.
//!
//! The meta is registered once per copy of this code in the process (its type name carries the
//! address of a static): a plugin loaded from a file beside a program that links this crate
//! gets a meta of its own, and their elements read each other's faces from the ROIs.

use std::mem::ManuallyDrop;
use std::ptr;
use std::sync::OnceLock;

use gst::glib;
use gst::glib::translate::{FromGlib, IntoGlib};
use gst::meta::MetaAPI;
use gst_video::VideoRegionOfInterestMeta;

use super::{Face, ROI_TYPE};

/// A face ROI as seen without reading its params.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct RoiKey {
    seqnum: gst::meta::MetaSeqnum,
    id: i32,
    rect: (u32, u32, u32, u32),
    params: usize,
}

fn key_of(roi: &gst::MetaRef<VideoRegionOfInterestMeta>) -> Option<RoiKey> {
    (roi.roi_type() == ROI_TYPE).then(|| RoiKey {
        seqnum: roi.seqnum(),
        id: roi.id(),
        rect: roi.rect(),
        params: roi.params().count(),
    })
}

/// The keys of every ROI of type `face` on the buffer (faceveil's and other producers'), in the
/// buffer's order.
fn keys_of(buf: &gst::BufferRef) -> Vec<RoiKey> {
    buf.iter_meta::<VideoRegionOfInterestMeta>()
        .filter_map(|r| key_of(&r))
        .collect()
}

/// The stored faces still describe the buffer's face ROIs.
fn matches(buf: &gst::BufferRef, keys: &[RoiKey]) -> bool {
    let mut want = keys.iter();
    for roi in buf.iter_meta::<VideoRegionOfInterestMeta>() {
        if let Some(k) = key_of(&roi)
            && want.next() != Some(&k)
        {
            return false;
        }
    }
    want.next().is_none()
}

#[derive(Default)]
struct Stored {
    faces: Vec<Face>,
    keys: Vec<RoiKey>,
}

#[repr(C)]
pub struct FacesMetaFfi {
    parent: gst::ffi::GstMeta,
    stored: Stored,
}

/// The typed faces of a frame (see the module's text).
#[repr(transparent)]
pub struct FacesMeta(FacesMetaFfi);

// SAFETY: the meta holds owned Rust values that are Send and Sync.
unsafe impl Send for FacesMeta {}
unsafe impl Sync for FacesMeta {}

// SAFETY: `FacesMeta` is a transparent wrapper of the registered C layout.
unsafe impl MetaAPI for FacesMeta {
    type GstType = FacesMetaFfi;

    fn meta_api() -> glib::Type {
        registered().0
    }
}

/// This copy's name for the meta (see the module's text).
fn names() -> (String, String) {
    static ANCHOR: u8 = 0;
    let tag = &ANCHOR as *const u8 as usize;
    (
        format!("FaceveilFacesMetaAPI-{tag:x}"),
        format!("FaceveilFacesMeta-{tag:x}"),
    )
}

struct Registered(glib::Type, *const gst::ffi::GstMetaInfo);
// SAFETY: a registered meta info is immutable and lives as long as the process.
unsafe impl Send for Registered {}
unsafe impl Sync for Registered {}

fn registered() -> &'static Registered {
    static INFO: OnceLock<Registered> = OnceLock::new();
    INFO.get_or_init(|| {
        let (api_name, impl_name) = names();
        let api_name = std::ffi::CString::new(api_name).expect("no NUL");
        let impl_name = std::ffi::CString::new(impl_name).expect("no NUL");
        // SAFETY: plain registrations with static C strings (leaked: GLib keeps the pointers) and
        // an empty, NULL-terminated tag list; the functions match the layout of `FacesMetaFfi`.
        unsafe {
            let tags = [ptr::null::<std::os::raw::c_char>()];
            let api = gst::ffi::gst_meta_api_type_register(
                api_name.into_raw(),
                tags.as_ptr() as *mut *const _,
            );
            let info = gst::ffi::gst_meta_register(
                api,
                impl_name.into_raw(),
                std::mem::size_of::<FacesMetaFfi>(),
                Some(init),
                Some(free),
                // No transform: a copy of the buffer has copies of the ROIs, other metas.
                None,
            );
            assert!(!info.is_null(), "the typed face meta registers");
            Registered(glib::Type::from_glib(api), info)
        }
    })
}

unsafe extern "C" fn init(
    meta: *mut gst::ffi::GstMeta,
    params: glib::ffi::gpointer,
    _buffer: *mut gst::ffi::GstBuffer,
) -> glib::ffi::gboolean {
    // SAFETY: `params` is the `Stored` that `put` handed over (moved here, not dropped there), or
    // NULL where other code adds the meta by its info: then it holds no faces (its empty keys
    // match only a buffer without face ROIs, where there are none to read). `put` relies on this
    // function never failing.
    unsafe {
        let m = meta as *mut FacesMetaFfi;
        let stored = if params.is_null() {
            Stored::default()
        } else {
            ptr::read(params as *const Stored)
        };
        ptr::write(&mut (*m).stored, stored);
    }
    true.into_glib()
}

unsafe extern "C" fn free(meta: *mut gst::ffi::GstMeta, _buffer: *mut gst::ffi::GstBuffer) {
    // SAFETY: `init` wrote `stored`; GStreamer frees each meta once.
    unsafe { ptr::drop_in_place(&mut (*(meta as *mut FacesMetaFfi)).stored) }
}

/// Replaces the buffer's stored faces (adds the meta where there is none).
fn put(buf: &mut gst::BufferRef, stored: Stored) {
    if let Some(mut m) = buf.meta_mut::<FacesMeta>() {
        m.0.stored = stored;
        return;
    }
    let mut params = ManuallyDrop::new(stored);
    // SAFETY: `init` takes `params` over by value.
    unsafe {
        let meta = gst::ffi::gst_buffer_add_meta(
            buf.as_mut_ptr(),
            registered().1,
            &mut *params as *mut Stored as glib::ffi::gpointer,
        );
        if meta.is_null() {
            ManuallyDrop::drop(&mut params);
        }
    }
}

/// The stored faces, where they still describe the buffer's face ROIs.
pub(super) fn faces(buf: &gst::BufferRef) -> Option<Vec<Face>> {
    let m = buf.meta::<FacesMeta>()?;
    let stored = &m.0.stored;
    matches(buf, &stored.keys).then(|| stored.faces.clone())
}

/// Takes the stored faces out of the buffer where they still describe its face ROIs (the meta
/// is left empty until [`store`]).
pub(super) fn take(buf: &mut gst::BufferRef) -> Option<Vec<Face>> {
    let ok = {
        let m = buf.meta::<FacesMeta>()?;
        matches(buf, &m.0.stored.keys)
    };
    let mut m = buf.meta_mut::<FacesMeta>()?;
    let stored = &mut m.0.stored;
    if !ok {
        return None;
    }
    stored.keys.clear();
    Some(std::mem::take(&mut stored.faces))
}

/// Stores `faces` as what the buffer's face ROIs now say (the writer has just made them so).
pub(super) fn store(buf: &mut gst::BufferRef, faces: Vec<Face>) {
    let keys = keys_of(buf);
    put(buf, Stored { faces, keys });
}
