// SPDX-License-Identifier: MIT
//! The per-frame work of `veilmatch`, GStreamer-free: keep the watch list current (its reloads,
//! `engine::watchlist::reload`), search each fresh descriptor in it, follow the decisions along
//! tracks (`engine::matcher`) and say what the frame amounts to: the identities to tag, the events
//! to report, or why the frame could not be matched. The element runs this and turns the outcome
//! into metadata, bus messages, warnings and errors.

use std::fmt;
use std::path::PathBuf;
use std::time::Instant;

use crate::engine::audit;
use crate::engine::matcher::{Config, Decision, Event, Fresh, Matched, Matcher, candidate};
use crate::engine::watchlist::reload::{Outcome, Reloader};

/// Tracks unseen for this many frames are forgotten.
pub const TRACK_MAX_AGE: u64 = 300;

/// One face of the frame, as `veilembed` left it.
#[derive(Clone, Copy, Debug)]
pub struct FaceIn<'a> {
    pub track: u64,
    /// `None`: the face has no descriptor part at all (no `veilembed` before the matcher).
    pub descriptor: Option<DescriptorIn<'a>>,
}

/// A face's descriptor part.
#[derive(Clone, Copy, Debug)]
pub struct DescriptorIn<'a> {
    /// The embedder model it comes from.
    pub model_id: &'a str,
    /// The raw descriptor (`None`: gated, never embedded).
    pub vector: Option<&'a [f32]>,
    /// Computed on this frame (only fresh descriptors are evidence).
    pub fresh: bool,
    pub grayscale: bool,
    /// The face's quality on this frame (the embedder's score, 0..1).
    pub quality: f32,
}

/// What one frame amounts to.
#[derive(Debug)]
pub struct FrameOut {
    /// The frame's number in this matcher's own count, from 0.
    pub frame: u64,
    /// What a reload of the watch list did on this frame, if one finished.
    pub reload: Option<Outcome>,
    /// The colour threshold in force: the setting, or the calibrated one when it is 0. A match
    /// carries the threshold each of its hits was decided at (colour or grayscale).
    pub threshold: f32,
    pub verdict: Verdict,
}

/// How the frame's faces were matched.
#[derive(Debug)]
pub enum Verdict {
    /// Matched (possibly nothing): by position of the face in the input, what its track is known as
    /// and what to report.
    Matched {
        tags: Vec<(usize, Tag)>,
        events: Vec<(usize, Event)>,
    },
    /// The faces have no descriptors (no `veilembed` before the matcher) and pass unmatched.
    /// `first`: the first such frame since start, to be warned about once.
    NoDescriptors { first: bool },
    /// A fresh descriptor from another embedder model than the one the list is searched under:
    /// the stream cannot go on.
    ModelMismatch(ModelMismatch),
}

/// What a face's track is known as on this frame.
#[derive(Clone, Debug, PartialEq)]
pub struct Tag {
    pub identity: Matched,
    /// This frame's fresh descriptor of the face is a hit for the identity (see
    /// `Matcher::verified`): only then may redaction spare the face.
    pub verified: bool,
}

/// The list is searched under one embedder model (the matcher's), the descriptors come from
/// another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelMismatch {
    pub path: PathBuf,
    /// The model whose descriptors of the list are searched.
    pub matcher: String,
    /// The descriptors' model.
    pub descriptors: String,
}

impl fmt::Display for ModelMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Watch list {} is searched under embedder model {}, but the descriptors come from {}; \
             use the same model in veilembed and veilmatch",
            self.path.display(),
            self.matcher,
            self.descriptors
        )
    }
}

/// Counters over all frames, as the element's `stats` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Counts {
    pub frames: u64,
    /// Fresh descriptors searched in the list.
    pub searches: u64,
    pub search_ns: u64,
    /// The whole per-frame matching (searches, track decisions).
    pub match_ns: u64,
    /// Reloads of the watch list that failed (the old list kept).
    pub failed_reloads: u64,
    /// Older lists refused (rollbacks).
    pub refused_rollbacks: u64,
    /// Matches decided in trial mode: logged, not reported.
    pub trial_matches: u64,
    /// Fresh descriptors that would have been a hit for a listed identity but that a known person
    /// scored as high (within the known margin): held back ([`Decision::Known`]).
    pub known_held: u64,
}

