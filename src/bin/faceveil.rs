// SPDX-License-Identifier: MIT
//! `faceveil`: manage watch lists. Thin over `gstfaceveil::engine`; photos and videos are read through
//! GStreamer with the same elements (and models) as the pipelines.
//!
//! Exit codes (docs/WATCHLIST.md): 0 ok, 1 other error, 2 usage or bad value, 3 I/O, 4 corrupt,
//! truncated, oversized or non-regular list file, 5 tampered list, 6 wrong or missing key (or altered
//! key check), 7 newer format or other embedder model, 8 unusable input (no face, several faces,
//! unreadable file), 9 no such identity, 10 timed out waiting for the lock, 11 the audit log fails
//! verification.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use gstfaceveil::engine::audit;
use gstfaceveil::engine::cosine::Similarity;
use gstfaceveil::engine::embedder::{model_id, similarity_for};
use gstfaceveil::engine::manifest::{ModelSpec, Task};
use gstfaceveil::engine::matcher::{self, Decision, decide};
use gstfaceveil::engine::watchlist::file::{Secret, random_key};
use gstfaceveil::engine::watchlist::index::Index;
use gstfaceveil::engine::watchlist::store::{
    Lock, Wait, default_key_file, load, real_path, resolve_key, save, update, write_pending_key,
};
use gstfaceveil::engine::watchlist::{
    Descriptor, Identity, Watchlist, WatchlistError, new_id, now,
};

#[derive(Parser)]
#[command(
    name = "faceveil",
    version,
    about = "Manage faceveil watch lists: encrypted descriptors, never photos"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Clone)]
