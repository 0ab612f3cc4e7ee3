// SPDX-License-Identifier: MIT
//! The matcher's decisions along tracks, GStreamer-free: when a face counts as a match, when to
//! alert, when to call a track unknown.
//!
//! - Only fresh descriptors count (a descriptor reused from the track is not new evidence).
//! - A fresh descriptor whose best listed identity scores ≥ `threshold` is a hit for that identity,
//!   unless it is too close to another listed one (`min_margin`) or to a known person
//!   (`known_margin`): see [`decide`]. Known people are never a hit.
//! - A track's aggregate: the quality-weighted mean of its fresh descriptors within the last
//!   `hit_window` frames, re-normalised, one for colour faces and one for grayscale ones (decided at
//!   `threshold_gray`); a frame's fresh descriptor updates and decides the one of its mode, searched
//!   in the list like a descriptor.
//! - A track is matched to an identity once it has `min_hits` hits for it within the last
//!   `hit_window` frames and its aggregate, of at least `min_hits` descriptors, is a hit for it too;
//!   from then on its faces carry the identity.
//! - An alert (`faceveil-match`) goes out when a track becomes matched, unless the same identity was
//!   alerted less than `cooldown` seconds before on this camera: one alert per visit.
//! - A matched track loses its identity at the first fresh descriptor that is not a hit for it (a
//!   scene cut or a tracker swap may have put someone else in the track; for redaction, wrongly
//!   keeping a name is worse than dropping it for a frame); its aggregate then starts over from that
//!   descriptor.
//! - A fresh descriptor that differs from the track's previous one by more than same-person
//!   variation (similarity under `threshold - 0.15`) means someone else now fills the track (a cut
//!   in the video, a tracker swap): the track starts over as a new subject.
//! - A matched track is *verified* on a frame when that frame's fresh descriptor is a hit for its
//!   identity ([`Matcher::verified`]): redaction that spares listed people trusts only that.
//! - With `report_unknown`, a subject (a track, or its new subject after a change) with `min_hits`
//!   fresh descriptors and no match is reported once.

use std::collections::HashMap;

use crate::engine::cosine::Similarity;
use crate::engine::watchlist::index::Index;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Config {
    pub threshold: f32,
    /// The threshold for descriptors of grayscale faces (their impostor scores run higher).
    pub threshold_gray: f32,
    /// Lead over the second-best identity a hit needs (see [`decide`]).
    pub min_margin: f32,
    /// Lead over the best known person a hit needs (see [`decide`]).
    pub known_margin: f32,
    pub min_hits: u32,
    pub hit_window: u64,
    /// Seconds.
    pub cooldown: f64,
    pub report_unknown: bool,
}

/// The lead over the best known person a hit needs by default (`veilmatch known-margin`,
/// `faceveil identify --known-margin`).
pub const KNOWN_MARGIN: f32 = 0.05;

/// How far below the match threshold a track's consecutive fresh descriptors may fall before the
/// track is taken to hold someone else.
pub const CONTINUITY_SLACK: f32 = 0.15;

/// A descriptor computed on this frame and what the watch list says about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Fresh {
    /// Prepared (centred, L2-normalised) descriptor.
    pub descriptor: Vec<f32>,
    /// Of a grayscale face: decided at `threshold_gray`.
    pub grayscale: bool,
    /// The face's quality on this frame, as the embedder scored it (0..1).
    pub quality: f32,
    /// The best identity, if the list has any.
    pub candidate: Option<Candidate>,
}

impl Fresh {
    /// A raw descriptor from the embedder, of a face of `quality`, prepared with the list's
    /// similarity and searched in the list as of `now` (unix seconds).
    pub fn search(
        index: &Index,
        similarity: &Similarity,
        descriptor: &[f32],
        (grayscale, quality): (bool, f32),
        now: i64,
    ) -> Fresh {
        let descriptor = similarity.prepare(descriptor);
        let candidate = candidate(index, &descriptor, now);
        Fresh {
            descriptor,
            grayscale,
            quality,
            candidate,
        }
    }

    /// What the descriptor amounts to under `config` ([`decide`], at the threshold of its kind of
    /// face); `None` when the list has no listed identity to compare it with.
    pub fn decision(&self, config: &Config) -> Option<Decision> {
        let threshold = match self.grayscale {
            true => config.threshold_gray,
            false => config.threshold,
        };
        (self.candidate.as_ref()).map(|c| c.decide(threshold, config))
    }
}

/// The best identity on the list for a prepared descriptor (a fresh one, or a track's aggregate),
/// as of `now` (unix seconds).
pub fn candidate(index: &Index, prepared: &[f32], now: i64) -> Option<Candidate> {
    index.search(prepared, now).map(|h| {
        let entry = &index.entries()[h.identity];
        Candidate {
            identity_id: entry.id.clone(),
            label: entry.label.clone(),
            score: h.score,
            margin: h.margin,
            reference: h.reference,
            references: h.references,
            known: h.known.map(|k| k.score),
        }
    })
}