#[derive(Debug)]
pub struct FrameMatcher {
    /// The watch list in use and its reloads.
    list: Reloader,
    /// The embedder manifest's calibrated thresholds, colour and grayscale (used when the settings
    /// are 0).
    calibrated: (f32, f32),
    matcher: Matcher,
    frames: u64,
    /// The clock of frames without a running time.
    started: Instant,
    warned_no_descriptors: bool,
    counts: Counts,
}

impl FrameMatcher {
    /// `config`: the settings (thresholds 0: the `calibrated` ones, colour and grayscale).
    pub fn new(list: Reloader, config: Config, calibrated: (f32, f32)) -> Self {
        FrameMatcher {
            list,
            calibrated,
            matcher: Matcher::new(config.calibrated(calibrated.0, calibrated.1)),
            frames: 0,
            started: Instant::now(),
            warned_no_descriptors: false,
            counts: Counts::default(),
        }
    }

    /// The watch list in use.
    pub fn list(&self) -> &Reloader {
        &self.list
    }

    /// The watch list, to apply a reload made outside (`Reloader::apply`).
    pub fn list_mut(&mut self) -> &mut Reloader {
        &mut self.list
    }

    /// The tracks that carry an identity after the last frame (what `veilembed` verifies on the
    /// next one, when asked to).
    pub fn identified(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self.matcher.identified().collect();
        v.sort_unstable();
        v
    }

    /// Forgets every track (a flush; alert times stay).
    pub fn clear(&mut self) {
        self.matcher.reset_tracks();
    }

    pub fn counts(&self) -> Counts {
        let (failed_reloads, refused_rollbacks) = self.list.failures();
        Counts {
            failed_reloads,
            refused_rollbacks,
            ..self.counts
        }
    }

    /// One frame: `config` the settings now (thresholds 0: the calibrated ones), `running` its
    /// running time in seconds (`None`: seconds since start), `unix` the wall-clock time for the
    /// identities' expiry. `log(frame, track, matched)` hears of each fresh descriptor's outcome
    /// (a decision only: never the label or score of a face that did not match).
    pub fn process(
        &mut self,
        faces: &[FaceIn],
        config: Config,
        running: Option<f64>,
        unix: i64,
        mut log: impl FnMut(u64, u64, bool),
    ) -> FrameOut {
        let t_match = Instant::now();
        let reload = self.list.poll();
        let frame = self.frames;
        self.frames += 1;
        self.counts.frames += 1;
        let config = config.calibrated(self.calibrated.0, self.calibrated.1);
        self.matcher.set_config(config);
        let out = |verdict| FrameOut {
            frame,
            reload,
            threshold: config.threshold,
            verdict,
        };
        if !faces.is_empty() && faces.iter().all(|f| f.descriptor.is_none()) {
            let first = !std::mem::replace(&mut self.warned_no_descriptors, true);
            return out(Verdict::NoDescriptors { first });
        }
        let clock = running.unwrap_or_else(|| self.started.elapsed().as_secs_f64());
        let source = self.list.source();
        let mut tags = Vec::new();
        let mut events = Vec::new();
        for (i, f) in faces.iter().enumerate() {
            let fresh = match f.descriptor {
                Some(d) if d.fresh => {
                    if d.model_id != source.model_id {
                        return out(Verdict::ModelMismatch(ModelMismatch {
                            path: source.path.clone(),
                            matcher: source.model_id.clone(),
                            descriptors: d.model_id.to_string(),
                        }));
                    }
                    let t = Instant::now();
                    let found = Fresh::search(
                        self.list.index(),
                        &source.similarity,
                        d.vector.unwrap_or(&[]),
                        (d.grayscale, d.quality),
                        unix,
                    );
                    self.counts.searches += 1;
                    self.counts.search_ns += t.elapsed().as_nanos() as u64;
                    if found.decision(&config) == Some(Decision::Known) {
                        self.counts.known_held += 1;
                    }
                    Some(found)
                }
                _ => None,
            };
            let had = fresh.is_some();
            let index = self.list.index();
            let ev = self
                .matcher
                .observe(f.track, frame, fresh, clock, |aggregate| {
                    candidate(index, aggregate, unix)
                });
            let who = self.matcher.identity(f.track);
            if had {
                log(frame, f.track, who.is_some());
            }
            if let Some(ev) = ev {
                events.push((i, ev));
            }
            if let Some(m) = who {
                let verified = self.matcher.verified(f.track, frame);
                tags.push((
                    i,
                    Tag {
                        identity: m.clone(),
                        verified,
                    },
                ));
            }
        }
        self.matcher.prune(frame, TRACK_MAX_AGE);
        self.counts.match_ns += t_match.elapsed().as_nanos() as u64;
        out(Verdict::Matched { tags, events })
    }
}

