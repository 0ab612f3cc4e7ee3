// SPDX-License-Identifier: MIT
//! A borrowed view of a raw video frame and the one sampler every element uses to read pixels.
//!
//! The sampler never converts a whole frame. It maps each pixel of the *destination* (a model's input
//! tensor, a 150×150 face chip, …) through an affine transform into the source frame, samples that
//! point bilinearly in the frame's own format (packed RGB variants, I420 or NV12, with YUV → RGB done
//! after interpolation), and writes the normalised value straight into the tensor layout the model
//! wants. A plain resize is the affine transform without rotation.

mod format;
mod planes;
mod resample;
mod tensor;
#[cfg(test)]
mod testutil;
mod view;

pub use format::{FrameError, PixelFormat, YuvMatrix};
pub use planes::{PlaneKind, PlaneMut};
pub use tensor::{Affine, ChannelOrder, Layout, TensorSpec};
pub use view::FrameView;
