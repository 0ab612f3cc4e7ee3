// SPDX-License-Identifier: MIT
//! `faceveil identify`: for each face of photos or videos, the best identity on the list, the known
//! person closest to it when they hold it back, and the decision the element would take. Each run is audited (it searches footage against the whole
//! list), recorded like a change, so a user who cannot write the list and its audit log is refused
//! before anything is searched: an `identify` entry with the files before the search (a run killed
//! mid-search leaves it), an `identify-end` entry after it with the numbers of frames, of matched
//! faces and of faces held back for a known person (never their labels) and the labels that
//! matched (and why it stopped, when a file could not be read).

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Args;
use gstfaceveil::engine::audit;
use gstfaceveil::engine::cosine::Similarity;
use gstfaceveil::engine::matcher::{self, Decision, KNOWN_MARGIN, decide};
use gstfaceveil::engine::watchlist::index::Index;
use gstfaceveil::engine::watchlist::now;
use gstfaceveil::engine::watchlist::store::real_path;

use crate::Global;
use crate::faces::read_faces;
use crate::shared::{
    BY_LIST, Fail, audit_fail, audit_log, event, metric, open_for_model, record_locked,
};

fn refuse(why: String) -> Fail {
    Fail(
        3,
        format!(
            "identify is audited (one entry per run, and the list records the log's new head), \
             and {why}: run it as a user who may change the list"
        ),
    )
}

/// Refuses a run that could not be recorded, before anything is searched: the list and its
/// directory (for the lock and the atomic write) must be writable by this user.
fn can_write_list(g: &Global) -> Result<(), Fail> {
    let real = real_path(&g.list)?;
    let dir = real.parent().unwrap_or(std::path::Path::new("/"));
    for p in [real.as_path(), dir] {
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
            .map_err(|_| Fail(2, format!("{}: a NUL in the path", p.display())))?;
        // SAFETY: a valid NUL-terminated path.
        if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
            return Err(refuse(format!(
                "{} is not writable by this user ({})",
                p.display(),
                std::io::Error::last_os_error()
            )));
        }
    }
    Ok(())
}

/// The audit log must be writable and continue from the list's head.
fn can_record(g: &Global, list: &gstfaceveil::engine::watchlist::Watchlist) -> Result<(), Fail> {
    audit::check_tail(&audit_log(g), list.audit, BY_LIST).map_err(|e| match e {
        audit::AuditError::Gap(_) => audit_fail(e),
        e => refuse(e.to_string()),
    })?;
    Ok(())
}

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
    /// How far a listed person's score must lead the best known person's for a match, 0 to 1 (as
    /// veilmatch's known-margin)
    #[arg(long, default_value_t = KNOWN_MARGIN, value_parser = known_margin)]
    known_margin: f32,
    /// Photos or video files
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// `--known-margin`: a number from 0 to 1 (what veilmatch's property takes).
fn known_margin(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(m) if (0.0..=1.0).contains(&m) => Ok(m),
        Ok(_) => Err("must be from 0 to 1".into()),
        Err(e) => Err(e.to_string()),
    }
}

pub(crate) fn cmd_identify(g: &Global, a: IdentifyArgs) -> Result<(), Fail> {
    can_write_list(g)?;
    let (list, _, spec, model) = open_for_model(g)?;
    can_record(g, &list)?;
    let (sim, colour, gray) = metric(&spec)?;
    // 0 means the calibrated threshold, as for the element.
    let thresholds = (
        matcher::threshold(a.threshold.unwrap_or(0.0), colour),
        matcher::threshold(a.grayscale_threshold.unwrap_or(0.0), gray),
    );
    let index = Index::build(&list, &model, &sim, now());
    // Recorded before anything is searched: a run killed or crashed mid-search leaves this entry.
    let files: Vec<String> = a.files.iter().map(|f| f.display().to_string()).collect();
    let detail = format!(
        "{} file(s): {}",
        files.len(),
        audit::capped_list(&files, audit::NAMES_BUDGET)
    );
    let opened = record_locked(g, |_| vec![event("identify", None, Some(detail))])?;
    let mut found = Found::default();
    let list_empty = list.identities.is_empty();
    let searched = search(
        &spec.model_path,
        &a,
        (&index, list_empty),
        &sim,
        thresholds,
        &mut found,
    );
    let labels: Vec<String> = found.labels.into_iter().collect();
    let mut detail = format!(
        "of entry {}: {} frame(s), {} matched face(s)",
        opened.map_or(0, |h| h.seq),
        found.frames,
        found.matched
    );
    if found.held > 0 {
        detail += &format!(", {} held back for a known person", found.held);
    }
    if !labels.is_empty() {
        detail += &format!(
            "{}{}",
            audit::MATCHED,
            audit::capped_list(&labels, audit::NAMES_BUDGET)
        );
    }
    if let Err(Fail(_, why)) = &searched {
        detail += &format!("; stopped: {}", audit::capped_list(&[why], STOPPED_BUDGET));
    }
    let closed = record_locked(g, |_| vec![event("identify-end", None, Some(detail))]);
    match (searched, closed) {
        (Err(e), Err(Fail(_, why))) => {
            eprintln!("faceveil: warning: the end of the run was not recorded: {why}");
            Err(e)
        }
        (Err(e), Ok(_)) => Err(e),
        (Ok(()), closed) => closed.map(|_| ()),
    }
}

