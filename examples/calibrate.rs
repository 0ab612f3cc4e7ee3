// SPDX-License-Identifier: MIT
//! Calibrates the embedder's match threshold on every genuine and impostor pair available here and
//! writes the report (docs/CALIBRATION.md). Run by scripts/calibrate.sh; rerun it after changing the
//! detector, the alignment or the embedder.
//!
//! Faces come through the real elements (`uridecodebin ! videoconvert ! <augmentation> ! facedetector !
//! faceembedder`). Single-face photos are also augmented with GStreamer elements — scale 0.5 and
//! 0.75, rotation ±10°, brightness ±0.15, JPEG re-encoding at quality 25, a shift by a border — so a
//! photo yields genuine pairs with different pixels. Photos with several faces (t1 and the background
//! photos sample4..6) add impostors only.
//!
//! usage: cargo run --release --example calibrate -- PHOTO_DIR BACKGROUND_DIR [REPORT.md]

use gstfacewatch::core::embedder::similarity_for;
use gstfacewatch::core::manifest::{ModelSpec, Task};
use gstfacewatch::core::similarity::Similarity;

const AUGMENTATIONS: [(&str, &str); 10] = [
    ("original", ""),
    ("scale 0.5", "videoscale ! video/x-raw,width=W50"),
    ("scale 0.75", "videoscale ! video/x-raw,width=W75"),
    ("rotate +10°", "rotate angle=0.1745"),
    ("rotate -10°", "rotate angle=-0.1745"),
    ("brighter", "videobalance brightness=0.15"),
    ("darker", "videobalance brightness=-0.15"),
    ("jpeg q25", "jpegenc quality=25 ! jpegdec ! videoconvert"),
    (
        "shift",
        "videobox left=-61 top=-37 fill=black ! videoconvert",
    ),
    (
        "scale 0.75 + jpeg",
        "videoscale ! video/x-raw,width=W75 ! jpegenc quality=40 ! jpegdec ! videoconvert",
    ),
];

struct Sample {
    identity: String,
    source: String,
    descriptor: Vec<f32>,
}

fn faces(path: &std::path::Path, aug: &str) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error>> {
    let (w, _) = image_size(path)?;
    let aug = aug
        .replace("W50", &(w / 2 / 2 * 2).to_string())
        .replace("W75", &(w * 3 / 4 / 2 * 2).to_string());
    let aug = if aug.is_empty() {
        String::new()
    } else {
        format!("{aug} ! ")
    };
    Ok(gstfacewatch::pipeline::descriptors(
        path,
        &format!(
            "video/x-raw,format=RGBx ! {aug}facedetector ! faceembedder min-quality=0 min-eye-distance=0"
        ),
    )?)
}

/// Width and height of a photo.
fn image_size(path: &std::path::Path) -> Result<(u32, u32), Box<dyn std::error::Error>> {
    let mut size = None;
    gstfacewatch::pipeline::run_file(path, "identity", |s| {
        size = s
            .caps()
            .and_then(|c| gst_video::VideoInfo::from_caps(c).ok())
            .map(|i| (i.width(), i.height()));
    })?;
    Ok(size.ok_or("no frame")?)
}

fn stats(v: &mut [f32]) -> String {
    v.sort_by(f32::total_cmp);
    let q = |p: f32| v[((v.len() - 1) as f32 * p).round() as usize];
    format!(
        "{} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3}",
        v.len(),
        q(0.0),
        q(0.05),
        q(0.5),
        q(0.95),
        q(1.0)
    )
}

