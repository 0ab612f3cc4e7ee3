// SPDX-License-Identifier: MIT
//! `export --identity ID|LABEL`: everything held about one person, for an access request, as one
//! JSON document: their list entry (the number of descriptors and their models, never their
//! values), the audit-log entries about them (the list's log and its earlier segments), and their
//! matches in the runner's events files given. The export itself is audited before anything is
//! shown.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use clap::Args;
use gstfaceveil::engine::audit;
use gstfaceveil::engine::watchlist::{Identity, now};

use crate::Global;
use crate::shared::{Fail, audit_log, change_locked, event, find_identity, fmt_time};

#[derive(Args)]
pub(crate) struct ExportArgs {
    /// The person: their identity id, or their label
    #[arg(long, value_name = "ID|LABEL")]
    identity: String,
    /// An events file of faceveil-nvr (JSON lines) to take their matches from; may be repeated
    /// (e.g. rotated files)
    #[arg(long, value_name = "FILE")]
    events: Vec<PathBuf>,
    /// Write the document to this new file (mode 0600; an existing file is not overwritten)
    /// [default: standard output]
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// The entry as exported: what `list --json` shows, and the descriptors' count and models.
fn entry_json(i: &Identity) -> serde_json::Value {
    let mut models: Vec<&str> = Vec::new();
    for d in &i.descriptors {
        if !models.contains(&d.model_id.as_str()) {
            models.push(&d.model_id);
        }
    }
    serde_json::json!({
        "id": i.id, "label": i.label, "note": i.note, "added_by": i.added_by,
        "added_at": fmt_time(i.added_at), "expires_at": i.expires_at.map(fmt_time),
        "expired": i.expired(now()), "suspended": i.suspended, "role": i.role.name(),
        "descriptors": { "count": i.descriptors.len(), "models": models },
    })
}

/// The events of `files` about identity `id` (their `identity-id`), in file order.
fn matches_in(files: &[PathBuf], id: &str) -> Result<Vec<serde_json::Value>, Fail> {
    let mut found = Vec::new();
    for f in files {
        let io = |e: std::io::Error| Fail(3, format!("events file {}: {e}", f.display()));
        let r = BufReader::new(std::fs::File::open(f).map_err(io)?);
        for line in r.split(b'\n') {
            let line = line.map_err(io)?;
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line) else {
                continue;
            };
            if v.get("identity-id").and_then(|x| x.as_str()) == Some(id) {
                found.push(v);
            }
        }
    }
    Ok(found)
}

/// A new file for the document, mode 0600: never one that exists.
fn create_new(path: &Path) -> Result<std::fs::File, Fail> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            let why = if e.kind() == std::io::ErrorKind::AlreadyExists {
                "exists; not overwritten".into()
            } else {
                e.to_string()
            };
            Fail(3, format!("{}: {why}", path.display()))
        })
}

pub(crate) fn cmd_export(g: &Global, a: ExportArgs) -> Result<(), Fail> {
    let file = a.output.as_deref().map(create_new).transpose()?;
    let written = export(g, &a).and_then(|doc| {
        let text = serde_json::to_string_pretty(&doc).map_err(|e| Fail(1, e.to_string()))?;
        match (file, &a.output) {
            (Some(mut f), Some(p)) => writeln!(f, "{text}")
                .and_then(|_| f.sync_all())
                .map_err(|e| Fail(3, format!("{}: {e}", p.display()))),
            _ => {
                println!("{text}");
                Ok(())
            }
        }
    });
    if written.is_err()
        && let Some(p) = &a.output
    {
        let _ = std::fs::remove_file(p);
    }
    written
}

/// The document. The export is recorded first (under the list's lock, before anything is read
/// out), so the audit entries shown end with it.
fn export(g: &Global, a: &ExportArgs) -> Result<serde_json::Value, Fail> {
    let to = a
        .output
        .as_ref()
        .map_or("standard output".into(), |p| p.display().to_string());
    let ((entry, id, label), matches) = change_locked(g, |list| {
        let i = &list.identities[find_identity(g, list, &a.identity)?];
        let matches = matches_in(&a.events, &i.id)?;
        let files: Vec<String> = a.events.iter().map(|f| f.display().to_string()).collect();
        let detail = format!(
            "to {to}; {} match(es) from {} events file(s){}",
            matches.len(),
            files.len(),
            if files.is_empty() {
                String::new()
            } else {
                format!(": {}", files.join(", "))
            }
        );
        let e = event("export", Some((&i.id, &i.label)), Some(detail));
        let who = (entry_json(i), i.id.clone(), i.label.clone());
        Ok(((who, matches), vec![e]))
    })?;
    let entries =
        audit::entries_about(&audit_log(g), &id, &label).map_err(|e| Fail(3, e.to_string()))?;
    Ok(serde_json::json!({
        "exported_at": fmt_time(now()),
        "list": g.list.display().to_string(),
        "identity": entry,
        "audit": entries,
        "matches": matches,
    }))
}