/// What one fresh descriptor's best identity amounts to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Scores at least the threshold and leads the runner-up by at least the margin.
    Match,
    /// Under the threshold.
    NoMatch,
    /// At or over the threshold, but too close to another identity to tell them apart.
    Ambiguous,
    /// At or over the threshold and clear of the other listed identities, but a known person
    /// scores as high, or within the known margin: held back, never an alert.
    Known,
}

/// The rule every matching path shares (the element, `faceveil identify`, the calibration): a
/// descriptor is a hit for its best listed identity when `score >= threshold`,
/// `margin >= min_margin` (margin: score minus the best score of any other listed identity) and,
/// when the list has known people, `score - known >= known_margin` (`known`: the best known
/// person's score).
pub fn decide(
    score: f32,
    margin: f32,
    known: Option<f32>,
    threshold: f32,
    min_margin: f32,
    known_margin: f32,
) -> Decision {
    if score < threshold {
        Decision::NoMatch
    } else if margin < min_margin {
        Decision::Ambiguous
    } else if known.is_some_and(|k| score - k < known_margin) {
        Decision::Known
    } else {
        Decision::Match
    }
}

/// The threshold in force: the element's setting, or the embedder's calibrated one when it is 0.
pub fn threshold(setting: f32, calibrated: f32) -> f32 {
    if setting > 0.0 { setting } else { calibrated }
}

impl Config {
    /// The settings with 0 thresholds replaced by the embedder's calibrated ones (colour, grayscale).
    pub fn calibrated(self, colour: f32, gray: f32) -> Config {
        Config {
            threshold: threshold(self.threshold, colour),
            threshold_gray: threshold(self.threshold_gray, gray),
            ..self
        }
    }
}

/// The best identity for one fresh descriptor.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    pub identity_id: String,
    pub label: String,
    pub score: f32,
    pub margin: f32,
    /// Which of the identity's descriptors on the list scored `score` (from 0), of how many.
    pub reference: u32,
    pub references: u32,
    /// The best known person's score, if the list has known people (never shown: only
    /// [`decide`] reads it).
    pub known: Option<f32>,
}

impl Candidate {
    /// [`decide`] for this candidate at `threshold`, with `config`'s margins.
    pub fn decide(&self, threshold: f32, config: &Config) -> Decision {
        decide(
            self.score,
            self.margin,
            self.known,
            threshold,
            config.min_margin,
            config.known_margin,
        )
    }
}

/// One hit that made a match: a fresh descriptor of the track whose best identity was the matched
/// one, decided a match at `threshold`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    /// The frame it was computed on, in the matcher's count.
    pub frame: u64,
    pub score: f32,
    pub margin: f32,
    /// Which of the identity's descriptors scored it (from 0), of how many.
    pub reference: u32,
    pub references: u32,
    /// The face's quality on that frame.
    pub quality: f32,
    /// The face was grayscale on that frame: decided at the grayscale threshold.
    pub grayscale: bool,
    /// The threshold it was decided at (colour or grayscale).
    pub threshold: f32,
}

/// A track's aggregate as it was decided on: the quality-weighted mean of the subject's fresh
/// descriptors of one mode (colour or grayscale) within the hit window, re-normalised, and its best
/// identity on the list.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aggregate {
    pub score: f32,
    pub margin: f32,
    /// Which of the identity's descriptors scored `score` (from 0), of how many.
    pub reference: u32,
    pub references: u32,
    /// The fresh descriptors it was built from.
    pub descriptors: u32,
    /// Built from grayscale faces: decided at the grayscale threshold.
    pub grayscale: bool,
    /// The threshold it was decided at (colour or grayscale).
    pub threshold: f32,
}

/// What a track is known as.
#[derive(Clone, Debug, PartialEq)]
pub struct Matched {
    pub identity_id: String,
    pub label: String,
    /// Best score among the hits that made the match.
    pub score: f32,
    pub margin: f32,
    /// The hits that made the match, oldest first: those for the identity within the hit window
    /// when the track became matched (at least `min_hits`).
    pub hits: Vec<Hit>,
    /// The track's aggregate, which had to agree (`None` only for a `Matched` made by hand).
    pub aggregate: Option<Aggregate>,
}

