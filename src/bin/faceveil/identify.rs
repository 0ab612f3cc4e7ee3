// SPDX-License-Identifier: MIT
//! `faceveil identify`: for each face of photos or videos, the best identity on the list and the
//! decision the element would take.

use std::path::PathBuf;

use clap::Args;
use gstfaceveil::engine::matcher::{self, Decision, decide};
use gstfaceveil::engine::watchlist::index::Index;
use gstfaceveil::engine::watchlist::now;

use crate::Global;
use crate::faces::read_faces;
use crate::shared::{Fail, metric, open_for_model};

#[derive(Args)]
pub(crate) struct IdentifyArgs {
    /// One JSON object per face
    #[arg(long)]
    json: bool,
    /// Threshold for colour faces [default, or 0: the embedder's calibrated one, as the element]
    #[arg(long)]
    threshold: Option<f32>,
    /// Threshold for grayscale faces [default, or 0: the embedder's calibrated one, as the element]
    #[arg(long)]
    grayscale_threshold: Option<f32>,
    /// Photos or video files
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub(crate) fn cmd_identify(g: &Global, a: IdentifyArgs) -> Result<(), Fail> {
    let (list, _, spec) = open_for_model(g)?;
    let (sim, colour, gray) = metric(&spec)?;
    // 0 means the calibrated threshold, as for the element.
    let (colour, gray) = (
        matcher::threshold(a.threshold.unwrap_or(0.0), colour),
        matcher::threshold(a.grayscale_threshold.unwrap_or(0.0), gray),
    );
    let index = Index::build(&list, &sim, now());
    for path in &a.files {
        for faces in read_faces(path, g.model.as_deref())? {
            for (i, f) in faces.iter().enumerate() {
                let threshold = if f.grayscale { gray } else { colour };
                let hit = f
                    .vector
                    .as_ref()
                    .and_then(|v| index.search(&sim.prepare(v), now()));
                let decision = match (&f.vector, &hit) {
                    (None, _) => "no-descriptor",
                    (Some(_), None) => "no-match",
                    (Some(_), Some(h)) => match decide(h.score, h.margin, threshold, 0.0) {
                        Decision::Match => "match",
                        Decision::NoMatch => "no-match",
                        Decision::Ambiguous => "ambiguous",
                    },
                };
                let best = hit.as_ref().map(|h| &index.entries()[h.identity]);
                if a.json {
                    let v = serde_json::json!({
                        "file": path.display().to_string(), "frame": f.frame, "face": i,
                        "box": [f.rect.0, f.rect.1, f.rect.2, f.rect.3],
                        "grayscale": f.grayscale, "quality": f.quality, "eye-distance": f.eyes,
                        "best": best.map(|e| &e.label), "identity-id": best.map(|e| &e.id),
                        "score": hit.as_ref().map(|h| h.score),
                        "margin": hit.as_ref().map(|h| h.margin),
                        "threshold": threshold, "decision": decision,
                    });
                    println!("{v}");
                } else {
                    let (x, y, w, h) = f.rect;
                    let what = match (&best, &hit) {
                        (Some(e), Some(h)) => format!(
                            "best {} (score {:.3}, margin {:.3})",
                            e.label, h.score, h.margin
                        ),
                        _ if f.vector.is_none() => format!(
                            "no descriptor (quality {:.2}, too small or too poor)",
                            f.quality
                        ),
                        _ => "the list is empty".into(),
                    };
                    println!(
                        "{} frame {} face {i} at {x},{y} {w}x{h}{}: {what} → {decision} at {threshold:.2}",
                        path.display(),
                        f.frame,
                        if f.grayscale { " (grayscale)" } else { "" }
                    );
                }
            }
        }
    }
    Ok(())
}
