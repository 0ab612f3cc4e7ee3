// SPDX-License-Identifier: MIT
//! Writes the calibration data that scripts/quantize.py makes the INT8 models from (scripts/setup.sh
//! runs it on the background set sample1..3.jpg, whose faces no test uses):
//!
//! - `photoN.npy`: each photo decoded to RGB (uint8, [height, width, 3]); the script stretches it to
//!   the detector's tensor sizes itself, by the detector manifest;
//! - `chips-<name>.npy`, for each embedder (`name` from its manifest): its input for every face of
//!   every photo and of simple variants of it (scale 0.5 and 0.75, rotation ±8°, brighter, darker,
//!   JPEG quality 40), float32 [N, 3, size, size] as the elements make it: the FP32 detector finds
//!   the faces and `Embedder::chip_sharpness` aligns and warps them from the frame.
//!
//! usage: cargo run --release --example quant_calib -- OUT_DIR [--embedder MODEL.onnx]... PHOTO...
//!
//! Without `--embedder`, the FP32 default embedder (`sface.onnx` of `FACEVEIL_MODEL_DIR`).

use gst_video::prelude::*;
use gstfaceveil::engine::detector::{DetectParams, Detector};
use gstfaceveil::engine::embedder::Embedder;
use gstfaceveil::engine::frame::{FrameView, PixelFormat, YuvMatrix};
use gstfaceveil::engine::manifest::{ModelSpec, Task};

/// (name, GStreamer fragment before the RGB caps); `W50`/`W75` become half and three quarters of
/// the photo's width.
const VARIANTS: [(&str, &str); 8] = [
    ("original", ""),
    (
        "scale 0.5",
        "videoscale ! video/x-raw,width=W50,pixel-aspect-ratio=1/1 ! ",
    ),
    (
        "scale 0.75",
        "videoscale ! video/x-raw,width=W75,pixel-aspect-ratio=1/1 ! ",
    ),
    ("rotate +8°", "rotate angle=0.1396 ! "),
    ("rotate -8°", "rotate angle=-0.1396 ! "),
    ("brighter", "videobalance brightness=0.12 ! "),
    ("darker", "videobalance brightness=-0.12 ! "),
    ("jpeg q40", "jpegenc quality=40 ! jpegdec ! "),
];

/// A decoded frame: RGB, tightly packed rows.
struct Rgb {
    width: usize,
    height: usize,
    data: Vec<u8>,
}

impl Rgb {
    fn view(&self) -> FrameView<'_> {
        FrameView::new(
            PixelFormat::Rgb,
            self.width,
            self.height,
            &[&self.data],
            &[self.width * 3],
            YuvMatrix::BT601,
        )
        .expect("RGB frame")
    }
}

/// The first frame of `path` after `chain`, as RGB.
fn decode(path: &std::path::Path, chain: &str) -> Result<Rgb, String> {
    let mut frame = None;
    gstfaceveil::pipeline::run_file(
        path,
        &format!("{chain}videoconvert ! video/x-raw,format=RGB"),
        |s| {
            if frame.is_some() {
                return;
            }
            let (Some(buf), Some(caps)) = (s.buffer(), s.caps()) else {
                return;
            };
            let Ok(info) = gst_video::VideoInfo::from_caps(caps) else {
                return;
            };
            let Ok(vf) = gst_video::VideoFrameRef::from_buffer_ref_readable(buf, &info) else {
                return;
            };
            let (w, h) = (info.width() as usize, info.height() as usize);
            let stride = vf.plane_stride()[0] as usize;
            let Ok(plane) = vf.plane_data(0) else {
                return;
            };
            let mut data = Vec::with_capacity(w * h * 3);
            for row in plane.chunks(stride).take(h) {
                data.extend_from_slice(&row[..w * 3]);
            }
            frame = Some(Rgb {
                width: w,
                height: h,
                data,
            });
        },
    )?;
    frame.ok_or_else(|| format!("{}: no frame", path.display()))
}

/// Writes a C-order array as a .npy file (format 1.0).
fn write_npy(
    path: &std::path::Path,
    descr: &str,
    shape: &[usize],
    data: &[u8],
) -> std::io::Result<()> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // magic (6) + version (2) + length (2) + header, padded with spaces to a multiple of 64, '\n'.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + data.len());
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    std::fs::write(path, out)
}

