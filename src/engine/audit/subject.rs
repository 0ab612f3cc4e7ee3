// SPDX-License-Identifier: MIT
//! What an audit log holds about one person, for an access request (`faceveil export`): the
//! entries that name their identity id, and those that name only labels (an `identify` run's
//! matched labels, in its `identify-end` entry) when the label was theirs at the time, as the log's own lines tell.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{AuditError, Entry, renamed_to, verify};

/// How an `identify` entry's detail names the labels that matched: `…; matched: a, b`.
pub const MATCHED: &str = "; matched: ";

/// The labels an `identify` entry's detail names (after [`MATCHED`], separated by `, `), and the
/// whole remainder too (a label that holds `, ` itself).
fn matched_labels(detail: &str) -> Vec<&str> {
    let Some(i) = detail.rfind(MATCHED) else {
        return Vec::new();
    };
    let rest = &detail[i + MATCHED.len()..];
    let mut labels: Vec<&str> = rest.split(", ").collect();
    if labels.len() > 1 {
        labels.push(rest);
    }
    labels
}

/// One person, followed through a log read in order (oldest segment first).
#[derive(Debug)]
pub struct Subject {
    id: String,
    label: String,
    /// Which identity id each label belonged to, as the entries read so far say.
    owners: HashMap<String, String>,
}

impl Subject {
    /// The person with identity `id`, now labelled `label`.
    pub fn new(id: &str, label: &str) -> Subject {
        Subject {
            id: id.into(),
            label: label.into(),
            owners: HashMap::new(),
        }
    }

    /// Whether `e`, the next entry in log order, concerns the person: it names their id, or it
    /// names no id but a label that was theirs then (a label the log has not yet seen given to
    /// anyone counts as theirs when it is their label now).
    pub fn concerns(&mut self, e: &Entry) -> bool {
        if let (Some(id), Some(label)) = (&e.identity, &e.label) {
            if matches!(e.action.as_str(), "remove" | "purge-expired") {
                self.owners.remove(label);
            } else {
                self.owners.insert(label.clone(), id.clone());
            }
        }
        if let Some(id) = &e.identity {
            return *id == self.id;
        }
        let mut named: Vec<&str> = e.label.as_deref().into_iter().collect();
        if e.action == "identify-end" {
            named.extend(e.detail.as_deref().map(matched_labels).unwrap_or_default());
        }
        named.into_iter().any(|l| self.was_theirs(l))
    }

    fn was_theirs(&self, label: &str) -> bool {
        match self.owners.get(label) {
            Some(owner) => *owner == self.id,
            None => label == self.label,
        }
    }
}

/// Most earlier segments followed back from a log.
const MAX_SEGMENTS: usize = 64;

/// `log` and the earlier segments its first lines name (a new log started after a gap, or by
/// `--new-audit-log`, names the file the old one was renamed to), oldest first. A segment that
/// cannot be read ends the chain there.
pub fn segments(log: &Path) -> Result<Vec<PathBuf>, AuditError> {
    let mut chain = vec![log.to_path_buf()];
    let mut first = verify(log, &[], |_| {})?.first.map(|f| f.0);
    while chain.len() <= MAX_SEGMENTS {
        let older = first
            .as_ref()
            .filter(|e| matches!(e.action.as_str(), "new-segment" | "new-audit-log"))
            .and_then(|e| e.detail.as_deref().and_then(renamed_to));
        let Some(older) = older.filter(|o| !chain.contains(o)) else {
            break;
        };
        let Ok(v) = verify(&older, &[], |_| {}) else {
            break;
        };
        chain.push(older);
        first = v.first.map(|f| f.0);
    }
    chain.reverse();
    Ok(chain)
}