/// What becomes of a frame's events.
#[derive(Debug, Default)]
pub struct Report {
    /// The events to post as messages, by position of the face in the input.
    pub post: Vec<(usize, Event)>,
    /// The audit-log lines: one per match, posted or not.
    pub audit: Vec<audit::Event>,
}

impl FrameMatcher {
    /// What to do with the frame's `events` on `camera`: post them and log their matches, or, in
    /// `trial` mode, log the matches as trial matches (and count them) but post none of them
    /// (unknown faces are posted either way: they are no alert on a listed person).
    pub fn report(&mut self, camera: &str, events: Vec<(usize, Event)>, trial: bool) -> Report {
        let audit = audit_lines(camera, events.iter().map(|(_, ev)| ev), trial);
        if !trial {
            return Report {
                post: events,
                audit,
            };
        }
        self.counts.trial_matches += audit.len() as u64;
        let post = events
            .into_iter()
            .filter(|(_, ev)| matches!(ev, Event::Unknown))
            .collect();
        Report { post, audit }
    }
}

/// The audit-log lines for a frame's events, by `camera`: one per match (label, id and the
/// match's explanation, [`match_detail`]; never a descriptor or an image), a `trial-match` in
/// `trial` mode; none for unknown faces.
pub fn audit_lines<'a>(
    camera: &str,
    events: impl IntoIterator<Item = &'a Event>,
    trial: bool,
) -> Vec<audit::Event> {
    events
        .into_iter()
        .filter_map(|ev| match ev {
            Event::Match(m) => Some(audit::Event {
                actor: format!("camera:{camera}"),
                action: if trial {
                    audit::TRIAL_MATCH
                } else {
                    audit::MATCH
                }
                .into(),
                identity: Some(m.identity_id.clone()),
                label: Some(m.label.clone()),
                detail: Some(match_detail(m)),
            }),
            Event::Unknown => None,
        })
        .collect()
}