const USAGE: &str = "usage: quant_calib OUT_DIR [--embedder MODEL.onnx]... PHOTO...";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    gst::init()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [out, rest @ ..] = args.as_slice() else {
        return Err(USAGE.into());
    };
    let (mut models, mut photos) = (Vec::new(), Vec::new());
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        if a == "--embedder" {
            models.push(std::path::PathBuf::from(it.next().ok_or(USAGE)?));
        } else {
            photos.push(a.clone());
        }
    }
    if photos.is_empty() {
        return Err(USAGE.into());
    }
    let out = std::path::Path::new(out);
    std::fs::create_dir_all(out)?;
    // The FP32 models, whatever the defaults: the INT8 ones are made from these chips.
    let dir = std::path::PathBuf::from(
        std::env::var_os("FACEVEIL_MODEL_DIR").ok_or("FACEVEIL_MODEL_DIR is not set")?,
    );
    let fp32 = |t: Task| ModelSpec::resolve(Some(&dir.join(t.fp32_file())), t);
    let mut det = Detector::new(fp32(Task::Detector)?, 0, 0)?;
    let embedders = if models.is_empty() {
        vec![Embedder::new(fp32(Task::Embedder)?, 0)?]
    } else {
        models
            .iter()
            .map(|m| {
                Embedder::new(ModelSpec::resolve(Some(m), Task::Embedder)?, 0).map_err(Into::into)
            })
            .collect::<Result<Vec<_>, Box<dyn std::error::Error>>>()?
    };
    let params = DetectParams::default();
    let mut chips: Vec<Vec<f32>> = vec![Vec::new(); embedders.len()];
    for (i, photo) in photos.iter().enumerate() {
        let path = std::path::Path::new(photo);
        let original = decode(path, "")?;
        write_npy(
            &out.join(format!("photo{i}.npy")),
            "|u1",
            &[original.height, original.width, 3],
            &original.data,
        )?;
        let w = original.width;
        let mut n = 0;
        for (_, chain) in VARIANTS {
            let chain = chain
                .replace("W50", &(w / 2 / 2 * 2).to_string())
                .replace("W75", &(w * 3 / 4 / 2 * 2).to_string());
            let frame = if chain.is_empty() {
                None
            } else {
                Some(decode(path, &chain)?)
            };
            let view = frame.as_ref().unwrap_or(&original).view();
            let faces = det.detect(&view, &params)?;
            for f in &faces {
                let mut ok = true;
                let starts: Vec<usize> = chips.iter().map(Vec::len).collect();
                for (emb, chips) in embedders.iter().zip(&mut chips) {
                    let start = chips.len();
                    chips.resize(start + emb.chip_len(), 0.0);
                    ok &= emb
                        .chip_sharpness(&view, &f.landmarks, 1.0, &mut chips[start..])
                        .is_some();
                }
                if ok {
                    n += 1;
                } else {
                    // The same faces for every embedder.
                    for (chips, start) in chips.iter_mut().zip(starts) {
                        chips.truncate(start);
                    }
                }
            }
        }
        eprintln!("{photo}: {n} faces from {} versions", VARIANTS.len());
    }
    for (emb, chips) in embedders.iter().zip(&chips) {
        let (len, size) = (emb.chip_len(), emb.chip_spec().width);
        let n = chips.len() / len;
        if n == 0 {
            return Err("no faces found".into());
        }
        let bytes: Vec<u8> = chips.iter().flat_map(|v| v.to_le_bytes()).collect();
        let shape = match emb.chip_spec().layout {
            gstfaceveil::engine::frame::Layout::Nchw => [n, 3, size, size],
            gstfaceveil::engine::frame::Layout::Nhwc => [n, size, size, 3],
        };
        let name = &emb.spec().manifest.model.name;
        write_npy(
            &out.join(format!("chips-{name}.npy")),
            "<f4",
            &shape,
            &bytes,
        )?;
        eprintln!("{n} chips for {name} written to {}", out.display());
    }
    eprintln!("{} photos written to {}", photos.len(), out.display());
    Ok(())
}
