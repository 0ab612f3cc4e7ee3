// SPDX-License-Identifier: MIT
//! `faceveil audit verify`, `show` and `anchor`: the audit log's chain, its entries, and the heads
//! of a matches log recorded in the list's own log. Logs are read as streams of bounded lines.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use clap::Subcommand;
use gstfaceveil::engine::audit::{self, Anchor, Entry, Head, TrialSummary, Verified};
use gstfaceveil::engine::watchlist::now;
use gstfaceveil::engine::watchlist::store::{load, real_path};

use crate::Global;
use crate::shared::{BY_LIST, Fail, audit_log, event, record_locked, secret};

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Check that no line was edited, deleted, inserted or reordered, and that no line was cut off
    /// the end (the list's head, a log's .head file, the anchors); exit code 11 when the log fails
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
        /// The entries as they are stored (JSON lines); with --trial, the summary's rows
        #[arg(long)]
        json: bool,
        /// A summary of the trial matches (cameras in trial mode) per person and camera: how many,
        /// first and last time, lowest and highest score
        #[arg(long)]
        trial: bool,
    },
    /// Verify another log (e.g. the service's matches log) and record its head in the list's audit
    /// log, where the service cannot change it; 'audit verify LOG' then checks every anchored head
    Anchor {
        /// The log to anchor
        log: PathBuf,
    },
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

fn audit_io(e: audit::AuditError) -> Fail {
    Fail(3, e.to_string())
}

