// SPDX-License-Identifier: MIT
//! `faceveil audit verify` and `faceveil audit show`: the audit log's chain, and its entries.

use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use clap::Subcommand;
use gstfaceveil::engine::audit;
use gstfaceveil::engine::watchlist::now;
use gstfaceveil::engine::watchlist::store::load;

use crate::Global;
use crate::shared::{Fail, audit_log, secret};

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
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

pub(crate) fn cmd_audit(g: &Global, a: AuditCommand) -> Result<(), Fail> {
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
