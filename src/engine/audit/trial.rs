// SPDX-License-Identifier: MIT
//! The match entries of a matches log, live and trial, and the summary of the trial ones per person
//! and camera (`faceveil audit show --trial`): how often a camera in trial mode would have alerted
//! on each listed person, when first and last, and at what scores.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Entry;

/// The action of a match that was reported (a `faceveil-match` message was posted).
pub const MATCH: &str = "match";
/// The action of a match decided in trial mode: logged, not reported.
pub const TRIAL_MATCH: &str = "trial-match";

/// The start of a match entry's detail: its score. What the match rests on follows, after `; `
/// (`engine::match_step::match_detail`).
pub fn score_detail(score: f32) -> String {
    format!("score {score:.3}")
}

/// The score in a match entry's detail ([`score_detail`], alone or followed by the rest of the
/// explanation).
pub fn parse_score(detail: &str) -> Option<f32> {
    let first = detail.split(';').next()?;
    first.strip_prefix("score ")?.trim().parse().ok()
}

/// One person on one camera.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrialRow {
    /// The label of the person's latest trial match.
    pub label: String,
    pub identity: String,
    pub camera: String,
    pub count: u64,
    /// The times (RFC 3339 UTC) of the earliest and the latest trial match.
    pub first: String,
    pub last: String,
    /// The lowest and highest score (`None`: no entry held a readable score).
    pub min_score: Option<f32>,
    pub max_score: Option<f32>,
}

/// The trial matches of a log, per person (identity id) and camera.
#[derive(Debug, Default)]
pub struct TrialSummary {
    rows: BTreeMap<(String, String), TrialRow>,
}

impl TrialSummary {
    /// Counts `e` if it is a trial match by a camera (`camera:<id>`) of an identity; returns
    /// whether it was.
    pub fn add(&mut self, e: &Entry) -> bool {
        let (Some(camera), Some(identity)) = (e.actor.strip_prefix("camera:"), &e.identity) else {
            return false;
        };
        if e.action != TRIAL_MATCH {
            return false;
        }
        let label = e.label.clone().unwrap_or_default();
        let score = e.detail.as_deref().and_then(parse_score);
        let row = self
            .rows
            .entry((identity.clone(), camera.to_string()))
            .or_insert_with(|| TrialRow {
                label: label.clone(),
                identity: identity.clone(),
                camera: camera.to_string(),
                count: 0,
                first: e.time.clone(),
                last: e.time.clone(),
                min_score: None,
                max_score: None,
            });
        row.count += 1;
        // The times are all RFC 3339 UTC seconds: as strings they sort as times.
        if e.time < row.first {
            row.first = e.time.clone();
        }
        if e.time >= row.last {
            row.last = e.time.clone();
            row.label = label;
        }
        if let Some(s) = score {
            row.min_score = Some(row.min_score.map_or(s, |m| m.min(s)));
            row.max_score = Some(row.max_score.map_or(s, |m| m.max(s)));
        }
        true
    }

    /// The rows by label, then camera.
    pub fn rows(&self) -> Vec<&TrialRow> {
        let mut v: Vec<&TrialRow> = self.rows.values().collect();
        v.sort_by(|a, b| {
            (&a.label, &a.camera, &a.identity).cmp(&(&b.label, &b.camera, &b.identity))
        });
        v
    }

    /// Trial matches counted.
    pub fn total(&self) -> u64 {
        self.rows.values().map(|r| r.count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str, actor: &str, who: Option<&str>, time: &str, score: f32) -> Entry {
        Entry {
            seq: 1,
            time: time.into(),
            actor: actor.into(),
            action: action.into(),
            identity: who.map(|w| format!("id-{w}")),
            label: who.map(String::from),
            detail: Some(score_detail(score)),
            prev: String::new(),
        }
    }

    #[test]
    fn trial_matches_are_summed_per_person_and_camera() {
        let mut s = TrialSummary::default();
        let t = |h: u32| format!("2026-01-0{h}T10:00:00Z");
        let counted: Vec<bool> = [
            entry(TRIAL_MATCH, "camera:door", Some("ann"), &t(3), 0.71),
            entry(TRIAL_MATCH, "camera:door", Some("ann"), &t(1), 0.90),
            entry(TRIAL_MATCH, "camera:door", Some("ann"), &t(2), 0.65),
            entry(TRIAL_MATCH, "camera:lobby", Some("ann"), &t(4), 0.80),
            entry(TRIAL_MATCH, "camera:door", Some("bob"), &t(5), 0.70),
            // not trial matches: live ones, other actions, other actors
            entry(MATCH, "camera:door", Some("ann"), &t(6), 0.99),
            entry("enroll", "root", Some("ann"), &t(6), 0.99),
            entry(TRIAL_MATCH, "root", Some("ann"), &t(6), 0.99),
            entry(TRIAL_MATCH, "camera:door", None, &t(6), 0.99),
        ]
        .iter()
        .map(|e| s.add(e))
        .collect();
        assert_eq!(
            counted,
            [true, true, true, true, true, false, false, false, false]
        );
        assert_eq!(s.total(), 5);
        let rows = s.rows();
        let got: Vec<(&str, &str, u64)> = rows
            .iter()
            .map(|r| (r.label.as_str(), r.camera.as_str(), r.count))
            .collect();
        assert_eq!(
            got,
            [("ann", "door", 3), ("ann", "lobby", 1), ("bob", "door", 1)]
        );
        let door = rows[0];
        assert_eq!((door.first.as_str(), door.last.as_str()), (&*t(1), &*t(3)));
        assert_eq!((door.min_score, door.max_score), (Some(0.65), Some(0.9)));
        assert_eq!(door.identity, "id-ann");
    }

    #[test]
    fn a_renamed_person_is_one_row_under_the_latest_label() {
        let mut s = TrialSummary::default();
        let mut later = entry(
            TRIAL_MATCH,
            "camera:door",
            Some("ann"),
            "2026-01-02T00:00:00Z",
            0.7,
        );
        later.label = Some("ann b.".into());
        s.add(&later);
        s.add(&entry(
            TRIAL_MATCH,
            "camera:door",
            Some("ann"),
            "2026-01-01T00:00:00Z",
            0.7,
        ));
        let rows = s.rows();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].label.as_str(), rows[0].count), ("ann b.", 2));
    }

    #[test]
    fn scores_round_trip_and_a_bad_detail_has_none() {
        assert_eq!(parse_score(&score_detail(0.81234)), Some(0.812));
        let explained = format!(
            "{}; reference 1 of 2; hits 0.700, 0.812",
            score_detail(0.81234)
        );
        assert_eq!(parse_score(&explained), Some(0.812));
        assert_eq!(parse_score("3 descriptors"), None);
        let mut s = TrialSummary::default();
        let mut e = entry(
            TRIAL_MATCH,
            "camera:door",
            Some("ann"),
            "2026-01-01T00:00:00Z",
            0.0,
        );
        e.detail = None;
        assert!(s.add(&e));
        assert_eq!(s.rows()[0].min_score, None);
    }
}
