// SPDX-License-Identifier: MIT
//! When does a tracked face need a new descriptor? The per-track cache of `veilembed`.
//!
//! A track gets a descriptor the first time it passes the quality gates. After that its descriptor is
//! reused until one of these holds:
//! - `interval` > 0 and the track has fewer than `warmup` descriptors: a new face gets a few in a
//!   row, so that the matcher can decide within frames, not seconds;
//! - `interval` > 0 and at least `interval` frames passed since the descriptor was made;
//! - the face's size changed clearly: eye distance ≥ `grow` × the one the descriptor was made at,
//!   or ≤ 1/`grow` of it (a much smaller face may be someone else after a cut);
//! - its quality improved clearly: ≥ the descriptor's quality + `quality_gain`.
//!
//! Besides, `engine::embed_step` gives a fresh descriptor ([`Reason::Verify`]) to every detected
//! face whose track carries a watch-list identity when asked to verify identities (for redaction
//! that spares listed people only on the frames their identity is confirmed).
//!
//! Tracks not seen for `max_age` frames are forgotten.

use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    /// Frames between refreshes; 0 = never refresh on time alone (once per track).
    pub interval: u32,
    /// Descriptors a new track gets on consecutive frames (when `interval` > 0).
    pub warmup: u32,
    pub grow: f32,
    pub quality_gain: f32,
    pub max_age: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            interval: 0,
            warmup: 3,
            grow: 1.3,
            quality_gain: 0.15,
            max_age: 300,
        }
    }
}

/// Why a track gets a new descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The track has none yet.
    New,
    /// One of the first `warmup` descriptors of the track.
    WarmUp,
    /// `interval` frames passed since the last one.
    Interval,
    /// The face grew `grow`× since.
    Grew,
    /// The face shrank `grow`× since.
    Shrank,
    /// Its quality rose by `quality_gain` since.
    Sharper,
    /// Its track carries an identity, verified on every frame the face is detected.
    Verify,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub descriptor: Vec<f32>,
    pub quality: f32,
    /// Eye distance when the descriptor was made.
    pub size: f32,
    /// Frame the descriptor was made on.
    pub frame: u64,
    /// Descriptors made for this track so far.
    pub count: u32,
    last_seen: u64,
}

#[derive(Debug, Default)]
pub struct DescriptorCache {
    policy: Policy,
    entries: HashMap<u64, Entry>,
}

impl DescriptorCache {
    pub fn new(policy: Policy) -> Self {
        DescriptorCache {
            policy,
            entries: HashMap::new(),
        }
    }

    pub fn set_policy(&mut self, policy: Policy) {
        self.policy = policy;
    }

    /// Why `track`, seen on `frame` at this size and quality, should get a new descriptor; `None`
    /// when its last one is still good.
    pub fn needs(&self, track: u64, frame: u64, size: f32, quality: f32) -> Option<Reason> {
        let Some(e) = self.entries.get(&track) else {
            return Some(Reason::New);
        };
        let p = &self.policy;
        if p.interval > 0 && e.count < p.warmup {
            Some(Reason::WarmUp)
        } else if p.interval > 0 && frame.saturating_sub(e.frame) >= p.interval as u64 {
            Some(Reason::Interval)
        } else if size >= e.size * p.grow {
            Some(Reason::Grew)
        } else if size * p.grow <= e.size {
            Some(Reason::Shrank)
        } else if quality >= e.quality + p.quality_gain {
            Some(Reason::Sharper)
        } else {
            None
        }
    }

    /// [`needs`](Self::needs), or [`Reason::Verify`] when the track's identity is to be verified
    /// (`verify`) and nothing else makes the face due.
    pub fn due(
        &self,
        track: u64,
        frame: u64,
        size: f32,
        quality: f32,
        verify: bool,
    ) -> Option<Reason> {
        self.needs(track, frame, size, quality)
            .or(verify.then_some(Reason::Verify))
    }

    /// Marks the track as seen (keeps its entry alive) and returns its descriptor, if any.
    pub fn touch(&mut self, track: u64, frame: u64) -> Option<&Entry> {
        let e = self.entries.get_mut(&track)?;
        e.last_seen = frame;
        Some(e)
    }

    pub fn store(&mut self, track: u64, frame: u64, size: f32, quality: f32, descriptor: Vec<f32>) {
        let count = self.entries.get(&track).map_or(0, |e| e.count) + 1;
        self.entries.insert(
            track,
            Entry {
                descriptor,
                quality,
                size,
                frame,
                count,
                last_seen: frame,
            },
        );
    }

    /// Forgets tracks not seen for `max_age` frames.
    pub fn prune(&mut self, frame: u64) {
        let max_age = self.policy.max_age;
        self.entries
            .retain(|_, e| frame.saturating_sub(e.last_seen) <= max_age);
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_track_unless_it_grows_or_improves() {
        let mut c = DescriptorCache::new(Policy::default());
        assert_eq!(c.needs(1, 0, 40.0, 0.5), Some(Reason::New));
        c.store(1, 0, 40.0, 0.5, vec![1.0]);
        assert_eq!(c.needs(1, 100, 45.0, 0.55), None);
        assert_eq!(c.needs(1, 100, 52.0, 0.5), Some(Reason::Grew));
        assert_eq!(c.needs(1, 100, 30.0, 0.5), Some(Reason::Shrank));
        assert_eq!(c.needs(1, 100, 40.0, 0.66), Some(Reason::Sharper));
        assert_eq!(c.needs(2, 100, 40.0, 0.5), Some(Reason::New), "other track");
    }

    #[test]
    fn a_track_to_verify_is_due_on_every_frame() {
        let mut c = DescriptorCache::new(Policy::default());
        c.store(1, 0, 40.0, 0.5, vec![1.0]);
        assert_eq!(c.due(1, 1, 40.0, 0.5, false), None);
        assert_eq!(c.due(1, 1, 40.0, 0.5, true), Some(Reason::Verify));
        c.store(1, 1, 40.0, 0.5, vec![1.0]);
        assert_eq!(c.due(1, 2, 40.0, 0.5, true), Some(Reason::Verify));
        // the policy's own reasons come first
        assert_eq!(c.due(1, 2, 60.0, 0.5, true), Some(Reason::Grew));
        assert_eq!(c.due(2, 2, 40.0, 0.5, true), Some(Reason::New));
    }

    #[test]
    fn interval_refreshes_and_prune_forgets() {
        let mut c = DescriptorCache::new(Policy {
            interval: 10,
            warmup: 2,
            max_age: 5,
            ..Policy::default()
        });
        c.store(1, 0, 40.0, 0.5, vec![1.0]);
        assert_eq!(
            c.needs(1, 1, 40.0, 0.5),
            Some(Reason::WarmUp),
            "warm-up: a second descriptor at once"
        );
        c.store(1, 0, 40.0, 0.5, vec![1.0]);
        assert_eq!(c.needs(1, 9, 40.0, 0.5), None);
        assert_eq!(c.needs(1, 10, 40.0, 0.5), Some(Reason::Interval));
        assert_eq!(c.touch(1, 4).unwrap().descriptor, vec![1.0]);
        c.prune(9);
        assert_eq!(c.len(), 1);
        c.prune(10);
        assert!(c.is_empty());
    }
}
