// SPDX-License-Identifier: MIT
//! What the calibration stands on, through the real models and the `faceveil` command:
//! `identify` says who a face is and what the element would decide, `enroll` refuses references
//! that would hurt and warns about look-alikes on the list, and grayscale faces take their own path.

mod common;

use std::path::{Path, PathBuf};

use common::{cli, cli_ok, obama_list, photo, require_runtime, run_pipeline, scratch};

/// `photo` re-encoded as PNG through `caps_chain` (a scale, a colour conversion, …).
fn variant(dir: &Path, name: &str, chain: &str, out: &str) -> PathBuf {
    let path = dir.join(out);
    run_pipeline(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! {chain} ! videoconvert ! pngenc ! filesink location={}",
        photo(name).display(),
        path.display()
    ));
    path
}

/// The default embedder's calibrated thresholds (colour, grayscale), from its manifest.
fn default_thresholds() -> (f32, f32) {
    let e = common::embedder_spec().manifest.embedder.unwrap();
    (e.match_threshold(), e.match_threshold_gray())
}

fn identify(list: &Path, files: &[&Path]) -> Vec<serde_json::Value> {
    let mut args = vec!["identify", "--json"];
    let files: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    args.extend(files.iter().map(String::as_str));
    cli_ok(list, &args)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn identify_names_the_enrolled_person_and_no_one_else() {
    require_runtime();
    let d = scratch("identify");
    let list = obama_list(&d);
    let out = identify(&list, &[&photo("obama2.jpg"), &photo("biden.jpg")]);
    assert_eq!(out.len(), 2, "{out:?}");
    let (obama, biden) = (&out[0], &out[1]);
    assert_eq!(obama["best"], "obama");
    assert_eq!(obama["decision"], "match");
    assert!(obama["score"].as_f64().unwrap() >= obama["threshold"].as_f64().unwrap());
    assert_eq!(biden["decision"], "no-match", "{biden}");
    assert!(biden["score"].as_f64().unwrap() < biden["threshold"].as_f64().unwrap());
    assert_eq!(obama["grayscale"], false);
    // The text form says the same.
    let text = cli_ok(&list, &["identify", photo("biden.jpg").to_str().unwrap()]);
    let (colour, _) = default_thresholds();
    assert!(
        text.contains(&format!("→ no-match at {colour:.2}")),
        "{text}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn enroll_refuses_a_small_reference_and_warns_about_look_alikes() {
    require_runtime();
    let d = scratch("enroll-refuse");
    let list = d.join("w.fvl");
    cli_ok(&list, &["init"]);
    // 130 px wide: eyes ~17.5 px apart, between the hard gate (16) and a good reference (24) with
    // either detector model. At 120 px they are 16.1 (FP32) or 15.6 (INT8) px: on the hard gate's
    // edge, where a model's own half-pixel spread decides.
    let small = variant(
        &d,
        "obama.jpg",
        "videoscale ! video/x-raw,width=130,pixel-aspect-ratio=1/1",
        "small.png",
    );
    // identify still finds the face: it is the reference that is refused, with the numbers
    let eyes = identify_eyes(&d, &small);
    let (code, text) = cli(
        &list,
        &["enroll", "--label", "obama", small.to_str().unwrap()],
    );
    assert_eq!(code, 8, "{text}");
    assert!(
        text.contains("too small to be a good reference")
            && text.contains(&format!("{eyes:.0} px"))
            && text.contains("at least 24"),
        "{text}"
    );
    assert!(cli_ok(&list, &["list"]).starts_with("0 identities"));
    cli_ok(
        &list,
        &[
            "enroll",
            "--label",
            "obama",
            "--force",
            small.to_str().unwrap(),
        ],
    );

    // A second label for the same man: enrolled, with a warning naming the look-alike.
    let (code, text) = cli(
        &list,
        &[
            "enroll",
            "--label",
            "barack",
            photo("obama2.jpg").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("warning: barack is similar to obama, already on the list"),
        "{text}"
    );
    // Someone else: enrolled, no warning.
    let (code, text) = cli(
        &list,
        &[
            "enroll",
            "--label",
            "biden",
            photo("biden.jpg").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("warning"), "{text}");
    let listed = cli_ok(&list, &["list"]);
    assert!(
        listed.starts_with("3 identities") && listed.contains("biden"),
        "{listed}"
    );
    std::fs::remove_dir_all(&d).unwrap();
}

/// The eye distance `identify` measures in a photo (with a throw-away list).
fn identify_eyes(d: &Path, file: &Path) -> f64 {
    let list = d.join("probe.fvl");
    if !list.exists() {
        cli_ok(&list, &["init"]);
    }
    let out = identify(&list, &[file]);
    out[0]["eye-distance"].as_f64().unwrap()
}

#[test]
fn grayscale_faces_take_the_grayscale_path() {
    require_runtime();
    let colour = common::embed_photo("obama2.jpg", "video/x-raw,format=I420", "");
    let gray = common::embed_photo(
        "obama2.jpg",
        "video/x-raw,format=GRAY8 ! videoconvert ! video/x-raw,format=I420",
        "",
    );
    let flag = |faces: &[gstfaceveil::meta::Face]| faces[0].embedding.as_ref().unwrap().grayscale;
    assert!(!flag(&colour), "a colour frame is not grayscale");
    assert!(flag(&gray), "a GRAY8 frame is grayscale");
    // RGB frames too: R = G = B is grayscale.
    let gray_rgb = common::embed_photo(
        "obama2.jpg",
        "video/x-raw,format=GRAY8 ! videoconvert ! video/x-raw,format=RGBx",
        "",
    );
    assert!(flag(&gray_rgb));

    // identify (and the element) decide it at the grayscale threshold.
    let d = scratch("grayscale");
    let list = obama_list(&d);
    let file = variant(&d, "obama2.jpg", "video/x-raw,format=GRAY8", "gray.png");
    let out = identify(&list, &[&file, &photo("obama2.jpg")]);
    assert_eq!(out[0]["grayscale"], true);
    let (colour, gray) = default_thresholds();
    assert_ne!(
        colour, gray,
        "the default embedder has a grayscale threshold of its own"
    );
    assert!(
        (out[0]["threshold"].as_f64().unwrap() - gray as f64).abs() < 1e-6,
        "{}",
        out[0]
    );
    assert!(
        (out[1]["threshold"].as_f64().unwrap() - colour as f64).abs() < 1e-6,
        "{}",
        out[1]
    );
    std::fs::remove_dir_all(&d).unwrap();
}