/// The bytes of an error an `identify-end` entry holds.
const STOPPED_BUDGET: usize = 512;

/// What a run found, for its `identify-end` entry: frames, matched faces, faces held back for a
/// known person, the labels matched.
#[derive(Default)]
struct Found {
    frames: u64,
    matched: u64,
    held: u64,
    labels: BTreeSet<String>,
}

/// Searches every face of `a.files`, embedded by `model`, in `index` (of a list that is empty, or
/// not) and prints each (as JSON with --json), counting in `found` as it goes (a file that cannot
/// be read stops the search, the counts so far kept).
fn search(
    model: &std::path::Path,
    a: &IdentifyArgs,
    (index, list_empty): (&Index, bool),
    sim: &Similarity,
    (colour, gray): (f32, f32),
    found: &mut Found,
) -> Result<(), Fail> {
    for path in &a.files {
        for faces in read_faces(path, Some(model))? {
            found.frames += 1;
            for (i, f) in faces.iter().enumerate() {
                let threshold = if f.grayscale { gray } else { colour };
                let hit = f
                    .vector
                    .as_ref()
                    .and_then(|v| index.search(&sim.prepare(v), now()));
                let decided = hit.as_ref().map(|h| {
                    let known = h.known.map(|k| k.score);
                    decide(h.score, h.margin, known, threshold, 0.0, a.known_margin)
                });
                let decision = match (&f.vector, decided) {
                    (None, _) => "no-descriptor",
                    (Some(_), None) => "no-match",
                    (Some(_), Some(d)) => match d {
                        Decision::Match => "match",
                        Decision::NoMatch => "no-match",
                        Decision::Ambiguous => "ambiguous",
                        Decision::Known => "known",
                    },
                };
                let best = hit.as_ref().map(|h| &index.entries()[h.identity]);
                if let (Some(e), "match") = (best, decision) {
                    found.matched += 1;
                    found.labels.insert(e.label.clone());
                }
                found.held += (decided == Some(Decision::Known)) as u64;
                // The known person, when they hold the face back or are closer to it than the
                // best listed identity.
                let known = hit.as_ref().and_then(|h| {
                    (h.known)
                        .filter(|k| decided == Some(Decision::Known) || k.score > h.score)
                        .map(|k| (&index.entries()[k.identity], k.score))
                });
                if a.json {
                    let v = serde_json::json!({
                        "file": path.display().to_string(), "frame": f.frame, "face": i,
                        "box": [f.rect.0, f.rect.1, f.rect.2, f.rect.3],
                        "grayscale": f.grayscale, "quality": f.quality, "eye-distance": f.eyes,
                        "best": best.map(|e| &e.label), "identity-id": best.map(|e| &e.id),
                        "score": hit.as_ref().map(|h| h.score),
                        "margin": hit.as_ref().map(|h| h.margin),
                        "known": known.map(|k| &k.0.label),
                        "known-identity-id": known.map(|k| &k.0.id),
                        "known-score": known.map(|k| k.1),
                        "threshold": threshold, "decision": decision,
                    });
                    println!("{v}");
                } else {
                    let (x, y, w, h) = f.rect;
                    let what = match (&best, &hit) {
                        (Some(e), Some(h)) => format!(
                            "best {} (score {:.3}, margin {:.3}){}",
                            e.label,
                            h.score,
                            h.margin,
                            known.map_or(String::new(), |(k, score)| format!(
                                ", known person {} (score {score:.3})",
                                k.label
                            ))
                        ),
                        _ if f.vector.is_none() => format!(
                            "no descriptor (quality {:.2}, too small or too poor)",
                            f.quality
                        ),
                        _ if list_empty => "the list is empty".into(),
                        _ if index.listed() == 0 && !index.is_empty() => {
                            "only known people on the list are searched: nobody to alert on".into()
                        }
                        _ => format!(
                            "nobody on the list can match (expired or suspended{})",
                            if index.without_model() > 0 {
                                ", or without descriptors of this model"
                            } else {
                                ""
                            }
                        ),
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