impl Matched {
    /// The hit that scored `score` (the first of equals); `None` only for a `Matched` made by hand
    /// without hits.
    pub fn best(&self) -> Option<&Hit> {
        self.hits.iter().fold(None, |b: Option<&Hit>, h| match b {
            Some(b) if h.score <= b.score => Some(b),
            _ => Some(h),
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Match(Matched),
    Unknown,
}

/// The least weight of a descriptor in an aggregate (its face's quality, when higher).
const MIN_WEIGHT: f32 = 0.01;

/// A fresh descriptor of a track's subject, kept for the aggregate.
#[derive(Debug)]
struct Seen {
    frame: u64,
    /// Prepared (centred, L2-normalised).
    descriptor: Vec<f32>,
    weight: f32,
    grayscale: bool,
}

/// The quality-weighted mean of the `grayscale` (or colour) descriptors of `seen`, re-normalised,
/// and how many it was built from; `None` when there are none (or they cancel out).
fn aggregate(seen: &[Seen], grayscale: bool) -> Option<(Vec<f32>, u32)> {
    let mut sum: Vec<f32> = Vec::new();
    let mut n = 0;
    for s in seen.iter().filter(|s| s.grayscale == grayscale) {
        if sum.is_empty() {
            sum = vec![0.0; s.descriptor.len()];
        }
        if s.descriptor.len() != sum.len() {
            continue;
        }
        for (a, x) in sum.iter_mut().zip(&s.descriptor) {
            *a += s.weight * x;
        }
        n += 1;
    }
    let norm = sum.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n == 0 || !(norm > 0.0 && norm.is_finite()) {
        return None;
    }
    sum.iter_mut().for_each(|x| *x /= norm);
    Some((sum, n))
}

#[derive(Debug, Default)]
struct TrackState {
    /// Recent hits: the candidate and how it was found.
    hits: Vec<(Candidate, Hit)>,
    /// The subject's fresh descriptors within the hit window (since it last lost a match).
    recent: Vec<Seen>,
    /// The previous fresh descriptor (prepared).
    last: Option<Vec<f32>>,
    fresh: u32,
    matched: Option<Matched>,
    unknown_reported: bool,
    last_seen: u64,
    /// The last frame whose fresh descriptor was a hit for the identity the track is matched to.
    verified: Option<u64>,
}

#[derive(Debug)]
pub struct Matcher {
    config: Config,
    tracks: HashMap<u64, TrackState>,
    /// Identity id → time (seconds) of its last alert.
    last_alert: HashMap<String, f64>,
}

impl Matcher {
    pub fn new(config: Config) -> Self {
        Matcher {
            config,
            tracks: HashMap::new(),
            last_alert: HashMap::new(),
        }
    }

    pub fn set_config(&mut self, config: Config) {
        self.config = config;
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// A face of `track` on `frame` at time `now` (seconds, any monotonic clock), with its fresh
    /// descriptor if one was computed on this frame; `search` finds the best identity on the list
    /// for a prepared descriptor (the track's aggregate). Returns what to report.
    pub fn observe(
        &mut self,
        track: u64,
        frame: u64,
        fresh: Option<Fresh>,
        now: f64,
        search: impl FnOnce(&[f32]) -> Option<Candidate>,
    ) -> Option<Event> {
        let c = self.config;
        let min_hits = c.min_hits.max(1);
        let window = c.hit_window.max(1);
        let threshold = match &fresh {
            Some(f) if f.grayscale => c.threshold_gray,
            _ => c.threshold,
        };
        let t = self.tracks.entry(track).or_default();
        t.last_seen = frame;
        let fresh = fresh?;
        if let Some(prev) = &t.last
            && crate::engine::cosine::dot(prev, &fresh.descriptor) < threshold - CONTINUITY_SLACK
        {
            *t = TrackState::default();
            t.last_seen = frame;
        }
        t.last = Some(fresh.descriptor.clone());
        t.fresh += 1;
        let (grayscale, quality) = (fresh.grayscale, fresh.quality);
        let own = fresh.candidate;
        let hit = own
            .clone()
            .filter(|x| x.decide(threshold, &c) == Decision::Match);
        t.recent.push(Seen {
            frame,
            descriptor: fresh.descriptor,
            weight: quality.max(MIN_WEIGHT),
            grayscale,
        });
        t.recent.retain(|s| frame.saturating_sub(s.frame) < window);
        if let Some(m) = &t.matched
            && hit.as_ref().is_none_or(|h| h.identity_id != m.identity_id)
        {
            let gone = m.identity_id.clone();
            t.hits.retain(|(h, _)| h.identity_id != gone);
            t.matched = None;
            // The aggregate starts over from this descriptor: what made the match is no evidence
            // for whoever fills the track now.
            t.recent.retain(|s| s.frame == frame);
            // Count towards "unknown" afresh: one poor descriptor of a known person is no stranger.
            t.fresh = 0;
        }
        let hit_id = hit.as_ref().map(|h| h.identity_id.clone());
        if t.matched.is_some() && t.matched.as_ref().map(|m| &m.identity_id) == hit_id.as_ref() {
            t.verified = Some(frame);
        }
        if let Some(cand) = hit {
            let seen = Hit {
                frame,
                score: cand.score,
                margin: cand.margin,
                reference: cand.reference,
                references: cand.references,
                quality,
                grayscale,
                threshold,
            };
            t.hits.push((cand, seen));
        }
        t.hits
            .retain(|(_, h)| frame.saturating_sub(h.frame) < window);

        // The aggregate of this frame's mode; one descriptor is its own aggregate.
        let (agg, n) = match aggregate(&t.recent, grayscale) {
            Some((_, 1)) => (own, 1),
            Some((v, n)) => (search(&v), n),
            None => (None, 0),
        };
        let agg_decision = agg.as_ref().map(|a| a.decide(threshold, &c));
        let hits_of = |id: &str| t.hits.iter().filter(|(h, _)| h.identity_id == id).count() as u32;
        // Both the track's hits and its aggregate must say the same identity (BENCHMARKS.md,
        // "Decisions per track": the aggregate alone matched sooner but raised more false alarms).
        let leader = agg.filter(|a| {
            n >= min_hits
                && agg_decision == Some(Decision::Match)
                && hits_of(&a.identity_id) >= min_hits
        });

        if let Some(best) = leader {
            if t.matched
                .as_ref()
                .is_some_and(|m| m.identity_id == best.identity_id)
            {
                return None;
            }
            // Matched on this frame: verified only when this frame's descriptor is one of the hits.
            if hit_id.as_ref() == Some(&best.identity_id) {
                t.verified = Some(frame);
            }
            let hits: Vec<Hit> = t
                .hits
                .iter()
                .filter(|(h, _)| h.identity_id == best.identity_id)
                .map(|(_, seen)| *seen)
                .collect();
            let aggregate = Aggregate {
                score: best.score,
                margin: best.margin,
                reference: best.reference,
                references: best.references,
                descriptors: n,
                grayscale,
                threshold,
            };
            let mut m = Matched {
                identity_id: best.identity_id,
                label: best.label,
                score: best.score,
                margin: best.margin,
                hits,
                aggregate: Some(aggregate),
            };
            if let Some(b) = m.best().copied() {
                (m.score, m.margin) = (b.score, b.margin);
            }
            t.matched = Some(m.clone());
            let cooled = self
                .last_alert
                .get(&m.identity_id)
                .is_none_or(|last| now - last >= c.cooldown);
            if cooled {
                self.last_alert.insert(m.identity_id.clone(), now);
                return Some(Event::Match(m));
            }
            return None;
        }
        if c.report_unknown
            && t.matched.is_none()
            && !t.unknown_reported
            && t.fresh >= min_hits
            && t.hits.is_empty()
            && agg_decision.is_none_or(|d| d == Decision::NoMatch)
        {
            t.unknown_reported = true;
            return Some(Event::Unknown);
        }
        None
    }

    /// What the track is known as.
    pub fn identity(&self, track: u64) -> Option<&Matched> {
        self.tracks.get(&track)?.matched.as_ref()
    }

    /// Whether the track's identity was confirmed on `frame` by a fresh descriptor of that frame
    /// (a hit for it); false for a track without an identity.
    pub fn verified(&self, track: u64, frame: u64) -> bool {
        self.tracks
            .get(&track)
            .is_some_and(|t| t.matched.is_some() && t.verified == Some(frame))
    }

    /// The tracks that carry an identity now.
    pub fn identified(&self) -> impl Iterator<Item = u64> + '_ {
        self.tracks
            .iter()
            .filter(|(_, t)| t.matched.is_some())
            .map(|(k, _)| *k)
    }

    /// Forgets tracks not seen for `max_age` frames.
    pub fn prune(&mut self, frame: u64, max_age: u64) {
        self.tracks
            .retain(|_, t| frame.saturating_sub(t.last_seen) <= max_age);
    }

    /// Forgets every track (alert times stay: a seek is not a new visit).
    pub fn reset_tracks(&mut self) {
        self.tracks.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::cosine::Similarity;

    fn cfg() -> Config {
        Config {
            threshold: 0.6,
            threshold_gray: 0.8,
            min_margin: 0.0,
            known_margin: KNOWN_MARGIN,
            min_hits: 2,
            hit_window: 30,
            cooldown: 10.0,
            report_unknown: true,
        }
    }

    /// A fresh descriptor; all the same unless a test says otherwise, so tracks stay one subject.
    fn cand(id: &str, score: f32) -> Option<Fresh> {
        Some(Fresh {
            descriptor: vec![1.0, 0.0],
            grayscale: false,
            quality: 0.5,
            candidate: Some(Candidate {
                identity_id: id.into(),
                label: format!("label-{id}"),
                score,
                margin: 0.3,
                reference: 0,
                references: 1,
                known: None,
            }),
        })
    }

    /// [`Matcher::observe`] where the track's aggregate scores as this frame's descriptor does
    /// (the tests that use it give a subject one descriptor throughout, so its aggregate is that
    /// descriptor).
    fn see(
        m: &mut Matcher,
        track: u64,
        frame: u64,
        fresh: Option<Fresh>,
        now: f64,
    ) -> Option<Event> {
        let own = fresh.as_ref().and_then(|f| f.candidate.clone());
        m.observe(track, frame, fresh, now, |_| own)
    }

    fn nobody() -> Option<Fresh> {
        Some(Fresh {
            descriptor: vec![1.0, 0.0],
            grayscale: false,
            quality: 0.5,
            candidate: None,
        })
    }

    #[test]
    fn grayscale_descriptors_are_decided_at_their_own_threshold() {
        let gray = |score| {
            cand("a", score).map(|f| Fresh {
                grayscale: true,
                ..f
            })
        };
        let mut m = Matcher::new(cfg());
        // 0.7: a hit in colour (threshold 0.6), not in grayscale (0.8)
        assert_eq!(see(&mut m, 1, 0, gray(0.7), 0.0), None);
        // two fresh non-hits: unknown (cfg reports unknowns), never a match
        assert_eq!(see(&mut m, 1, 1, gray(0.7), 0.0), Some(Event::Unknown));
        assert!(m.identity(1).is_none());
        assert_eq!(see(&mut m, 2, 0, cand("a", 0.7), 0.0), None);
        assert!(matches!(
            see(&mut m, 2, 1, cand("a", 0.7), 0.0),
            Some(Event::Match(_))
        ));
        assert_eq!(decide(0.7, 0.05, None, 0.6, 0.1, 0.05), Decision::Ambiguous);
        assert_eq!(decide(0.5, 0.5, None, 0.6, 0.0, 0.05), Decision::NoMatch);
    }

    #[test]
    fn a_known_person_as_close_as_the_listed_one_holds_the_hit_back() {
        // closer to the known person, or not ahead of them by the known margin: held back
        assert_eq!(decide(0.8, 0.3, Some(0.9), 0.6, 0.0, 0.05), Decision::Known);
        assert_eq!(
            decide(0.8, 0.3, Some(0.76), 0.6, 0.0, 0.05),
            Decision::Known
        );
        // ahead by the margin, or no known person on the list: a hit
        assert_eq!(
            decide(0.8, 0.3, Some(0.74), 0.6, 0.0, 0.05),
            Decision::Match
        );
        assert_eq!(decide(0.8, 0.3, None, 0.6, 0.0, 0.05), Decision::Match);
        // a margin of 0: held back only when the known person scores higher
        assert_eq!(decide(0.8, 0.3, Some(0.8), 0.6, 0.0, 0.0), Decision::Match);
        assert_eq!(decide(0.8, 0.3, Some(0.81), 0.6, 0.0, 0.0), Decision::Known);
        // under the threshold, or too close to another listed identity, says so first
        assert_eq!(
            decide(0.5, 0.5, Some(0.9), 0.6, 0.0, 0.05),
            Decision::NoMatch
        );
        assert_eq!(
            decide(0.7, 0.01, Some(0.9), 0.6, 0.1, 0.05),
            Decision::Ambiguous
        );

        // along a track: a listed person's face that a known person scores as high as never
        // matches, never alerts, never tags the track (and counts towards unknown, as no hit)
        let near_known = |score, known| {
            cand("a", score).map(|f| Fresh {
                candidate: f.candidate.map(|c| Candidate {
                    known: Some(known),
                    ..c
                }),
                ..f
            })
        };
        let mut m = Matcher::new(Config {
            report_unknown: false,
            ..cfg()
        });
        for frame in 0..5 {
            let f = near_known(0.8, 0.78);
            assert_eq!(f.as_ref().unwrap().decision(&cfg()), Some(Decision::Known));
            assert_eq!(see(&mut m, 1, frame, f, 0.0), None);
            assert!(m.identity(1).is_none());
        }
        // the listed person, well ahead of the known one: matched as usual
        see(&mut m, 2, 10, near_known(0.8, 0.5), 0.0);
        assert!(matches!(
            see(&mut m, 2, 11, near_known(0.8, 0.5), 0.0),
            Some(Event::Match(x)) if x.identity_id == "a"
        ));
        // a grayscale face is decided at its own threshold, the known margin alike
        let gray = |score, known| {
            near_known(score, known).map(|f| Fresh {
                grayscale: true,
                ..f
            })
        };
        assert_eq!(
            gray(0.85, 0.82).unwrap().decision(&cfg()),
            Some(Decision::Known)
        );
        assert_eq!(
            gray(0.75, 0.5).unwrap().decision(&cfg()),
            Some(Decision::NoMatch)
        );
        assert_eq!(
            near_known(0.75, 0.5).unwrap().decision(&cfg()),
            Some(Decision::Match)
        );
        assert_eq!(nobody().unwrap().decision(&cfg()), None);
    }

    #[test]
    fn a_match_carries_its_hits_and_the_threshold_each_was_decided_at() {
        let mut m = Matcher::new(Config {
            min_hits: 3,
            ..cfg()
        });
        let seen = |score, reference, grayscale, quality| {
            cand("a", score).map(|f| Fresh {
                grayscale,
                quality,
                candidate: f.candidate.map(|c| Candidate {
                    reference,
                    references: 3,
                    ..c
                }),
                ..f
            })
        };
        assert_eq!(see(&mut m, 1, 0, seen(0.7, 1, false, 0.4), 0.0), None);
        // another identity's hit, a reused descriptor and a grayscale miss (0.75 < 0.8) are no
        // hits of "a"
        assert_eq!(see(&mut m, 1, 1, cand("b", 0.9), 0.0), None);
        assert_eq!(see(&mut m, 1, 2, None, 0.0), None);
        assert_eq!(see(&mut m, 1, 3, seen(0.75, 0, true, 0.6), 0.0), None);
        assert_eq!(see(&mut m, 1, 4, seen(0.85, 2, true, 0.7), 0.0), None);
        let Some(Event::Match(x)) = see(&mut m, 1, 5, seen(0.65, 1, false, 0.3), 0.0) else {
            panic!("no match")
        };
        let got: Vec<(u64, f32, u32, f32, bool, f32)> = x
            .hits
            .iter()
            .map(|h| {
                (
                    h.frame,
                    h.score,
                    h.reference,
                    h.quality,
                    h.grayscale,
                    h.threshold,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (0, 0.7, 1, 0.4, false, 0.6),
                (4, 0.85, 2, 0.7, true, 0.8),
                (5, 0.65, 1, 0.3, false, 0.6),
            ]
        );
        assert!(
            x.hits
                .iter()
                .all(|h| h.references == 3 && h.score >= h.threshold)
        );
        // the best hit is the one the match's score reports
        let best = x.best().unwrap();
        assert_eq!((best.frame, best.score, x.score), (4, 0.85, 0.85));
        assert_eq!(
            m.identity(1),
            Some(&x),
            "the track is known by the same match"
        );
    }

    #[test]
    fn needs_min_hits_of_fresh_descriptors() {
        let mut m = Matcher::new(cfg());
        assert_eq!(see(&mut m, 1, 0, cand("a", 0.8), 0.0), None);
        // reused descriptors (None) are not evidence
        assert_eq!(see(&mut m, 1, 1, None, 0.04), None);
        assert_eq!(m.identity(1), None);
        match see(&mut m, 1, 2, cand("a", 0.9), 0.08) {
            Some(Event::Match(x)) => {
                assert_eq!(
                    (x.identity_id.as_str(), x.label.as_str(), x.score),
                    ("a", "label-a", 0.9)
                );
            }
            e => panic!("{e:?}"),
        }
        assert_eq!(m.identity(1).unwrap().identity_id, "a");
        // still matched, no second alert
        assert_eq!(see(&mut m, 1, 3, cand("a", 0.9), 0.12), None);
    }

    #[test]
    fn below_threshold_and_outside_window_do_not_count() {
        let mut m = Matcher::new(cfg());
        see(&mut m, 1, 0, cand("a", 0.59), 0.0);
        // two descriptors, but their aggregate (as each) scores under the threshold: unknown
        assert_eq!(
            see(&mut m, 1, 1, cand("a", 0.59), 0.0),
            Some(Event::Unknown)
        );
        // the next hit is 40 frames later: the others left the window
        assert_eq!(see(&mut m, 1, 41, cand("a", 0.7), 2.0), None);
        assert!(matches!(
            see(&mut m, 1, 42, cand("a", 0.7), 2.0),
            Some(Event::Match(_))
        ));
    }

    #[test]
    fn cooldown_is_per_identity_across_tracks() {
        let mut m = Matcher::new(cfg());
        see(&mut m, 1, 0, cand("a", 0.8), 0.0);
        assert!(see(&mut m, 1, 1, cand("a", 0.8), 0.0).is_some());
        // the same person on a new track 5 s later: same visit, no alert, but the face is labelled
        see(&mut m, 2, 100, cand("a", 0.8), 5.0);
        assert_eq!(see(&mut m, 2, 101, cand("a", 0.8), 5.0), None);
        assert_eq!(m.identity(2).unwrap().identity_id, "a");
        // another person alerts at once; the first again after the cooldown
        see(&mut m, 3, 102, cand("b", 0.8), 5.0);
        assert!(see(&mut m, 3, 103, cand("b", 0.8), 5.0).is_some());
        see(&mut m, 4, 400, cand("a", 0.8), 16.0);
        assert!(see(&mut m, 4, 401, cand("a", 0.8), 16.0).is_some());
    }

    #[test]
    fn unknown_once_per_track_only_when_asked() {
        let mut m = Matcher::new(cfg());
        assert_eq!(see(&mut m, 1, 0, cand("a", 0.1), 0.0), None);
        assert_eq!(see(&mut m, 1, 1, nobody(), 0.0), Some(Event::Unknown));
        assert_eq!(see(&mut m, 1, 2, cand("a", 0.1), 0.0), None);
        let mut quiet = Matcher::new(Config {
            report_unknown: false,
            ..cfg()
        });
        see(&mut quiet, 1, 0, cand("a", 0.1), 0.0);
        assert_eq!(see(&mut quiet, 1, 1, cand("a", 0.1), 0.0), None);
    }

    #[test]
    fn someone_else_in_the_track_ends_the_match() {
        let mut m = Matcher::new(cfg());
        see(&mut m, 1, 0, cand("a", 0.8), 0.0);
        assert!(see(&mut m, 1, 1, cand("a", 0.8), 0.0).is_some());
        // reused descriptors keep it
        see(&mut m, 1, 2, None, 0.0);
        assert!(m.identity(1).is_some());
        // the first fresh miss ends it
        see(&mut m, 1, 3, cand("x", 0.1), 0.0);
        assert_eq!(m.identity(1), None);
        // and the next person in it can match
        see(&mut m, 1, 6, cand("b", 0.9), 0.0);
        assert!(
            matches!(see(&mut m, 1, 7, cand("b", 0.9), 0.0), Some(Event::Match(x)) if x.identity_id == "b")
        );
    }

    #[test]
    fn a_track_is_verified_only_on_frames_whose_fresh_descriptor_hits_its_identity() {
        let mut m = Matcher::new(cfg());
        see(&mut m, 1, 0, cand("a", 0.8), 0.0);
        assert!(!m.verified(1, 0), "not matched yet");
        see(&mut m, 1, 1, cand("a", 0.8), 0.0);
        assert!(m.verified(1, 1), "matched on this frame's hit");
        assert_eq!(m.identified().collect::<Vec<_>>(), [1]);
        // a reused descriptor keeps the identity, unverified
        see(&mut m, 1, 2, None, 0.0);
        assert!(m.identity(1).is_some() && !m.verified(1, 2));
        see(&mut m, 1, 3, cand("a", 0.9), 0.0);
        assert!(m.verified(1, 3));
        // an ambiguous or weak descriptor of the same identity is no hit: not verified, dropped
        see(&mut m, 1, 4, cand("a", 0.5), 0.0);
        assert!(!m.verified(1, 4) && m.identity(1).is_none());
        assert_eq!(m.identified().count(), 0);
        // someone else's hit in the track is not a verification of anything until it matches
        see(&mut m, 1, 5, cand("b", 0.9), 0.0);
        assert!(!m.verified(1, 5));
        see(&mut m, 1, 6, cand("b", 0.9), 0.0);
        assert!(m.verified(1, 6) && m.identity(1).unwrap().identity_id == "b");
    }

    #[test]
    fn a_different_face_in_the_track_starts_a_new_subject() {
        let mut m = Matcher::new(cfg());
        see(&mut m, 1, 0, nobody(), 0.0);
        assert_eq!(see(&mut m, 1, 1, nobody(), 0.0), Some(Event::Unknown));
        assert_eq!(see(&mut m, 1, 2, nobody(), 0.0), None, "once per subject");
        // someone else (orthogonal descriptor) in the same track: a new subject, reported again
        let other = || {
            Some(Fresh {
                descriptor: vec![0.0, 1.0],
                grayscale: false,
                quality: 0.5,
                candidate: None,
            })
        };
        assert_eq!(see(&mut m, 1, 3, other(), 0.0), None);
        assert_eq!(see(&mut m, 1, 4, other(), 0.0), Some(Event::Unknown));
    }

    /// A list of `people` (label, descriptor), indexed as veilmatch indexes its list (plain cosine).
    fn index(people: &[(&str, [f32; 4])]) -> Index {
        let mut list = crate::engine::watchlist::Watchlist::new();
        for (label, v) in people {
            list.identities
                .push(crate::engine::watchlist::Identity::for_test(
                    &format!("id-{label}"),
                    label,
                    "m:1",
                    v.to_vec(),
                ));
        }
        Index::build(&list, "m:1", &Similarity::cosine(), 0)
    }

    /// A colour face of `track` on `frame` with descriptor `v` of `quality`, searched in `list`,
    /// the track's aggregate too.
    fn look(
        m: &mut Matcher,
        list: &Index,
        track: u64,
        frame: u64,
        v: [f32; 4],
        quality: f32,
    ) -> Option<Event> {
        let fresh = Fresh::search(list, &Similarity::cosine(), &v, (false, quality), 0);
        m.observe(track, frame, Some(fresh), frame as f64, |q| {
            candidate(list, q, 0)
        })
    }

    /// ann on the list; descriptors scoring about 0.35, 0.64, 0.63 and 0.55, 0.75 to her.
    fn ann() -> Index {
        index(&[("ann", [1.0, 0.0, 0.0, 0.0]), ("bob", [0.0, 1.0, 0.0, 0.0])])
    }
    const STRANGER: [[f32; 4]; 3] = [
        [0.35, 0.0, 0.94, 0.0],
        [0.66, 0.0, 0.70, 0.35],
        [0.63, 0.0, 0.70, -0.35],
    ];

    #[test]
    fn the_aggregate_outweighs_an_impostors_lucky_frames() {
        let list = ann();
        let mut m = Matcher::new(cfg());
        // each of the stranger's last two frames is a hit for ann on its own (the per-frame rule
        // would have alerted on the second), but the track's aggregate (0.57) is not
        let own: Vec<f32> = STRANGER
            .iter()
            .map(|v| {
                Fresh::search(&list, &Similarity::cosine(), v, (false, 0.5), 0)
                    .candidate
                    .unwrap()
                    .score
            })
            .collect();
        assert!(own[0] < 0.6 && own[1] >= 0.6 && own[2] >= 0.6, "{own:?}");
        for (f, v) in STRANGER.into_iter().enumerate() {
            assert_eq!(look(&mut m, &list, 1, f as u64, v, 0.5), None, "frame {f}");
        }
        assert_eq!(m.identity(1), None);
        // ann herself with one weak frame (0.55, a miss): matched at her second hit, her weak frame
        // in the aggregate too
        assert_eq!(
            look(&mut m, &list, 2, 0, [0.55, 0.0, 0.835, 0.0], 0.5),
            None
        );
        assert_eq!(look(&mut m, &list, 2, 1, [0.75, 0.0, 0.66, 0.0], 0.5), None);
        let Some(Event::Match(x)) = look(&mut m, &list, 2, 2, [0.75, 0.0, 0.66, 0.0], 0.5) else {
            panic!("no match")
        };
        let a = x.aggregate.unwrap();
        assert_eq!(
            (x.label.as_str(), a.descriptors, a.threshold),
            ("ann", 3, 0.6)
        );
        assert!(a.score >= 0.6 && a.score < 0.75, "{a:?}");
        // the hits: the descriptors that were hits on their own; the best is the match's score
        assert_eq!(x.hits.iter().map(|h| h.frame).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(x.score, x.best().unwrap().score);
        assert!(
            m.verified(2, 2),
            "this frame's own descriptor is a hit for her"
        );
    }

    #[test]
    fn quality_weighs_the_aggregate() {
        let list = ann();
        // the stranger's two lucky frames again: when their miss was a poor face (quality 0.05)
        // it hardly counts, and the aggregate is about the two hits; a good one vetoes
        for (q, alerted) in [(0.05, true), (0.9, false)] {
            let mut m = Matcher::new(cfg());
            look(&mut m, &list, 1, 0, STRANGER[0], q);
            look(&mut m, &list, 1, 1, STRANGER[1], 0.5);
            let ev = look(&mut m, &list, 1, 2, STRANGER[2], 0.5);
            assert_eq!(
                matches!(ev, Some(Event::Match(_))),
                alerted,
                "quality {q}: {ev:?}"
            );
        }
    }

    #[test]
    fn a_swap_drops_the_identity_and_what_made_it() {
        let list = ann();
        let mut m = Matcher::new(cfg());
        let her = [0.95, 0.0, 0.31, 0.0];
        look(&mut m, &list, 1, 0, her, 0.5);
        assert!(look(&mut m, &list, 1, 1, her, 0.5).is_some());
        // someone else in her track, alike enough to pass for the same subject (no new subject),
        // scoring 0.50 to her: the name goes at once
        look(&mut m, &list, 1, 2, [0.5, 0.0, 0.5, 0.707], 0.5);
        assert_eq!(m.identity(1), None);
        assert!(!m.verified(1, 2));
        // their next frame is a hit for her (0.62): one hit, and an aggregate that started over
        // when the name went (0.57; with her two descriptors it would be 0.83)
        assert_eq!(look(&mut m, &list, 1, 3, [0.62, 0.0, 0.3, 0.72], 0.5), None);
        assert_eq!(m.identity(1), None);
    }

    #[test]
    fn min_hits_is_the_descriptors_the_aggregate_needs() {
        let list = ann();
        let mut m = Matcher::new(Config {
            min_hits: 3,
            ..cfg()
        });
        let her = [0.95, 0.0, 0.31, 0.0];
        assert_eq!(look(&mut m, &list, 1, 0, her, 0.5), None);
        assert_eq!(look(&mut m, &list, 1, 1, her, 0.5), None);
        // a reused descriptor is none of them
        let own = |_: &[f32]| None;
        assert_eq!(m.observe(1, 2, None, 2.0, own), None);
        // a grayscale face is not in the colour aggregate (and one is not enough for its own)
        let gray = Fresh::search(&list, &Similarity::cosine(), &her, (true, 0.5), 0);
        assert_eq!(
            m.observe(1, 3, Some(gray), 3.0, |q| candidate(&list, q, 0)),
            None
        );
        let Some(Event::Match(x)) = look(&mut m, &list, 1, 4, her, 0.5) else {
            panic!("no match")
        };
        let a = x.aggregate.unwrap();
        assert_eq!((a.descriptors, a.grayscale), (3, false));
        assert_eq!(
            x.hits.iter().map(|h| h.frame).collect::<Vec<_>>(),
            [0, 1, 3, 4],
            "every hit for her in the window, the grayscale one too"
        );
        // outside the hit window, descriptors leave the aggregate
        let mut m = Matcher::new(Config {
            min_hits: 2,
            hit_window: 10,
            ..cfg()
        });
        look(&mut m, &list, 1, 0, her, 0.5);
        assert_eq!(look(&mut m, &list, 1, 10, her, 0.5), None);
        assert!(look(&mut m, &list, 1, 11, her, 0.5).is_some());
    }

    #[test]
    fn prune_forgets_old_tracks() {
        let mut m = Matcher::new(cfg());
        see(&mut m, 1, 0, cand("a", 0.8), 0.0);
        see(&mut m, 1, 1, cand("a", 0.8), 0.0);
        m.prune(100, 50);
        assert_eq!(m.identity(1), None);
    }
}