struct Global {
    /// Watch-list file [default: $FACEVEIL_WATCHLIST, else ./watchlist.fvl]
    #[arg(
        long,
        global = true,
        env = "FACEVEIL_WATCHLIST",
        default_value = "watchlist.fvl"
    )]
    list: PathBuf,
    /// Key file [default: $FACEVEIL_KEY (64 hex digits) when set, else <list>.key]
    #[arg(long, global = true)]
    key_file: Option<PathBuf>,
    /// Protect the list with a passphrase read from this environment variable instead of a key
    #[arg(long, global = true, value_name = "VAR")]
    passphrase_env: Option<String>,
    /// Unencrypted list (not recommended; prints a warning)
    #[arg(long, global = true)]
    plaintext: bool,
    /// Embedder model [default: dlib_resnet.onnx from $FACEVEIL_MODEL_DIR or the installed data dir]
    #[arg(long, global = true)]
    model: Option<PathBuf>,
    /// Seconds a writer waits for another writer's lock before it gives up (exit code 10)
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 30)]
    wait: u64,
    /// Accept a new passphrase shorter than 12 characters
    #[arg(long, global = true)]
    weak_passphrase: bool,
    /// Audit log that every change of the list is appended to [default: <list>.audit]
    #[arg(long, global = true, env = "FACEVEIL_AUDIT_LOG")]
    audit_log: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Create a new, empty watch list and its key file (mode 0600)
    Init {
        /// Replace an existing list (and key file)
        #[arg(long)]
        force: bool,
        /// Retention: people enrolled without --expires or --no-expiry expire this long after
        /// enrolment (e.g. 90d, 12w)
        #[arg(long, value_name = "DURATION")]
        default_expiry: Option<String>,
    },
    /// Add a person from photos or videos (any format decodebin reads)
    Enroll(EnrollArgs),
    /// For each face in photos or videos: the best identity on the list, its score, the margin to
    /// the second best, and whether the faceveil element would count it as a match
    Identify(IdentifyArgs),
    /// Show who is on the list (labels, ids, counts, dates; never descriptors)
    List {
        /// One JSON object per line
        #[arg(long)]
        json: bool,
    },
    /// Remove a person. Copies of the list made before (backups) still hold them under the same
    /// key: --rekey re-encrypts the list under a new key in the same locked step, so that those
    /// copies cannot be opened with the key in use any more
    Remove {
        #[arg(long, conflicts_with = "id", required_unless_present = "id")]
        label: Option<String>,
        #[arg(long)]
        id: Option<String>,
        /// Then re-encrypt under a new key (or, with --new-passphrase-env, a new passphrase)
        #[arg(long)]
        rekey: bool,
        /// With --rekey: read the new passphrase from this environment variable
        #[arg(long, value_name = "VAR", requires = "rekey")]
        new_passphrase_env: Option<String>,
    },
    /// Check the list's integrity and that the key opens it; show its generation and last write
    Verify,
    /// Re-encrypt the list with a new key (written to the key file) or a new passphrase
    Rekey {
        /// Read the new passphrase from this environment variable instead of making a new key
        #[arg(long, value_name = "VAR")]
        new_passphrase_env: Option<String>,
    },
    /// Remove every identity whose expiry has passed
    PurgeExpired,
    /// The audit log: check its chain, or show it
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to standard output
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check that no line was edited, deleted, inserted or reordered, and (with the list's key)
    /// that no line was cut off the end; exit code 11 when the log fails
    Verify {
        /// The log [default: --audit-log]
        log: Option<PathBuf>,
    },
    /// Print the log, one entry per line
    Show {
        /// The log [default: --audit-log]
        log: Option<PathBuf>,
        /// Only entries of this identity id or label
        #[arg(long)]
        identity: Option<String>,
        /// Only entries at or after this time (RFC 3339) or this long ago (e.g. 7d)
        #[arg(long)]
        since: Option<String>,
        /// Only entries before this time (RFC 3339) or this long ago
        #[arg(long)]
        until: Option<String>,
        /// The entries as they are stored (JSON lines)
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct EnrollArgs {
    /// Name shown in alerts
    #[arg(long)]
    label: String,
    /// Why the person is on the list
    #[arg(long)]
    note: Option<String>,
    /// Expiry: an RFC 3339 time (2027-01-31T00:00:00Z) or a duration from now (30d, 12h)
    /// [default: the list's default expiry (init --default-expiry), if it has one]
    #[arg(long)]
    expires: Option<String>,
    /// Never expires, whatever the list's default expiry
    #[arg(long, conflicts_with = "expires")]
    no_expiry: bool,
    /// Who adds them [default: $USER]
    #[arg(long)]
    added_by: Option<String>,
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

#[derive(Args)]
struct IdentifyArgs {
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

/// An error with its exit code.
struct Fail(i32, String);

impl From<WatchlistError> for Fail {
    fn from(e: WatchlistError) -> Self {
        Fail(e.exit_code(), e.to_string())
    }
}

fn key_file(g: &Global) -> PathBuf {
    g.key_file
        .clone()
        .unwrap_or_else(|| default_key_file(&g.list))
}

fn audit_log(g: &Global) -> PathBuf {
    g.audit_log.clone().unwrap_or_else(|| {
        let mut p = g.list.as_os_str().to_owned();
        p.push(".audit");
        PathBuf::from(p)
    })
}

/// Who runs the CLI, for the audit log: $USER, else the user id.
fn user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        // SAFETY: getuid cannot fail.
        .unwrap_or_else(|| format!("uid:{}", unsafe { libc::getuid() }))
}

/// An audit event by the user.
fn event(action: &str, who: Option<(&str, &str)>, detail: Option<String>) -> audit::Event {
    audit::Event {
        actor: user(),
        action: action.into(),
        identity: who.map(|w| w.0.to_string()),
        label: who.map(|w| w.1.to_string()),
        detail,
    }
}

/// Appends `events` to the audit log and records its new head in `list` (which the caller then
/// writes). Done before the list is written: a failed write leaves a line too many, never one too
/// few.
fn record(g: &Global, list: &mut Watchlist, events: &[audit::Event]) -> Result<(), Fail> {
    let head = audit::append(&audit_log(g), events, now()).map_err(|e| Fail(3, e.to_string()))?;
    list.audit = Some(head);
    Ok(())
}

fn passphrase(var: &str) -> Result<String, Fail> {
    std::env::var(var)
        .ok()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            Fail(
                6,
                format!("environment variable {var} (the passphrase) is not set"),
            )
        })
}

/// Fewest characters of a new passphrase (unless --weak-passphrase).
const MIN_PASSPHRASE: usize = 12;

/// A passphrase for a list to be written: long enough unless the user said otherwise.
fn new_passphrase(g: &Global, var: &str) -> Result<Secret, Fail> {
    let p = passphrase(var)?;
    if p.chars().count() < MIN_PASSPHRASE && !g.weak_passphrase {
        return Err(Fail(
            2,
            format!(
                "the passphrase in {var} has {} characters, fewer than {MIN_PASSPHRASE}; use a \
                 longer one (or a key file), or --weak-passphrase",
                p.chars().count()
            ),
        ));
    }
    Ok(Secret::Passphrase(p))
}

/// How writers wait for the lock: they say that they wait, and for whom.
fn wait(g: &Global) -> Wait<'static> {
    Wait {
        timeout: Duration::from_secs(g.wait),
        notify: &|path, pid| {
            eprintln!(
                "faceveil: waiting for the lock on {}, held by {} (up to --wait seconds)",
                path.display(),
                pid.map_or("another process".into(), |p| format!("process {p}"))
            )
        },
    }
}

