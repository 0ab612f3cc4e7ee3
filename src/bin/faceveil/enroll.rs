// SPDX-License-Identifier: MIT
//! `faceveil enroll`: a person's descriptors from photos or videos, of every installed embedder
//! model (or of each `--model`), added to the list. The faces are detected once per file and
//! embedded by each model; a file that gives one model no usable face fails the whole enrolment.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use clap::Args;
use gstfaceveil::engine::watchlist::index::Index;
use gstfaceveil::engine::watchlist::store::update;
use gstfaceveil::engine::watchlist::{Descriptor, Identity, Role, Watchlist, new_id, now};

use crate::Global;
use crate::faces::{Seen, read_faces_models};
use crate::shared::{Fail, enroll_models, event, fmt_time, metric, record, secret, wait};

#[derive(Args)]
pub(crate) struct EnrollArgs {
    /// Name shown in alerts
    #[arg(long)]
    label: String,
    /// Why the person is on the list
    #[arg(long)]
    note: Option<String>,
    /// Expiry: an RFC 3339 time (2027-01-31T00:00:00Z) or a duration from now (30d, 12h)
    /// [default: a person already on the list keeps theirs; a new one gets the list's default expiry (init --default-expiry), if it has one]
    #[arg(long)]
    expires: Option<String>,
    /// Never expires, whatever the list's default expiry
    #[arg(long, conflicts_with = "expires")]
    no_expiry: bool,
    /// Who adds them [default: $USER]
    #[arg(long)]
    added_by: Option<String>,
    /// A known person, never alerted on (the household, staff, a look-alike of someone listed):
    /// a face that scores as high for them as for the best listed person, within the matcher's
    /// known margin, is no alert
    #[arg(long)]
    known: bool,
    /// Take the largest face of a photo with several faces instead of refusing it
    #[arg(long)]
    largest: bool,
    /// Take a face that is too small or of too low quality to be a good reference
    #[arg(long)]
    force: bool,
    /// Photos or video files
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

/// Longest expiry `enroll` accepts: 100 years.
const MAX_EXPIRY_S: i64 = 100 * 366 * 86_400;

/// `--expires`: an RFC 3339 time (from 1970; a past one makes the identity expired at once) or a
/// duration from now, at most 100 years ahead.
pub(crate) fn parse_expiry(s: &str) -> Result<i64, Fail> {
    let bad = |why: &str| Fail(2, format!("--expires {s}: {why}"));
    let t = if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        t.duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .map_err(|_| bad("before 1970"))?
    } else {
        let d = humantime::parse_duration(s)
            .map_err(|_| bad("not an RFC 3339 time nor a duration like 30d"))?;
        if d.as_secs() > MAX_EXPIRY_S as u64 {
            return Err(bad("more than 100 years from now"));
        }
        now() + d.as_secs() as i64
    };
    if t > now() + MAX_EXPIRY_S {
        return Err(bad("more than 100 years from now"));
    }
    Ok(t)
}

/// `init --default-expiry`: a duration, more than none and at most 100 years (what `--expires`
/// takes): `0s` would expire every enrolment at once, and a huge one would wrap.
pub(crate) fn parse_default_expiry(s: &str) -> Result<u64, Fail> {
    let bad = |why: &str| Fail(2, format!("--default-expiry {s}: {why}"));
    let d = humantime::parse_duration(s).map_err(|e| bad(&e.to_string()))?;
    if d.is_zero() {
        return Err(bad("zero: every enrolment would expire at once"));
    }
    if d.as_secs() > MAX_EXPIRY_S as u64 {
        return Err(bad("more than 100 years"));
    }
    Ok(d.as_secs())
}

/// Least distance between the eyes (pixels) of a face `enroll` takes as a reference.
const MIN_ENROL_EYES: f32 = 24.0;
/// Least quality (frontalness × sharpness) of a face `enroll` takes as a reference.
const MIN_ENROL_QUALITY: f32 = 0.25;

/// At most this many descriptors are taken from one video.
const MAX_PER_VIDEO: usize = 5;

