//! When does a tracked face need a new descriptor? The per-track cache of `faceembedder`.
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

    /// Whether `track`, seen on `frame` at this size and quality, should get a new descriptor.
    pub fn needs(&self, track: u64, frame: u64, size: f32, quality: f32) -> bool {
        let Some(e) = self.entries.get(&track) else {
            return true;
        };
        let p = &self.policy;
        (p.interval > 0
            && (e.count < p.warmup || frame.saturating_sub(e.frame) >= p.interval as u64))
            || size >= e.size * p.grow
            || size * p.grow <= e.size
            || quality >= e.quality + p.quality_gain
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
        assert!(c.needs(1, 0, 40.0, 0.5));
        c.store(1, 0, 40.0, 0.5, vec![1.0]);
        assert!(!c.needs(1, 100, 45.0, 0.55));
        assert!(c.needs(1, 100, 52.0, 0.5), "grew 1.3x");
        assert!(c.needs(1, 100, 30.0, 0.5), "shrank 1.3x");
        assert!(c.needs(1, 100, 40.0, 0.66), "quality +0.16");
        assert!(c.needs(2, 100, 40.0, 0.5), "other track");
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
        assert!(
            c.needs(1, 1, 40.0, 0.5),
            "warm-up: a second descriptor at once"
        );
        c.store(1, 0, 40.0, 0.5, vec![1.0]);
        assert!(!c.needs(1, 9, 40.0, 0.5));
        assert!(c.needs(1, 10, 40.0, 0.5));
        assert_eq!(c.touch(1, 4).unwrap().descriptor, vec![1.0]);
        c.prune(9);
        assert_eq!(c.len(), 1);
        c.prune(10);
        assert!(c.is_empty());
    }
}