fn secret(g: &Global) -> Result<Secret, Fail> {
    if g.plaintext {
        eprintln!("warning: the watch list is not encrypted (--plaintext)");
        return Ok(Secret::Plaintext);
    }
    if let Some(var) = &g.passphrase_env {
        return Ok(Secret::Passphrase(passphrase(var)?));
    }
    Ok(resolve_key(g.key_file.as_deref(), &g.list)?)
}

fn embedder(g: &Global) -> Result<(ModelSpec, String), Fail> {
    let spec = ModelSpec::resolve(g.model.as_deref(), Task::Embedder)
        .map_err(|e| Fail(1, e.to_string()))?;
    let id = model_id(&spec).map_err(|e| Fail(1, e.to_string()))?;
    Ok((spec, id))
}

/// 9999-12-31T23:59:59Z, the last second RFC 3339 can write.
const LAST_RFC3339: i64 = 253_402_300_799;

/// RFC 3339 for any stored time (never panics: a time outside 1970..9999, which only an old or
/// crafted list can hold, is shown as unix seconds).
fn fmt_time(t: i64) -> String {
    if (0..=LAST_RFC3339).contains(&t) {
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(t as u64)).to_string()
    } else {
        format!("@{t} (unix seconds)")
    }
}

/// Longest expiry `enroll` accepts: 100 years.
const MAX_EXPIRY_S: i64 = 100 * 366 * 86_400;