/// A match's explanation, as its audit entry's detail: the score (first, as
/// [`audit::score_detail`] writes it), then what its best hit was (the descriptor of the identity
/// that scored it, 1 of n; the face's quality; grayscale or not; its threshold) and every hit's
/// score, oldest first. When the hits mixed colour and grayscale faces each hit says which, and
/// the other mode's threshold follows in brackets:
///
/// `score 0.873; reference 2 of 3; hits 0.812, 0.873; quality 0.62; grayscale; threshold 0.790`
pub fn match_detail(m: &Matched) -> String {
    use std::fmt::Write;
    let mut s = audit::score_detail(m.score);
    let Some(best) = m.best() else {
        return s;
    };
    let mode = |gray: bool| if gray { "grayscale" } else { "colour" };
    let other = m.hits.iter().find(|h| h.grayscale != best.grayscale);
    let hits: Vec<String> = m
        .hits
        .iter()
        .map(|h| match other {
            Some(_) => format!("{:.3} {}", h.score, mode(h.grayscale)),
            None => format!("{:.3}", h.score),
        })
        .collect();
    let _ = write!(
        s,
        "; reference {} of {}; hits {}; quality {:.2}{}; threshold {:.3}",
        best.reference + 1,
        best.references,
        hits.join(", "),
        best.quality,
        if best.grayscale { "; grayscale" } else { "" },
        best.threshold
    );
    if let Some(o) = other {
        let _ = write!(s, " ({} {:.3})", mode(o.grayscale), o.threshold);
    }
    s
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::*;
    use crate::engine::cosine::Similarity;
    use crate::engine::watchlist::file::Secret;
    use crate::engine::watchlist::reload::{Key, Source};
    use crate::engine::watchlist::store::save;
    use crate::engine::watchlist::{Identity, Watchlist};

    const MODEL: &str = "m:1";

    /// A list with "ann" ([1, 0]) and "bob" ([0, 1]) in a file of its own, and its matcher.
    fn matcher(name: &str, config: Config) -> FrameMatcher {
        matcher_of(
            name,
            config,
            &[("ann", &[[1.0, 0.0]]), ("bob", &[[0.0, 1.0]])],
        )
    }

    /// A list of `people` (label, descriptors) in a file of its own, and its matcher (calibrated
    /// thresholds 0.6 in colour, 0.8 in grayscale).
    fn matcher_of(name: &str, config: Config, people: &[(&str, &[[f32; 2]])]) -> FrameMatcher {
        let dir = std::env::temp_dir().join(format!("fv-match-step-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("list.fvl");
        let mut list = Watchlist::new();
        for (label, vs) in people {
            let mut who = Identity::for_test(&format!("id-{label}"), label, MODEL, vs[0].to_vec());
            for v in &vs[1..] {
                let mut d = who.descriptors[0].clone();
                d.vector = v.to_vec();
                who.descriptors.push(d);
            }
            list.identities.push(who);
        }
        let secret = Secret::Key([3; 32]);
        save(&path, &mut list, &secret).unwrap();
        let source = Source {
            path,
            key: Key::Fixed(secret),
            model_id: MODEL.into(),
            similarity: Similarity::cosine(),
            floor: None,
        };
        let list = Reloader::open(source, Duration::from_secs(3600)).unwrap();
        FrameMatcher::new(list, config, (0.6, 0.8))
    }

    /// The settings with 0 thresholds (the calibrated ones).
    fn config() -> Config {
        Config {
            threshold: 0.0,
            threshold_gray: 0.0,
            min_margin: 0.0,
            known_margin: crate::engine::matcher::KNOWN_MARGIN,
            min_hits: 2,
            hit_window: 30,
            cooldown: 60.0,
            report_unknown: true,
        }
    }

    fn face<'a>(track: u64, model_id: &'a str, vector: &'a [f32], fresh: bool) -> FaceIn<'a> {
        FaceIn {
            track,
            descriptor: Some(DescriptorIn {
                model_id,
                vector: Some(vector),
                fresh,
                grayscale: false,
                quality: 0.5,
            }),
        }
    }

    /// [`face`], fresh, of a grayscale face.
    fn gray<'a>(track: u64, vector: &'a [f32]) -> FaceIn<'a> {
        let mut f = face(track, MODEL, vector, true);
        if let Some(d) = &mut f.descriptor {
            d.grayscale = true;
        }
        f
    }

    fn run(m: &mut FrameMatcher, faces: &[FaceIn], log: &mut Vec<(u64, u64, bool)>) -> FrameOut {
        m.process(faces, config(), Some(1.0), 1_000_000, |f, t, x| {
            log.push((f, t, x))
        })
    }

    #[test]
    fn a_track_is_tagged_and_reported_after_min_hits_fresh_descriptors() {
        let mut m = matcher("hits", config());
        let mut log = Vec::new();
        let ann = [0.9, 0.1];
        let first = run(&mut m, &[face(7, MODEL, &ann, true)], &mut log);
        assert_eq!(
            (first.frame, first.threshold),
            (0, 0.6),
            "calibrated threshold"
        );
        assert!(
            matches!(first.verdict, Verdict::Matched { ref tags, ref events }
            if tags.is_empty() && events.is_empty())
        );
        // A stranger beside her in the second face: ann's track is tagged and reported at its
        // position, the stranger is neither.
        let out = run(
            &mut m,
            &[
                face(9, MODEL, &[-1.0, -1.0], true),
                face(7, MODEL, &ann, true),
            ],
            &mut log,
        );
        assert_eq!(out.frame, 1);
        let Verdict::Matched { tags, events } = out.verdict else {
            panic!("{:?}", out.verdict)
        };
        assert_eq!(tags.len(), 1);
        assert_eq!((tags[0].0, tags[0].1.identity.label.as_str()), (1, "ann"));
        assert!(tags[0].1.verified, "matched on this frame's descriptor");
        assert_eq!(m.identified(), [7]);
        assert!(matches!(&events[..], [(1, Event::Match(x))] if x.identity_id == "id-ann"));
        assert_eq!(log, [(0, 7, false), (1, 9, false), (1, 7, true)]);
        // A reused descriptor is no evidence (not searched) but keeps the tag, unverified.
        let out = run(&mut m, &[face(7, MODEL, &ann, false)], &mut log);
        assert!(
            matches!(out.verdict, Verdict::Matched { ref tags, ref events }
            if tags.len() == 1 && !tags[0].1.verified && events.is_empty())
        );
        let c = m.counts();
        assert_eq!((c.frames, c.searches), (3, 3));
        assert_eq!(log.len(), 3);
        // A flush forgets the track: no tag until it matches again.
        m.clear();
        let out = run(&mut m, &[face(7, MODEL, &ann, false)], &mut log);
        assert!(matches!(out.verdict, Verdict::Matched { ref tags, .. } if tags.is_empty()));
        assert_eq!(m.list().index().len(), 2);
    }

    #[test]
    fn a_stranger_in_a_listed_persons_track_loses_the_tag_at_its_first_fresh_descriptor() {
        let mut m = matcher("swap", config());
        let mut log = Vec::new();
        let ann = [0.9, 0.1];
        for _ in 0..2 {
            run(&mut m, &[face(7, MODEL, &ann, true)], &mut log);
        }
        assert_eq!(m.identified(), [7]);
        // someone else's fresh descriptor in ann's track: no tag on this very frame
        let out = run(&mut m, &[face(7, MODEL, &[-0.2, -1.0], true)], &mut log);
        assert!(matches!(out.verdict, Verdict::Matched { ref tags, .. } if tags.is_empty()));
        assert!(m.identified().is_empty());
        assert_eq!(log.last(), Some(&(2, 7, false)));
    }

    #[test]
    fn faces_without_descriptors_are_warned_about_once() {
        let mut m = matcher("none", config());
        let bare = FaceIn {
            track: 1,
            descriptor: None,
        };
        let mut log = Vec::new();
        let first = run(&mut m, &[bare, bare], &mut log);
        assert!(matches!(
            first.verdict,
            Verdict::NoDescriptors { first: true }
        ));
        let again = run(&mut m, &[bare], &mut log);
        assert!(matches!(
            again.verdict,
            Verdict::NoDescriptors { first: false }
        ));
        // no faces, or one face with a descriptor part: matched as usual
        let empty = run(&mut m, &[], &mut log);
        assert!(matches!(empty.verdict, Verdict::Matched { .. }));
        let mixed = run(
            &mut m,
            &[bare, face(2, MODEL, &[1.0, 0.0], false)],
            &mut log,
        );
        assert!(matches!(mixed.verdict, Verdict::Matched { .. }));
        assert_eq!(m.counts().frames, 4);
    }

    #[test]
    fn a_fresh_descriptor_of_another_model_is_a_mismatch() {
        let mut m = matcher("model", config());
        let mut log = Vec::new();
        // reused descriptors are not checked (as before: only fresh ones are searched)
        let reused = run(&mut m, &[face(1, "other:2", &[1.0, 0.0], false)], &mut log);
        assert!(matches!(reused.verdict, Verdict::Matched { .. }));
        let out = run(&mut m, &[face(1, "other:2", &[1.0, 0.0], true)], &mut log);
        let Verdict::ModelMismatch(e) = out.verdict else {
            panic!("{:?}", out.verdict)
        };
        assert_eq!(
            (e.matcher.as_str(), e.descriptors.as_str()),
            (MODEL, "other:2")
        );
        assert!(Path::new(&e.path).ends_with("list.fvl"));
        assert_eq!(
            e.to_string(),
            format!(
                "Watch list {} is searched under embedder model m:1, but the descriptors come \
                 from other:2; use the same model in veilembed and veilmatch",
                e.path.display()
            )
        );
        assert_eq!(m.counts().searches, 0);
    }

    #[test]
    fn a_threshold_setting_overrides_the_calibrated_one() {
        let mut m = matcher("threshold", config());
        let set = Config {
            threshold: 0.95,
            ..config()
        };
        let ann = [0.9, 0.1]; // about 0.99 to ann
        let near = [0.8, 0.6]; // 0.8 to ann: a hit at 0.6, not at 0.95
        for v in [near, near] {
            let out = m.process(
                &[face(3, MODEL, &v, true)],
                set,
                None,
                1_000_000,
                |_, _, _| {},
            );
            assert_eq!(out.threshold, 0.95);
            assert!(matches!(out.verdict, Verdict::Matched { ref tags, .. } if tags.is_empty()));
        }
        for (i, v) in [ann, ann].into_iter().enumerate() {
            let out = m.process(
                &[face(4, MODEL, &v, true)],
                set,
                None,
                1_000_000,
                |_, _, _| {},
            );
            assert!(matches!(out.verdict, Verdict::Matched { ref tags, .. } if tags.len() == i));
        }
    }

    #[test]
    fn only_matches_go_to_the_audit_log() {
        let ev = [
            Event::Unknown,
            Event::Match(Matched {
                identity_id: "id-ann".into(),
                label: "ann".into(),
                score: 0.81234,
                margin: 0.3,
                hits: Vec::new(),
                aggregate: None,
            }),
        ];
        let lines = audit_lines("door", &ev, false);
        assert_eq!(lines.len(), 1);
        let l = &lines[0];
        assert_eq!(
            (l.actor.as_str(), l.action.as_str(), l.detail.as_deref()),
            ("camera:door", "match", Some("score 0.812"))
        );
        assert_eq!(
            (l.identity.as_deref(), l.label.as_deref()),
            (Some("id-ann"), Some("ann"))
        );
        let trial = audit_lines("door", &ev, true);
        assert_eq!(trial.len(), 1);
        assert_eq!(trial[0].action, "trial-match");
        assert_eq!(
            audit::Event {
                action: "match".into(),
                ..trial[0].clone()
            },
            lines[0],
            "the same entry but for its action"
        );
    }

    #[test]
    fn a_grayscale_match_explains_itself_with_the_grayscale_threshold() {
        // ann enrolled twice; the faces are closest to her second descriptor
        let mut m = matcher_of(
            "explain",
            config(),
            &[("ann", &[[1.0, 0.0], [0.6, 0.8]]), ("bob", &[[0.0, 1.0]])],
        );
        let mut log = Vec::new();
        run(&mut m, &[gray(5, &[0.6, 0.8])], &mut log);
        let out = run(&mut m, &[gray(5, &[0.8, 0.6])], &mut log);
        assert_eq!(out.threshold, 0.6, "the colour threshold in force");
        let Verdict::Matched { events, .. } = out.verdict else {
            panic!("{:?}", out.verdict)
        };
        let [(0, Event::Match(x))] = &events[..] else {
            panic!("{events:?}")
        };
        assert_eq!(x.hits.len(), 2);
        for (h, frame) in x.hits.iter().zip(0..) {
            assert_eq!(h.frame, frame);
            assert!(
                h.grayscale && h.threshold == 0.8 && h.quality == 0.5,
                "{h:?}"
            );
            assert!(h.score >= h.threshold);
            assert_eq!((h.reference, h.references), (1, 2));
        }
        let best = x.best().unwrap();
        assert_eq!((best.frame, best.score), (0, x.score));
        let lines = audit_lines(
            "door",
            &events.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(),
            false,
        );
        assert_eq!(
            lines[0].detail.as_deref(),
            Some(
                format!(
                    "score {:.3}; reference 2 of 2; hits {:.3}, {:.3}; quality 0.50; grayscale; \
                     threshold 0.800",
                    x.score, x.hits[0].score, x.hits[1].score
                )
                .as_str()
            )
        );
        assert_eq!(
            audit::parse_score(lines[0].detail.as_deref().unwrap()),
            Some((x.score * 1000.0).round() / 1000.0)
        );
    }

    #[test]
    fn hits_of_both_modes_each_say_theirs() {
        let hit = |frame, score, grayscale, threshold| crate::engine::matcher::Hit {
            frame,
            score,
            margin: 0.2,
            reference: 0,
            references: 1,
            quality: 0.61,
            grayscale,
            threshold,
        };
        let m = Matched {
            identity_id: "id-ann".into(),
            label: "ann".into(),
            score: 0.9,
            margin: 0.2,
            hits: vec![hit(3, 0.7, false, 0.6), hit(4, 0.9, true, 0.8)],
            aggregate: None,
        };
        assert_eq!(
            match_detail(&m),
            "score 0.900; reference 1 of 1; hits 0.700 colour, 0.900 grayscale; quality 0.61; \
             grayscale; threshold 0.800 (colour 0.600)"
        );
    }

    #[test]
    fn trial_mode_decides_alike_logs_the_match_flagged_and_posts_none() {
        // The same frames through a live and a trial matcher (a stranger beside ann, who stays
        // unknown): the same tags and events.
        let frames = |name: &str| {
            let mut out = Vec::new();
            let mut log = Vec::new();
            let mut m = matcher(name, config());
            for _ in 0..3 {
                let o = run(
                    &mut m,
                    &[
                        face(7, MODEL, &[0.9, 0.1], true),
                        face(9, MODEL, &[-1.0, -1.0], true),
                    ],
                    &mut log,
                );
                let Verdict::Matched { tags, events } = o.verdict else {
                    panic!("{:?}", o.verdict)
                };
                out.push((tags, events));
            }
            (m, out)
        };
        let (mut live, live_frames) = frames("live");
        let (mut trial, trial_frames) = frames("trial");
        assert_eq!(live_frames, trial_frames);
        let events: Vec<(usize, Event)> = live_frames.into_iter().flat_map(|(_, e)| e).collect();
        assert!(
            events.iter().any(|(_, e)| matches!(e, Event::Match(_)))
                && events.iter().any(|(_, e)| matches!(e, Event::Unknown)),
            "{events:?}"
        );

        let posted = live.report("door", events.clone(), false);
        assert_eq!(posted.post, events);
        assert_eq!(posted.audit.len(), 1);
        assert_eq!(posted.audit[0].action, "match");
        assert_eq!(live.counts().trial_matches, 0);

        let held = trial.report("door", events, true);
        assert!(
            held.post.iter().all(|(_, e)| matches!(e, Event::Unknown)) && held.post.len() == 1,
            "only the unknown face is posted: {:?}",
            held.post
        );
        assert_eq!(held.audit.len(), 1);
        assert_eq!(
            (
                held.audit[0].action.as_str(),
                held.audit[0].label.as_deref()
            ),
            ("trial-match", Some("ann"))
        );
        assert_eq!(trial.counts().trial_matches, 1);
    }
}