/// Every entry of `log` and its earlier segments ([`segments`]) that concerns identity `id`, now
/// labelled `label` ([`Subject::concerns`]), oldest first. A missing log holds none.
pub fn entries_about(log: &Path, id: &str, label: &str) -> Result<Vec<Entry>, AuditError> {
    if !log.exists() {
        return Ok(Vec::new());
    }
    let mut subject = Subject::new(id, label);
    let mut found = Vec::new();
    for segment in segments(log)? {
        verify(&segment, &[], |e| {
            if subject.concerns(e) {
                found.push(e.clone());
            }
        })?;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::audit::{Event, append, segment_detail, start_new};

    fn entry(action: &str, id: Option<&str>, label: Option<&str>, detail: Option<&str>) -> Entry {
        Entry {
            seq: 1,
            time: "2025-01-01T00:00:00Z".into(),
            actor: "t".into(),
            action: action.into(),
            identity: id.map(Into::into),
            label: label.map(Into::into),
            detail: detail.map(Into::into),
            prev: String::new(),
        }
    }

    #[test]
    fn by_id_and_by_the_label_that_was_theirs_then() {
        let mut s = Subject::new("id1", "barack");
        let identify = |labels: &str| {
            entry(
                "identify-end",
                None,
                None,
                Some(&format!(
                    "of entry 3: 1 frame(s), 1 matched face(s){MATCHED}{labels}"
                )),
            )
        };
        let log = [
            // before the log saw anyone labelled obama, and it is not their label now
            (identify("obama"), false),
            (entry("init", None, None, Some("no default expiry")), false),
            (entry("enroll", Some("id1"), Some("obama"), None), true),
            (entry("enroll", Some("id2"), Some("joe"), None), false),
            (identify("joe, obama"), true),
            (identify("joe"), false),
            (entry("match", Some("id1"), Some("obama"), None), true),
            (entry("edit", Some("id1"), Some("barack"), None), true),
            (identify("barack"), true),
            (entry("remove", Some("id2"), Some("joe"), None), false),
            // someone else takes the old label: their matches are not this person's
            (entry("enroll", Some("id3"), Some("obama"), None), false),
            (identify("obama"), false),
            (entry("match", Some("id3"), Some("obama"), None), false),
        ];
        let got: Vec<bool> = log.iter().map(|(e, _)| s.concerns(e)).collect();
        let want: Vec<bool> = log.iter().map(|(_, w)| *w).collect();
        assert_eq!(got, want);
        // A label the log never saw given is theirs when it is their label now.
        let mut s = Subject::new("id1", "barack");
        assert!(s.concerns(&identify("barack")));
        assert!(s.concerns(&identify("x, y, barack")));
    }

    #[test]
    fn a_label_with_a_comma_is_still_found() {
        let mut s = Subject::new("id1", "Doe, Jane");
        let e = entry(
            "identify-end",
            None,
            None,
            Some(&format!("f{MATCHED}Doe, Jane")),
        );
        assert!(s.concerns(&e));
        assert!(!s.concerns(&entry("identify-end", None, None, Some("f: 0 frame(s)"))));
        // The entry before the search names files, never a label.
        assert!(!s.concerns(&entry(
            "identify",
            None,
            None,
            Some(&format!("f{MATCHED}Doe, Jane"))
        )));
    }

    #[test]
    fn earlier_segments_are_read_first() {
        let d = std::env::temp_dir().join(format!("faceveil-subject-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let log = d.join("w.audit");
        let ev = |action: &str, id: &str, label: &str| Event {
            actor: "t".into(),
            action: action.into(),
            identity: Some(id.into()),
            label: Some(label.into()),
            detail: None,
        };
        append(&log, &[ev("enroll", "id1", "obama")], 0).unwrap();
        append(&log, &[ev("enroll", "id2", "joe")], 0).unwrap();
        let first = |aside: Option<&Path>, _| Event {
            actor: "t".into(),
            action: "new-audit-log".into(),
            detail: Some(segment_detail("started", aside)),
            ..Event::default()
        };
        let (_, aside) = start_new(&log, first, &[ev("match", "id1", "obama")], 0).unwrap();
        assert!(aside.is_some());
        let chain = segments(&log).unwrap();
        assert_eq!(chain, vec![aside.unwrap(), log.clone()]);
        let found = entries_about(&log, "id1", "obama").unwrap();
        let actions: Vec<&str> = found.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["enroll", "match"]);
        assert!(
            entries_about(&d.join("none.audit"), "id1", "x")
                .unwrap()
                .is_empty()
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