/// `--expires`: an RFC 3339 time (from 1970; a past one makes the identity expired at once) or a
/// duration from now, at most 100 years ahead.
fn parse_expiry(s: &str) -> Result<i64, Fail> {
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

/// One face of a frame read from an input file.
struct Seen {
    frame: usize,
    rect: (u32, u32, u32, u32),
    area: u32,
    quality: f32,
    /// Distance between the eyes in pixels.
    eyes: f32,
    grayscale: bool,
    vector: Option<Vec<f32>>,
    model_id: String,
}

/// The faces of each frame of a file, through `veildetect ! veilembed` (the pipelines' code).
fn read_faces(path: &Path, model: Option<&Path>) -> Result<Vec<Vec<Seen>>, Fail> {
    let model = model
        .map(|m| format!("model=\"{}\"", m.display()))
        .unwrap_or_default();
    let mut frames: Vec<Vec<Seen>> = Vec::new();
    gstfaceveil::pipeline::run_file(
        path,
        &format!("veildetect ! veilembed reembed-interval=1 {model}"),
        |sample| {
            let Some(buf) = sample.buffer() else { return };
            let n = frames.len();
            frames.push(
                gstfaceveil::meta::faces(buf)
                    .into_iter()
                    .map(|f| {
                        let e = f.embedding;
                        Seen {
                            frame: n,
                            rect: f.rect,
                            area: f.rect.2 * f.rect.3,
                            eyes: gstfaceveil::engine::embedder::eye_distance(&f.landmarks),
                            grayscale: e.as_ref().is_some_and(|e| e.grayscale),
                            quality: e.as_ref().map_or(0.0, |e| e.quality),
                            model_id: e.as_ref().map(|e| e.model_id.clone()).unwrap_or_default(),
                            vector: e.and_then(|e| e.vector),
                        }
                    })
                    .collect(),
            );
        },
    )
    .map_err(|e| Fail(8, format!("cannot be read: {e}")))?;
    if frames.is_empty() {
        return Err(Fail(8, format!("{}: no video frame in it", path.display())));
    }
    Ok(frames)
}

/// Least distance between the eyes (pixels) of a face `enroll` takes as a reference.
const MIN_ENROL_EYES: f32 = 24.0;
/// Least quality (frontalness × sharpness) of a face `enroll` takes as a reference.
const MIN_ENROL_QUALITY: f32 = 0.25;

/// At most this many descriptors are taken from one video.
const MAX_PER_VIDEO: usize = 5;

/// The descriptors to enroll from one file: a photo gives its one face (refusing none or several,
/// unless `largest`); a video gives the best-quality frames with one face.
fn descriptors_of(
    path: &Path,
    model: Option<&Path>,
    largest: bool,
    force: bool,
) -> Result<Vec<(Vec<f32>, String)>, Fail> {
    let frames = read_faces(path, model)?;
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
    let bad = |m: String| Fail(8, format!("{}: {m}", path.display()));
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

fn cmd_init(g: &Global, force: bool, default_expiry: Option<String>) -> Result<(), Fail> {
    let (_, model) = embedder(g)?;
    let default_expiry = default_expiry
        .map(|d| {
            humantime::parse_duration(&d)
                .map(|d| d.as_secs())
                .map_err(|e| Fail(2, format!("--default-expiry {d}: {e}")))
        })
        .transpose()?;
    let mut new_list = Watchlist::new(&model);
    new_list.default_expiry = default_expiry;

    let lock = Lock::acquire(&g.list, &wait(g))?;
    let list = lock.list();
    if std::fs::symlink_metadata(list).is_ok() && !force {
        return Err(Fail(
            1,
            format!("{} exists; use --force to replace it", list.display()),
        ));
    }
    record(
        g,
        &mut new_list,
        &[event(
            "init",
            None,
            Some(match default_expiry {
                Some(s) => format!(
                    "default expiry {}",
                    humantime::format_duration(Duration::from_secs(s))
                ),
                None => "no default expiry".into(),
            }),
        )],
    )?;
    if g.plaintext {
        eprintln!("warning: the watch list is not encrypted (--plaintext)");
        save(list, &mut new_list, &Secret::Plaintext)?;
    } else if let Some(var) = &g.passphrase_env {
        save(list, &mut new_list, &new_passphrase(g, var)?)?;
    } else {
        let kf = key_file(g);
        if !force && std::fs::symlink_metadata(&kf).is_ok() {
            return Err(Fail(
                3,
                format!(
                    "key file {}: key file exists; not overwritten",
                    kf.display()
                ),
            ));
        }
        // The new key beside any old one first; the list under it; then the key in place (a failed
        // write leaves the old list and key as they were).
        let key = random_key()?;
        let kf_real = real_path(&kf)?;
        let mut pending = kf_real.as_os_str().to_owned();
        pending.push(".new");
        let pending = PathBuf::from(pending);
        write_pending_key(&pending, &key)?;
        save(list, &mut new_list, &Secret::Key(key))?;
        std::fs::rename(&pending, &kf_real)
            .map_err(|e| Fail(3, format!("{}: {e}", kf_real.display())))?;
        println!(
            "key file {} (mode 0600): keep it apart from backups of the list",
            kf.display()
        );
    }
    println!("created {} for model {model}", g.list.display());
    Ok(())
}

fn cmd_enroll(g: &Global, a: EnrollArgs) -> Result<(), Fail> {
    let EnrollArgs {
        label,
        note,
        expires,
        no_expiry,
        added_by,
        largest,
        force,
        files,
    } = a;
    let (spec, model) = embedder(g)?;
    let (sim, threshold, _) = metric(&spec)?;
    let expires_at = expires.as_deref().map(parse_expiry).transpose()?;
    let mut descs = Vec::new();
    for f in &files {
        for (v, m) in descriptors_of(f, g.model.as_deref(), largest, force)? {
            if m != model {
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
    let n = descs.len();
    let who =
        added_by.unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
    let id = update(
        &g.list,
        &wait(g),
        || secret(g),
        |list: &mut Watchlist, _| -> Result<String, Fail> {
            if list.model_id != model {
                return Err(WatchlistError::ModelMismatch {
                    path: g.list.clone(),
                    list: list.model_id.clone(),
                    expected: model.clone(),
                }
                .into());
            }
            // Two entries that match each other produce wrong-person alerts: say so.
            let others = Watchlist {
                identities: (list.identities.iter())
                    .filter(|i| i.label != label)
                    .cloned()
                    .collect(),
                ..Watchlist::new(&model)
            };
            let index = Index::build(&others, &sim, now());
            let mut similar: Vec<(String, f32)> = Vec::new();
            for d in &descs {
                if let Some(h) = index.search(&sim.prepare(&d.vector), now())
                    && h.score >= threshold
                {
                    let who = index.entries()[h.identity].label.clone();
                    match similar.iter_mut().find(|(l, _)| *l == who) {
                        Some(x) => x.1 = x.1.max(h.score),
                        None => similar.push((who, h.score)),
                    }
                }
            }
            for (who, score) in &similar {
                eprintln!(
                    "warning: {label} is similar to {who}, already on the list (score {score:.3} ≥ \
                     threshold {threshold:.2}): two entries that match each other produce wrong-person \
                     alerts; if they are the same person, enroll under one label"
                );
            }
            // Retention: the list's default expiry unless the user chose.
            let expires_at = match (expires_at, no_expiry, list.default_expiry) {
                (Some(t), _, _) => Some(t),
                (None, false, Some(d)) => Some(now().saturating_add(d as i64)),
                _ => None,
            };
            let detail = format!(
                "{n} descriptor(s), expires {}",
                expires_at.map_or("never".into(), fmt_time)
            );
            let id = match list.identities.iter_mut().find(|i| i.label == label) {
                Some(existing) => {
                    existing.descriptors.extend(descs);
                    if note.is_some() {
                        existing.note = note;
                    }
                    if expires_at.is_some() || no_expiry {
                        existing.expires_at = expires_at;
                    }
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
                        descriptors: descs,
                    });
                    id
                }
            };
            record(
                g,
                list,
                &[event("enroll", Some((&id, &label)), Some(detail))],
            )?;
            Ok(id)
        },
    )?;
    println!(
        "enrolled {label} ({id}): {n} descriptor(s) from {} file(s)",
        files.len()
    );
    Ok(())
}

/// The matching metric of the embedder model: its similarity and calibrated thresholds (colour,
/// grayscale), as the element uses them.
fn metric(spec: &ModelSpec) -> Result<(Similarity, f32, f32), Fail> {
    let sim = similarity_for(spec).map_err(|e| Fail(1, e.to_string()))?;
    let e = spec.manifest.embedder.as_ref();
    Ok((
        sim,
        e.map_or(0.66, |e| e.match_threshold()),
        e.map_or(0.66, |e| e.match_threshold_gray()),
    ))
}

/// Opens the list and checks that it was made with the embedder model in use.
fn open_for_model(g: &Global) -> Result<(Watchlist, Secret, ModelSpec), Fail> {
    let s = secret(g)?;
    let list = load(&g.list, &s)?;
    let (spec, model) = embedder(g)?;
    if list.model_id != model {
        return Err(WatchlistError::ModelMismatch {
            path: g.list.clone(),
            list: list.model_id,
            expected: model,
        }
        .into());
    }
    Ok((list, s, spec))
}

fn cmd_identify(g: &Global, a: IdentifyArgs) -> Result<(), Fail> {
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

fn cmd_list(g: &Global, json: bool) -> Result<(), Fail> {
    let list = load(&g.list, &secret(g)?)?;
    if !json {
        let n = list.identities.len();
        let noun = if n == 1 { "identity" } else { "identities" };
        println!("{n} {noun}, model {}", list.model_id);
    }
    for i in &list.identities {
        let expires = i.expires_at.map(fmt_time);
        if json {
            let v = serde_json::json!({
                "id": i.id, "label": i.label, "note": i.note, "added_by": i.added_by,
                "added_at": fmt_time(i.added_at), "expires_at": expires,
                "expired": i.expired(now()), "descriptors": i.descriptors.len(),
            });
            println!("{v}");
        } else {
            println!(
                "{}  {}  descriptors={}  added={} by {}  expires={}{}",
                i.id,
                i.label,
                i.descriptors.len(),
                fmt_time(i.added_at),
                i.added_by,
                expires.unwrap_or_else(|| "never".into()),
                i.note
                    .as_ref()
                    .map(|n| format!("  note={n}"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(())
}

fn cmd_remove(
    g: &Global,
    label: Option<String>,
    id: Option<String>,
    rekey: bool,
    new_passphrase_env: Option<String>,
) -> Result<(), Fail> {
    let lock = Lock::acquire(&g.list, &wait(g))?;
    let old = secret(g)?;
    let mut list = load(lock.list(), &old)?;
    let before = list.identities.len();
    let gone: Vec<audit::Event> = list
        .identities
        .iter()
        .filter(|i| label.as_ref() == Some(&i.label) || id.as_ref() == Some(&i.id))
        .map(|i| event("remove", Some((&i.id, &i.label)), None))
        .collect();
    list.identities
        .retain(|i| !(label.as_ref() == Some(&i.label) || id.as_ref() == Some(&i.id)));
    let removed = before - list.identities.len();
    if removed == 0 {
        return Err(Fail(
            9,
            format!(
                "no identity {} in {}",
                label.as_ref().or(id.as_ref()).map_or("", |s| s.as_str()),
                g.list.display()
            ),
        ));
    }
    let mut events = gone;
    if rekey {
        events.push(event("rekey", None, None));
    }
    record(g, &mut list, &events)?;
    if rekey {
        rekey_locked(g, &lock, &mut list, new_passphrase_env)?;
    } else {
        save(lock.list(), &mut list, &old)?;
    }
    println!(
        "removed {removed} identit{}",
        if removed == 1 { "y" } else { "ies" }
    );
    Ok(())
}

fn cmd_verify(g: &Global) -> Result<(), Fail> {
    let (list, s, _) = open_for_model(g)?;
    let expired = list.identities.iter().filter(|i| i.expired(now())).count();
    let how = match s {
        Secret::Plaintext => {
            "checksum matches (plaintext: NOT authenticated, anyone who can write the file can \
             change it undetected)"
        }
        _ => "authenticated with its key (not changed since it was written with this key)",
    };
    let written = match list.written_at {
        0 => "unknown (format version 1)".to_string(),
        t => fmt_time(t),
    };
    let n = list.identities.len();
    let retention = list.default_expiry.map_or("no default expiry".into(), |d| {
        format!(
            "default expiry {}",
            humantime::format_duration(Duration::from_secs(d))
        )
    });
    let head = list.audit.map_or("no audit head recorded".into(), |h| {
        format!("audit log head: entry {}", h.seq)
    });
    println!(
        "ok: {} {how}; generation {}, written {written}; {n} {} ({expired} expired), model {}; \
         {retention}; {head}",
        g.list.display(),
        list.generation,
        if n == 1 { "identity" } else { "identities" },
        list.model_id
    );
    Ok(())
}

/// Re-encrypts `list` under a new key (written to the key file) or a new passphrase, under a lock
/// already held: the new key beside the old one first, then the list under it, then the swap.
fn rekey_locked(
    g: &Global,
    lock: &Lock,
    list: &mut Watchlist,
    new_passphrase_env: Option<String>,
) -> Result<(), Fail> {
    match new_passphrase_env {
        Some(var) => save(lock.list(), list, &new_passphrase(g, &var)?)?,
        None => {
            let key = random_key()?;
            let kf = real_path(&key_file(g))?;
            let mut pending = kf.as_os_str().to_owned();
            pending.push(".new");
            let pending = PathBuf::from(pending);
            // Created afresh: a link planted under that name is replaced, not followed.
            write_pending_key(&pending, &key)?;
            save(lock.list(), list, &Secret::Key(key))?;
            std::fs::rename(&pending, &kf)
                .map_err(|e| Fail(3, format!("{}: {e}", kf.display())))?;
            println!("new key in {}", key_file(g).display());
        }
    }
    println!("re-encrypted {}", g.list.display());
    Ok(())
}

fn cmd_rekey(g: &Global, new_passphrase_env: Option<String>) -> Result<(), Fail> {
    let lock = Lock::acquire(&g.list, &wait(g))?;
    let mut list = load(lock.list(), &secret(g)?)?;
    record(g, &mut list, &[event("rekey", None, None)])?;
    rekey_locked(g, &lock, &mut list, new_passphrase_env)
}

fn cmd_purge_expired(g: &Global) -> Result<(), Fail> {
    let t = now();
    let n = update(
        &g.list,
        &wait(g),
        || secret(g),
        |list: &mut Watchlist, _| -> Result<usize, Fail> {
            let purged: Vec<audit::Event> = (list.identities.iter())
                .filter(|i| i.expired(t))
                .map(|i| {
                    let when = i.expires_at.map(fmt_time).unwrap_or_default();
                    event(
                        "purge-expired",
                        Some((&i.id, &i.label)),
                        Some(format!("expired {when}")),
                    )
                })
                .collect();
            list.identities.retain(|i| !i.expired(t));
            if !purged.is_empty() {
                record(g, list, &purged)?;
            }
            Ok(purged.len())
        },
    )?;
    println!(
        "purged {n} expired identit{}",
        if n == 1 { "y" } else { "ies" }
    );
    Ok(())
}

/// A time filter: RFC 3339, or a duration before now.
fn parse_when(s: &str) -> Result<i64, Fail> {
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return Ok(t
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64));
    }
    let d = humantime::parse_duration(s)
        .map_err(|e| Fail(2, format!("{s}: not an RFC 3339 time nor a duration ({e})")))?;
    Ok(now() - d.as_secs() as i64)
}

fn cmd_audit(g: &Global, a: AuditCommand) -> Result<(), Fail> {
    match a {
        AuditCommand::Verify { log } => {
            let log = log.unwrap_or_else(|| audit_log(g));
            // The head the list recorded, when the list opens with the key at hand.
            let recorded = match secret(g).and_then(|s| Ok(load(&g.list, &s)?)) {
                Ok(list) => Some(list.audit),
                Err(Fail(_, why)) => {
                    eprintln!(
                        "faceveil: the watch list does not open ({why}): the chain is checked, \
                         lines cut off the end are not"
                    );
                    None
                }
            };
            let v = audit::verify(&log, recorded.flatten()).map_err(|e| Fail(3, e.to_string()))?;
            if v.problems.is_empty() {
                let against = match recorded {
                    Some(Some(h)) => format!("; the watch list recorded entry {}", h.seq),
                    Some(None) => {
                        "; the watch list records no head (written before format 3)".into()
                    }
                    None => String::new(),
                };
                println!(
                    "ok: {} has {} entries, an unbroken chain{against}",
                    log.display(),
                    v.entries.len()
                );
                return Ok(());
            }
            for p in &v.problems {
                println!("{}: {p}", log.display());
            }
            Err(Fail(
                11,
                format!(
                    "{}: {} problem(s) in the audit log",
                    log.display(),
                    v.problems.len()
                ),
            ))
        }
        AuditCommand::Show {
            log,
            identity,
            since,
            until,
            json,
        } => {
            let log = log.unwrap_or_else(|| audit_log(g));
            let (since, until) = (
                since.as_deref().map(parse_when).transpose()?,
                until.as_deref().map(parse_when).transpose()?,
            );
            let v = audit::verify(&log, None).map_err(|e| Fail(3, e.to_string()))?;
            for e in &v.entries {
                let t = humantime::parse_rfc3339_weak(&e.time)
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs() as i64);
                let wanted = identity
                    .as_ref()
                    .is_none_or(|w| e.identity.as_ref() == Some(w) || e.label.as_ref() == Some(w))
                    && since.is_none_or(|s| t >= s)
                    && until.is_none_or(|u| t < u);
                if !wanted {
                    continue;
                }
                if json {
                    println!("{}", serde_json::to_string(e).expect("an entry serialises"));
                } else {
                    let who = match (&e.label, &e.identity) {
                        (Some(l), Some(i)) => format!(" {l} ({i})"),
                        _ => String::new(),
                    };
                    let detail = e
                        .detail
                        .as_ref()
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default();
                    println!(
                        "{:>5}  {}  {:<14} {}{who}{detail}",
                        e.seq, e.time, e.action, e.actor
                    );
                }
            }
            if !v.problems.is_empty() {
                eprintln!(
                    "warning: the audit log has {} problem(s): run 'faceveil audit verify'",
                    v.problems.len()
                );
            }
            Ok(())
        }
    }
}

fn run(cli: Cli) -> Result<(), Fail> {
    let g = &cli.global;
    match cli.command {
        Command::Init {
            force,
            default_expiry,
        } => cmd_init(g, force, default_expiry),
        Command::Enroll(a) => cmd_enroll(g, a),
        Command::Identify(a) => cmd_identify(g, a),
        Command::List { json } => cmd_list(g, json),
        Command::Remove {
            label,
            id,
            rekey,
            new_passphrase_env,
        } => cmd_remove(g, label, id, rekey, new_passphrase_env),
        Command::Verify => cmd_verify(g),
        Command::Rekey { new_passphrase_env } => cmd_rekey(g, new_passphrase_env),
        Command::PurgeExpired => cmd_purge_expired(g),
        Command::Audit(a) => cmd_audit(g, a),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "faceveil",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    // Before any thread exists (ONNX Runtime is loaded later, by the elements).
    gstfaceveil::engine::runtime::disable_telemetry();
    let cli = Cli::parse();
    if let Err(e) = gst::init()
        .map_err(|e| e.to_string())
        .and_then(|_| gstfaceveil::plugin_register_static().map_err(|e| e.to_string()))
    {
        eprintln!("faceveil: GStreamer: {e}");
        return ExitCode::from(1);
    }
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Fail(code, msg)) => {
            eprintln!("faceveil: {msg}");
            ExitCode::from(code as u8)
        }
    }
}
