// SPDX-License-Identifier: MIT
//! Exact 1:N search over every descriptor of every identity: descriptors prepared once (centred and
//! L2-normalised) into one contiguous row-major matrix, rows of an identity next to each other; a
//! query is one pass of dot products (auto-vectorised) keeping the best identity and the runner-up.

use crate::core::similarity::{Similarity, dot};

use super::Watchlist;

/// An identity as the index knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub id: String,
    pub label: String,
    pub expires_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// Index into [`Index::entries`].
    pub identity: usize,
    pub score: f32,
    /// Score minus the best score of any other identity (the whole score when there is none).
    pub margin: f32,
}

#[derive(Clone, Debug, Default)]
pub struct Index {
    dim: usize,
    rows: Vec<f32>,
    /// Identity of each row.
    owner: Vec<u32>,
    entries: Vec<Entry>,
}

impl Index {
    /// Builds the index of the identities not expired at `now` (unix seconds).
    pub fn build(list: &Watchlist, sim: &Similarity, now: i64) -> Index {
        let mut idx = Index::default();
        for ident in list.identities.iter().filter(|i| !i.expired(now)) {
            let k = idx.entries.len() as u32;
            let mut any = false;
            for d in &ident.descriptors {
                if idx.dim == 0 {
                    idx.dim = d.vector.len();
                }
                if d.vector.len() != idx.dim {
                    continue;
                }
                idx.rows.extend(sim.prepare(&d.vector));
                idx.owner.push(k);
                any = true;
            }
            if any {
                idx.entries.push(Entry {
                    id: ident.id.clone(),
                    label: ident.label.clone(),
                    expires_at: ident.expires_at,
                });
            }
        }
        idx
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The best identity for a prepared query (see [`Similarity::prepare`]), skipping identities
    /// that expired by `now`. `None` for an empty index or a query of another dimension.
    pub fn search(&self, query: &[f32], now: i64) -> Option<Hit> {
        if self.dim == 0 || query.len() != self.dim {
            return None;
        }
        let mut best: Option<(usize, f32)> = None;
        let mut second = f32::NEG_INFINITY;
        let mut current = (u32::MAX, f32::NEG_INFINITY);
        let finish =
            |(who, score): (u32, f32), best: &mut Option<(usize, f32)>, second: &mut f32| {
                if who == u32::MAX
                    || self.entries[who as usize]
                        .expires_at
                        .is_some_and(|t| t <= now)
                {
                    return;
                }
                match best {
                    Some((_, b)) if score <= *b => *second = second.max(score),
                    _ => {
                        if let Some((_, b)) = *best {
                            *second = second.max(b);
                        }
                        *best = Some((who as usize, score));
                    }
                }
            };
        for (row, &who) in self.rows.chunks_exact(self.dim).zip(&self.owner) {
            if who != current.0 {
                finish(current, &mut best, &mut second);
                current = (who, f32::NEG_INFINITY);
            }
            current.1 = current.1.max(dot(row, query));
        }
        finish(current, &mut best, &mut second);
        best.map(|(identity, score)| Hit {
            identity,
            score,
            margin: if second.is_finite() {
                score - second
            } else {
                score
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Descriptor, Identity};
    use super::*;

    fn ident(label: &str, vecs: &[[f32; 3]], expires_at: Option<i64>) -> Identity {
        Identity {
            id: format!("id-{label}"),
            label: label.into(),
            note: None,
            added_by: "t".into(),
            added_at: 0,
            expires_at,
            descriptors: vecs
                .iter()
                .map(|v| Descriptor {
                    model_id: "m".into(),
                    vector: v.to_vec(),
                })
                .collect(),
        }
    }

    fn list() -> Watchlist {
        let mut w = Watchlist::new("m");
        w.identities
            .push(ident("a", &[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], None));
        w.identities.push(ident("b", &[[0.0, 0.0, 1.0]], None));
        w.identities
            .push(ident("old", &[[0.7, 0.7, 0.0]], Some(50)));
        w
    }

    #[test]
    fn best_identity_over_all_its_descriptors_with_margin() {
        let sim = Similarity::cosine();
        let idx = Index::build(&list(), &sim, 0);
        assert_eq!(idx.len(), 3);
        let q = sim.prepare(&[0.8, 0.9, 0.1]);
        let hit = idx.search(&q, 0).unwrap();
        let entry = &idx.entries()[hit.identity];
        assert_eq!(entry.label, "old", "0.7/0.7 is closest at time 0");
        let hit = idx.search(&q, 60).unwrap();
        assert_eq!(
            idx.entries()[hit.identity].label,
            "a",
            "expired identities never match"
        );
        let second = dot(&q, &sim.prepare(&[0.0, 0.0, 1.0]));
        assert!((hit.margin - (hit.score - second)).abs() < 1e-6);
    }

    #[test]
    fn expired_at_build_time_is_left_out() {
        let idx = Index::build(&list(), &Similarity::cosine(), 100);
        assert_eq!(idx.len(), 2);
        assert!(idx.entries().iter().all(|e| e.label != "old"));
    }

    #[test]
    fn empty_and_wrong_dimension() {
        let idx = Index::build(&Watchlist::new("m"), &Similarity::cosine(), 0);
        assert!(idx.search(&[1.0, 0.0, 0.0], 0).is_none());
        let idx = Index::build(&list(), &Similarity::cosine(), 0);
        assert!(idx.search(&[1.0, 0.0], 0).is_none());
    }

    #[test]
    fn single_identity_margin_is_its_score() {
        let mut w = Watchlist::new("m");
        w.identities.push(ident("only", &[[1.0, 0.0, 0.0]], None));
        let sim = Similarity::cosine();
        let hit = Index::build(&w, &sim, 0)
            .search(&sim.prepare(&[1.0, 0.0, 0.0]), 0)
            .unwrap();
        assert!((hit.score - 1.0).abs() < 1e-6 && (hit.margin - 1.0).abs() < 1e-6);
    }
}