fn pairs(samples: &[Sample], sim: &Similarity) -> (Vec<f32>, Vec<f32>) {
    let prepared: Vec<Vec<f32>> = samples.iter().map(|s| sim.prepare(&s.descriptor)).collect();
    let (mut genuine, mut impostor) = (Vec::new(), Vec::new());
    for i in 0..samples.len() {
        for j in i + 1..samples.len() {
            let s = gstfacewatch::core::similarity::dot(&prepared[i], &prepared[j]);
            if samples[i].identity == samples[j].identity {
                genuine.push(s);
            } else {
                impostor.push(s);
            }
        }
    }
    (genuine, impostor)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    gst::init()?;
    gstfacewatch::plugin_register_static()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [photos, background, rest @ ..] = args.as_slice() else {
        return Err("usage: calibrate PHOTO_DIR BACKGROUND_DIR [REPORT.md]".into());
    };
    let photos = std::path::Path::new(photos);
    let background = std::path::Path::new(background);
    let mut samples = Vec::new();
    // (file, identity) of single-face photos: augmented.
    let singles = [
        ("obama.jpg", "obama"),
        ("obama2.jpg", "obama"),
        ("obama3.jpg", "obama"),
        ("biden.jpg", "biden"),
        ("astronaut.png", "astronaut"),
    ];
    for (file, id) in singles {
        for (name, aug) in AUGMENTATIONS {
            let d = faces(&photos.join(file), aug)?;
            if d.len() != 1 {
                eprintln!("{file} [{name}]: {} faces, skipped", d.len());
                continue;
            }
            samples.push(Sample {
                identity: id.into(),
                source: format!("{file} [{name}]"),
                descriptor: d.into_iter().next().unwrap(),
            });
        }
    }
    // Multi-face photos: every face a different person, originals only.
    let groups = [
        (photos.join("t1.jpg"), "t1"),
        (background.join("sample4.jpg"), "sample4"),
        (background.join("sample5.jpg"), "sample5"),
        (background.join("sample6.jpg"), "sample6"),
    ];
    for (path, tag) in &groups {
        for (i, d) in faces(path, "")?.into_iter().enumerate() {
            samples.push(Sample {
                identity: format!("{tag}-{i}"),
                source: format!("{tag} face {i}"),
                descriptor: d,
            });
        }
    }
    let identities: std::collections::BTreeSet<&str> =
        samples.iter().map(|s| s.identity.as_str()).collect();
    eprintln!("{} faces of {} identities", samples.len(), identities.len());

    let spec = ModelSpec::resolve(None, Task::Embedder)?;
    let centred = similarity_for(&spec)?;
    let plain = Similarity::cosine();
    let (mut g_plain, mut i_plain) = pairs(&samples, &plain);
    let (genuine, impostor) = pairs(&samples, &centred);

    // The threshold: the lowest one, in steps of 0.01, at which at most 0.1 % of the impostor pairs
    // match. A watch list must not raise false alarms; a missed frame is made up by the next ones.
    let rate = |v: &[f32], f: &dyn Fn(f32) -> bool| {
        100.0 * v.iter().filter(|s| f(**s)).count() as f32 / v.len() as f32
    };
    let max_impostor = impostor.iter().cloned().fold(f32::MIN, f32::max);
    let threshold = (20..=99)
        .map(|k| k as f32 / 100.0)
        .find(|t| rate(&impostor, &|s| s >= *t) <= 0.1)
        .unwrap_or(0.99);

    let mut md = String::new();
    md.push_str("# Embedder calibration\n\n");
    md.push_str("Made by `bash scripts/calibrate.sh` (examples/calibrate.rs); rerun it after changing the detector,\n");
    md.push_str(
        "the alignment or the embedder, and copy the threshold into `models/dlib_resnet.toml`.\n\n",
    );
    md.push_str(&format!(
        "Model `{}`; scores are the cosine of L2-normalised descriptors after subtracting the mean\n\
         descriptor of the background set (face-api demo sample1..3.jpg, 9 faces, never used by the tests).\n\n",
        gstfacewatch::core::embedder::model_id(&spec)?
    ));
    md.push_str(&format!(
        "Faces: {} of {} identities, through the real elements. Single-face photos (obama ×3, biden,\n\
         astronaut) in {} versions each: {}. Impostors only: the 6 faces of t1.jpg and the faces of\n\
         the background photos sample4..6.jpg. Genuine pairs: {}; impostor pairs: {}.\n\n",
        samples.len(),
        identities.len(),
        AUGMENTATIONS.len(),
        AUGMENTATIONS.iter().map(|a| a.0).collect::<Vec<_>>().join(", "),
        genuine.len(),
        impostor.len()
    ));
    md.push_str("## Score distributions\n\n| pairs | scoring | n | min | p5 | median | p95 | max |\n|---|---|---|---|---|---|---|---|\n");
    let (mut g, mut i) = (genuine.clone(), impostor.clone());
    md.push_str(&format!(
        "| genuine | centred (default) | {} |\n",
        stats(&mut g)
    ));
    md.push_str(&format!(
        "| impostor | centred (default) | {} |\n",
        stats(&mut i)
    ));
    md.push_str(&format!(
        "| genuine | plain cosine | {} |\n",
        stats(&mut g_plain)
    ));
    md.push_str(&format!(
        "| impostor | plain cosine | {} |\n\n",
        stats(&mut i_plain)
    ));
    md.push_str("## Error rates (centred scores)\n\nFalse match rate = impostor pairs scoring ≥ threshold; false non-match rate = genuine pairs\nscoring below it.\n\n| threshold | false match rate | false non-match rate |\n|---|---|---|\n");
    let mut ts: Vec<f32> = (4..=16).map(|k| k as f32 * 0.05).collect();
    ts.push(threshold);
    ts.sort_by(f32::total_cmp);
    ts.dedup_by(|a, b| (*a - *b).abs() < 1e-6);
    for t in ts {
        let mark = if (t - threshold).abs() < 1e-6 {
            " **(default)**"
        } else {
            ""
        };
        md.push_str(&format!(
            "| {t:.2}{mark} | {:.2} % | {:.2} % |\n",
            rate(&impostor, &|s| s >= t),
            rate(&genuine, &|s| s < t)
        ));
    }
    md.push_str(&format!(
        "\n## Default threshold: {threshold:.2}\n\nThe rule: the lowest threshold, in steps of 0.01, at which at most 0.1 % of the impostor pairs\n\
         match (a watch list must not raise false alarms; a frame missed is made up by the next ones). At\n\
         it: false match rate {:.2} %, false non-match rate {:.2} %. These are rates per pair of faces; the\n\
         matcher also needs several hits along a track (`min-hits`) before it reports. The highest\n\
         impostor score seen is {max_impostor:.3}.\n\n\
         Caveat: {} identities is a small set. The rates are what was measured here, not a promise for\n\
         other populations; operators should check on their own cameras.\n",
        rate(&impostor, &|s| s >= threshold),
        rate(&genuine, &|s| s < threshold),
        identities.len()
    ));
    md.push_str("\n## Lowest genuine and highest impostor pairs\n\n");
    let prepared: Vec<Vec<f32>> = samples
        .iter()
        .map(|s| centred.prepare(&s.descriptor))
        .collect();
    let mut all = Vec::new();
    for a in 0..samples.len() {
        for b in a + 1..samples.len() {
            let s = gstfacewatch::core::similarity::dot(&prepared[a], &prepared[b]);
            all.push((s, samples[a].identity == samples[b].identity, a, b));
        }
    }
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    for (s, same, a, b) in all
        .iter()
        .filter(|p| p.1)
        .take(5)
        .chain(all.iter().rev().filter(|p| !p.1).take(5))
    {
        md.push_str(&format!(
            "- {} {s:.3}: {} vs {}\n",
            if *same { "genuine" } else { "impostor" },
            samples[*a].source,
            samples[*b].source
        ));
    }
    print!("{md}");
    if let Some(out) = rest.first() {
        std::fs::write(out, &md)?;
        eprintln!("wrote {out}");
    }
    Ok(())
}