/// The descriptors to enroll from one file's `frames` (as one model embedded them): a photo gives
/// its one face (refusing none or several, unless `largest`); a video gives the best-quality frames
/// with one face. `model`: named in the errors when there are several.
fn descriptors_of(
    path: &Path,
    frames: Vec<Vec<Seen>>,
    model: Option<&str>,
    largest: bool,
    force: bool,
) -> Result<Vec<(Vec<f32>, String)>, Fail> {
    // A reference must be good: a small or poor face enrolled makes a list that misses the person
    // and matches strangers.
    let good = |f: &Seen| -> Result<(), String> {
        if force {
            return Ok(());
        }
        if f.eyes < MIN_ENROL_EYES {
            return Err(format!(
                "the face is too small to be a good reference: {:.0} px between the eyes, at least \
                 {MIN_ENROL_EYES:.0} needed (a closer photo, or --force)",
                f.eyes
            ));
        }
        if f.quality < MIN_ENROL_QUALITY {
            return Err(format!(
                "the face is of too low quality to be a good reference: quality {:.2}, at least \
                 {MIN_ENROL_QUALITY:.2} needed (a sharper, more frontal photo, or --force)",
                f.quality
            ));
        }
        Ok(())
    };
    let bad = |m: String| {
        let with = model.map_or(String::new(), |m| format!(" (embedder model {m})"));
        Fail(8, format!("{}: {m}{with}", path.display()))
    };
    let pick = |faces: Vec<Seen>| -> Result<Option<Seen>, String> {
        match faces.len() {
            0 => Ok(None),
            1 => Ok(faces.into_iter().next()),
            _ if largest => Ok(faces.into_iter().max_by_key(|f| f.area)),
            n => Err(format!(
                "{n} faces; use a photo of one person, or --largest"
            )),
        }
    };
    if frames.len() == 1 {
        let face = pick(frames.into_iter().next().unwrap_or_default())
            .map_err(bad)?
            .ok_or_else(|| bad("no face found".into()))?;
        good(&face).map_err(bad)?;
        let q = face.quality;
        return face
            .vector
            .map(|v| vec![(v, face.model_id)])
            .ok_or_else(|| {
                bad(format!(
                    "the face is too small or too poor for a descriptor (quality {q:.2})"
                ))
            });
    }
    let mut usable: Vec<Seen> = Vec::new();
    for faces in frames {
        if let Ok(Some(f)) = pick(faces)
            && f.vector.is_some()
            && good(&f).is_ok()
        {
            usable.push(f);
        }
    }
    if usable.is_empty() {
        return Err(bad("no frame with exactly one usable face".into()));
    }
    usable.sort_by(|a, b| b.quality.total_cmp(&a.quality).then(a.frame.cmp(&b.frame)));
    Ok(usable
        .into_iter()
        .take(MAX_PER_VIDEO)
        .filter_map(|f| f.vector.map(|v| (v, f.model_id)))
        .collect())
}