fn real(p: &Path) -> PathBuf {
    real_path(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The detail of an `anchor` entry: `entry N sha256 HEX segment HEX of PATH`.
fn anchor_detail(head: Head, segment: &[u8; 32], log: &Path) -> String {
    format!(
        "{head} segment {} of {}",
        audit::hex(segment),
        log.display()
    )
}

/// Reads back [`anchor_detail`]: the head, its segment and the log.
fn parse_anchor(detail: &str) -> Option<(Head, [u8; 32], PathBuf)> {
    let w: Vec<&str> = detail.splitn(7, ' ').collect();
    let [e, n, s, h, "segment", seg, of_path] = w[..] else {
        return None;
    };
    let head = Head::parse(&format!("{e} {n} {s} {h}"))?;
    Some((
        head,
        audit::unhex(seg)?,
        PathBuf::from(of_path.strip_prefix("of ")?),
    ))
}

/// The heads of `log` anchored in the list's own log (which must verify against the list's
/// head: else its anchors are not to be trusted, and that is a problem of `log` too).
fn anchors_in_list_log(
    g: &Global,
    recorded: Option<Head>,
    log: &Path,
    problems: &mut Vec<String>,
) -> Result<Vec<Anchor>, Fail> {
    let list_log = audit_log(g);
    let target = real(log);
    let mut anchors = Vec::new();
    let own: Vec<Anchor> = recorded
        .map(|head| Anchor {
            by: BY_LIST.into(),
            head,
            segment: None,
        })
        .into_iter()
        .collect();
    let v = match audit::verify(&list_log, &own, |e| {
        if e.action != "anchor" {
            return;
        }
        if let Some((head, segment, path)) = e.detail.as_deref().and_then(parse_anchor)
            && path == target
        {
            anchors.push(Anchor {
                by: format!(
                    "the anchor of {} (entry {} of the list's log)",
                    e.time, e.seq
                ),
                head,
                segment: Some(segment),
            });
        }
    }) {
        Ok(v) => v,
        Err(audit::AuditError::Io { .. }) if !list_log.exists() => return Ok(Vec::new()),
        Err(e) => return Err(audit_io(e)),
    };
    if v.n_problems > 0 {
        problems.push(format!(
            "{}: the list's audit log fails verification, so its anchors cannot be trusted: \
             run 'faceveil audit verify'",
            list_log.display()
        ));
    }
    Ok(anchors)
}

/// Verifies `log` against `anchors`, and the anchors of earlier segments against the old logs the
/// new logs' first lines name: each problem as a line `LOG: problem`.
fn verify_segments(
    log: &Path,
    anchors: &[Anchor],
    problems: &mut Vec<String>,
) -> Result<Verified, Fail> {
    let v = audit::verify(log, anchors, |_| {}).map_err(audit_io)?;
    for p in &v.problems {
        problems.push(format!("{}: {p}", log.display()));
    }
    if v.n_problems > v.problems.len() as u64 {
        problems.push(format!(
            "{}: and {} more problems",
            log.display(),
            v.n_problems - v.problems.len() as u64
        ));
    }
    let mut older = v.other_segments.clone();
    let mut first = v.first.clone().map(|f| f.0);
    let mut depth = 0;
    while !older.is_empty() {
        let old = first
            .as_ref()
            .filter(|e: &&Entry| matches!(e.action.as_str(), "new-segment" | "new-audit-log"))
            .and_then(|e| e.detail.as_deref().and_then(audit::renamed_to));
        let Some(old) = old.filter(|_| depth < 64) else {
            for a in &older {
                problems.push(format!(
                    "{}: entry {} that {} recorded is in no segment of this log: the log was \
                     replaced",
                    log.display(),
                    a.head.seq,
                    a.by
                ));
            }
            break;
        };
        let o = match audit::verify(&old, &older, |_| {}) {
            Ok(o) => o,
            Err(e) => {
                problems.push(format!(
                    "{}: the earlier segment it names, {}, holds anchored entries but cannot be \
                     read: {e}",
                    log.display(),
                    old.display()
                ));
                break;
            }
        };
        for p in &o.problems {
            problems.push(format!("{}: {p}", old.display()));
        }
        (older, first, depth) = (o.other_segments, o.first.map(|f| f.0), depth + 1);
    }
    Ok(v)
}

/// Verifies `log` with every head it must hold: the list's (for the list's own log, when the list
/// opens), its `.head` file's, and those anchored in the list's log.
fn verify_log(g: &Global, log: &Path, problems: &mut Vec<String>) -> Result<Verified, Fail> {
    let is_list_log = real(log) == real(&audit_log(g));
    let list = secret(g).and_then(|s| Ok(load(&g.list, &s)?));
    let mut anchors = Vec::new();
    match &list {
        Ok(l) if is_list_log => anchors.extend(l.audit.map(|head| Anchor {
            by: BY_LIST.into(),
            head,
            segment: None,
        })),
        Ok(l) => anchors.extend(anchors_in_list_log(g, l.audit, log, problems)?),
        Err(Fail(_, why)) => eprintln!(
            "faceveil: the watch list does not open ({why}): the chain is checked, lines cut off \
             the end are not{}",
            if is_list_log {
                ""
            } else {
                " (but for the .head file)"
            }
        ),
    }
    if let Some(head) = audit::read_head_file(log).map_err(audit_io)? {
        anchors.push(Anchor {
            by: "its .head file".into(),
            head,
            segment: None,
        });
    }
    let v = verify_segments(log, &anchors, problems)?;
    if problems.is_empty() {
        let against = match &list {
            Ok(l) if is_list_log => match l.audit {
                Some(h) => format!("; the watch list recorded entry {}", h.seq),
                None => "; the watch list records no head (written before format 3)".into(),
            },
            _ => format!("; {} recorded head(s) found in it", anchors.len()),
        };
        println!(
            "ok: {} has {} entries, an unbroken chain{against}",
            log.display(),
            v.entries
        );
    }
    Ok(v)
}

fn fail_verify(log: &Path, problems: &[String]) -> Fail {
    for p in problems {
        println!("{p}");
    }
    Fail(
        11,
        format!(
            "{}: {} problem(s) in the audit log",
            log.display(),
            problems.len()
        ),
    )
}

pub(crate) fn cmd_audit(g: &Global, a: AuditCommand) -> Result<(), Fail> {
    match a {
        AuditCommand::Verify { log } => {
            let log = log.unwrap_or_else(|| audit_log(g));
            let mut problems = Vec::new();
            verify_log(g, &log, &mut problems)?;
            if problems.is_empty() {
                Ok(())
            } else {
                Err(fail_verify(&log, &problems))
            }
        }
        AuditCommand::Anchor { log } => {
            let log = real(&log);
            if log == real(&audit_log(g)) {
                return Err(Fail(
                    2,
                    format!(
                        "{} is the list's own audit log: the list records its head at each write",
                        log.display()
                    ),
                ));
            }
            let mut problems = Vec::new();
            let v = verify_log(g, &log, &mut problems)?;
            if !problems.is_empty() {
                let f = fail_verify(&log, &problems);
                return Err(Fail(f.0, format!("{}; not anchored", f.1)));
            }
            let Some((_, segment)) = v.first else {
                return Err(Fail(
                    1,
                    format!("{}: an empty log; nothing to anchor", log.display()),
                ));
            };
            let detail = anchor_detail(v.head, &segment, &log);
            record_locked(g, |_| vec![event("anchor", None, Some(detail))])?;
            println!("anchored {}: {}", log.display(), v.head);
            Ok(())
        }
        AuditCommand::Show {
            log,
            identity,
            since,
            until,
            json,
            trial,
        } => {
            let log = log.unwrap_or_else(|| audit_log(g));
            let filter = Filter {
                identity,
                since: since.as_deref().map(parse_when).transpose()?,
                until: until.as_deref().map(parse_when).transpose()?,
            };
            let mut summary = TrialSummary::default();
            let v = audit::verify(&log, &[], |e| {
                if !filter.keeps(e) {
                    return;
                }
                if trial {
                    summary.add(e);
                } else {
                    show(e, json);
                }
            })
            .map_err(audit_io)?;
            if trial {
                show_trial(&summary, &log, json);
            }
            if v.n_problems > 0 {
                eprintln!(
                    "warning: the audit log has {} problem(s): run 'faceveil audit verify'",
                    v.n_problems
                );
            }
            Ok(())
        }
    }
}

/// `audit show`'s filters.
struct Filter {
    /// An identity id or label.
    identity: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
}

impl Filter {
    fn keeps(&self, e: &Entry) -> bool {
        let t = humantime::parse_rfc3339_weak(&e.time)
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs() as i64);
        self.identity
            .as_ref()
            .is_none_or(|w| e.identity.as_ref() == Some(w) || e.label.as_ref() == Some(w))
            && self.since.is_none_or(|s| t >= s)
            && self.until.is_none_or(|u| t < u)
    }
}

/// The trial summary: a table (or JSON lines), a row per person and camera.
fn show_trial(summary: &TrialSummary, log: &Path, json: bool) {
    let rows = summary.rows();
    if json {
        for r in rows {
            if let Ok(s) = serde_json::to_string(r) {
                println!("{s}");
            }
        }
        return;
    }
    if rows.is_empty() {
        println!("no trial matches in {}", log.display());
        return;
    }
    let width = |f: fn(&audit::TrialRow) -> usize, title: &str| {
        rows.iter()
            .map(|r| f(r))
            .max()
            .unwrap_or(0)
            .max(title.len())
    };
    let (lw, cw) = (
        width(|r| r.label.chars().count(), "LABEL"),
        width(|r| r.camera.chars().count(), "CAMERA"),
    );
    println!(
        "{:<lw$}  {:<cw$}  {:>7}  {:<20}  {:<20}  SCORES",
        "LABEL", "CAMERA", "MATCHES", "FIRST", "LAST"
    );
    for r in &rows {
        let scores = match (r.min_score, r.max_score) {
            (Some(a), Some(b)) => format!("{a:.3}-{b:.3}"),
            _ => "-".into(),
        };
        println!(
            "{:<lw$}  {:<cw$}  {:>7}  {:<20}  {:<20}  {scores}",
            r.label, r.camera, r.count, r.first, r.last
        );
    }
    println!(
        "{} trial match(es) of {} person(s) in {}",
        summary.total(),
        rows.iter()
            .map(|r| &r.identity)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        log.display()
    );
}

/// Prints `e`.
fn show(e: &Entry, json: bool) {
    if json {
        if let Ok(s) = serde_json::to_string(e) {
            println!("{s}");
        }
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