pub(crate) fn cmd_enroll(g: &Global, a: EnrollArgs) -> Result<(), Fail> {
    let EnrollArgs {
        label,
        note,
        expires,
        no_expiry,
        added_by,
        known,
        largest,
        force,
        files,
    } = a;
    let role = if known { Role::Known } else { Role::Listed };
    let models = enroll_models(g)?;
    let metrics = (models.iter())
        .map(|(spec, _)| metric(spec))
        .collect::<Result<Vec<_>, _>>()?;
    let expires_at = expires.as_deref().map(parse_expiry).transpose()?;
    let paths: Vec<&Path> = models.iter().map(|(s, _)| s.model_path.as_path()).collect();
    let several = models.len() > 1;
    let mut descs = Vec::new();
    for f in &files {
        let by_model = read_faces_models(f, &paths)?;
        for ((_, model), frames) in models.iter().zip(by_model) {
            let named = several.then_some(model.as_str());
            for (v, m) in descriptors_of(f, frames, named, largest, force)? {
                if m != *model {
                    return Err(Fail(
                        7,
                        format!(
                            "{}: descriptor from model {m}, expected {model}",
                            f.display()
                        ),
                    ));
                }
                descs.push(Descriptor {
                    model_id: m,
                    vector: v,
                });
            }
        }
    }
    // How many descriptors of each model, in the order of `models`.
    let counts: Vec<(&str, usize)> = (models.iter())
        .map(|(_, m)| {
            (
                m.as_str(),
                descs.iter().filter(|d| d.model_id == *m).count(),
            )
        })
        .collect();
    let who =
        added_by.unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
    let (id, warning) = update(
        &g.list,
        &wait(g),
        || secret(g),
        |list: &mut Watchlist, _| -> Result<String, Fail> {
            // Someone already on the list under this label is added to, in their own role: a
            // change of role is an edit of its own.
            if let Some(e) = list.identities.iter().find(|i| i.label == label)
                && e.role != role
            {
                return Err(Fail(
                    2,
                    format!(
                        "{label} is on the list as a {} person; enroll them{} to add to their \
                         descriptors, or change their role with 'faceveil edit --identity {label} \
                         --role {}'",
                        e.role.name(),
                        if e.known() {
                            " with --known"
                        } else {
                            " without --known"
                        },
                        role.name()
                    ),
                ));
            }
            // Two entries that match each other produce wrong-person alerts, or (a listed person
            // like a known one) alerts held back: say so (under the first model that finds them
            // similar, with its own threshold). A known person like a listed one is what known
            // people are for.
            let others = Watchlist {
                identities: (list.identities.iter())
                    .filter(|i| i.label != label)
                    .cloned()
                    .collect(),
                ..Watchlist::default()
            };
            let mut similar: Vec<(String, Role, f32, f32, &str)> = Vec::new();
            for ((_, model), (sim, threshold, _)) in models.iter().zip(&metrics) {
                let threshold = *threshold;
                let index = Index::build(&others, model, sim, now());
                for d in descs.iter().filter(|d| d.model_id == *model) {
                    let Some(h) = index.search(&sim.prepare(&d.vector), now()) else {
                        continue;
                    };
                    let known = (h.known)
                        .filter(|_| role == Role::Listed)
                        .map(|k| (k.identity, k.score));
                    for (at, score) in [(h.identity, h.score)].into_iter().chain(known) {
                        if score < threshold {
                            continue;
                        }
                        let e = &index.entries()[at];
                        match similar.iter_mut().find(|(l, ..)| *l == e.label) {
                            Some(x) if x.4 == model => x.2 = x.2.max(score),
                            Some(_) => {}
                            None => {
                                similar.push((e.label.clone(), e.role, score, threshold, model))
                            }
                        }
                    }
                }
            }
            for (who, their_role, score, threshold, model) in &similar {
                let under = if several {
                    format!(" under {model}")
                } else {
                    String::new()
                };
                let what = format!(
                    "{label} is similar to {who}, already on the list{} (score {score:.3} ≥ \
                     threshold {threshold:.2}{under})",
                    if *their_role == Role::Known {
                        " as a known person"
                    } else {
                        ""
                    }
                );
                match (role, their_role) {
                    (Role::Known, _) => eprintln!(
                        "note: {what}: faces that score as high for {label}, within the matcher's \
                         known margin, are not alerted on as {who}"
                    ),
                    (Role::Listed, Role::Known) => eprintln!(
                        "warning: {what}: faces of {label} that score as high for {who}, within \
                         the matcher's known margin, are held back and never alerted on"
                    ),
                    (Role::Listed, Role::Listed) => eprintln!(
                        "warning: {what}: two entries that match each other produce wrong-person \
                         alerts; if they are the same person, enroll under one label"
                    ),
                }
            }
            // Retention: what the user chose; else a person already on the list keeps theirs (a
            // new photo neither extends it nor revives an expired entry), a new one gets the
            // list's default expiry.
            let existing = list.identities.iter().find(|i| i.label == label);
            let expires_at = match (expires_at, no_expiry, existing, list.default_expiry) {
                (Some(t), _, _, _) => Some(t),
                (None, true, _, _) => None,
                (None, false, Some(e), _) => e.expires_at,
                (None, false, None, Some(d)) => Some(now().saturating_add(d as i64)),
                (None, false, None, None) => None,
            };
            if let Some(t) = expires_at.filter(|&t| t <= now())
                && existing.is_some()
            {
                eprintln!(
                    "warning: {label} expired at {} and stays expired (purge-expired removes it); \
                     give --expires to keep them on the list",
                    fmt_time(t)
                );
            }
            // The models by name only: an audit line stays short however many are installed.
            let by_name: Vec<String> = (counts.iter())
                .map(|(m, n)| format!("{} {n}", m.split_once(':').map_or(*m, |(name, _)| name)))
                .collect();
            let detail = format!(
                "{}{} descriptor(s) ({}), expires {}",
                if known {
                    "known person (never alerted on): "
                } else {
                    ""
                },
                counts.iter().map(|c| c.1).sum::<usize>(),
                by_name.join(", "),
                expires_at.map_or("never".into(), fmt_time)
            );
            let id = match list.identities.iter_mut().find(|i| i.label == label) {
                Some(existing) => {
                    existing.descriptors.extend(descs);
                    if note.is_some() {
                        existing.note = note;
                    }
                    existing.expires_at = expires_at;
                    existing.id.clone()
                }
                None => {
                    let id = new_id()?;
                    list.identities.push(Identity {
                        id: id.clone(),
                        label: label.clone(),
                        note,
                        added_by: who,
                        added_at: now(),
                        expires_at,
                        suspended: false,
                        role,
                        descriptors: descs,
                    });
                    id
                }
            };
            record(
                g,
                list,
                &[event(
                    if known { "enroll-known" } else { "enroll" },
                    Some((&id, &label)),
                    Some(detail),
                )],
            )?;
            Ok(id)
        },
    )?;
    crate::list::warn(warning);
    println!(
        "enrolled {label} ({id}){}: {} from {} file(s)",
        if known {
            ", a known person (never alerted on)"
        } else {
            ""
        },
        per_model(&counts),
        files.len()
    );
    Ok(())
}

/// `5 descriptor(s) of dlib_resnet:…, 5 of dlib_resnet-int8:…`.
fn per_model(counts: &[(&str, usize)]) -> String {
    (counts.iter().enumerate())
        .map(|(k, (m, n))| match k {
            0 => format!("{n} descriptor(s) of {m}"),
            _ => format!("{n} of {m}"),
        })
        .collect::<Vec<_>>()
        .join(", ")
}
