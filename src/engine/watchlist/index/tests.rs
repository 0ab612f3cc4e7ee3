// SPDX-License-Identifier: MIT
//! Unit tests of `engine::watchlist::index`: best identity and margin, expiry, and the prefiltered
//! search against the full scan.

use super::super::{Descriptor, Identity, Role};
use super::*;

fn ident(label: &str, vecs: &[[f32; 3]], expires_at: Option<i64>) -> Identity {
    Identity {
        id: format!("id-{label}"),
        label: label.into(),
        note: None,
        added_by: "t".into(),
        added_at: 0,
        expires_at,
        suspended: false,
        role: Role::Listed,
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
    let mut w = Watchlist::new();
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
    let idx = Index::build(&list(), "m", &sim, 0);
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
fn a_hit_names_the_descriptor_of_the_identity_that_scored_it() {
    let sim = Similarity::cosine();
    let idx = Index::build(&list(), "m", &sim, 60);
    // "a" holds [1, 0, 0] then [0, 1, 0]: each query is closest to one of them
    for (q, reference) in [([0.9, 0.1, 0.0], 0), ([0.1, 0.9, 0.0], 1)] {
        let hit = idx.search(&sim.prepare(&q), 60).unwrap();
        assert_eq!(idx.entries()[hit.identity].label, "a");
        assert_eq!((hit.reference, hit.references), (reference, 2), "{q:?}");
        assert_eq!(
            bits(&Some(hit)),
            bits(&idx.search_exact(&sim.prepare(&q), 60))
        );
    }
    let hit = idx.search(&sim.prepare(&[0.0, 0.1, 0.9]), 60).unwrap();
    assert_eq!(idx.entries()[hit.identity].label, "b");
    assert_eq!((hit.reference, hit.references), (0, 1));
}

#[test]
fn expired_at_build_time_is_left_out() {
    let idx = Index::build(&list(), "m", &Similarity::cosine(), 100);
    assert_eq!(idx.len(), 2);
    assert!(idx.entries().iter().all(|e| e.label != "old"));
}

#[test]
fn suspended_is_left_out_until_resumed() {
    let sim = Similarity::cosine();
    let q = sim.prepare(&[0.0, 0.1, 1.0]);
    let mut w = list();
    let b = w.identities.iter_mut().find(|i| i.label == "b").unwrap();
    b.suspended = true;
    let idx = Index::build(&w, "m", &sim, 0);
    assert!(idx.entries().iter().all(|e| e.label != "b"));
    let hit = idx.search(&q, 0).unwrap();
    assert_ne!(idx.entries()[hit.identity].label, "b");
    w.identities[1].suspended = false;
    let idx = Index::build(&w, "m", &sim, 0);
    let hit = idx.search(&q, 0).unwrap();
    assert_eq!(
        idx.entries()[hit.identity].label,
        "b",
        "resumed, it matches"
    );
}

/// `list()` with "k" ([0, 0.6, 0.8]), a known person, and "gone", a known person who expires at
/// 50.
fn with_known() -> Watchlist {
    let mut w = list();
    for (label, v, expires) in [
        ("k", [0.0, 0.6, 0.8], None),
        ("gone", [0.0, 0.0, 1.0], Some(50)),
    ] {
        let mut i = ident(label, &[v], expires);
        i.role = Role::Known;
        w.identities.insert(0, i);
    }
    w
}

#[test]
fn known_people_are_searched_apart_and_never_the_hit() {
    let sim = Similarity::cosine();
    let w = with_known();
    let idx = Index::build(&w, "m", &sim, 60);
    // listed first (in list order), then the known people; "old" and "gone" expired
    let order: Vec<(&str, Role)> = (idx.entries().iter())
        .map(|e| (e.label.as_str(), e.role))
        .collect();
    assert_eq!(
        order,
        [("a", Role::Listed), ("b", Role::Listed), ("k", Role::Known)]
    );
    assert_eq!((idx.len(), idx.listed()), (3, 2));
    // the query is k's own descriptor: k scores 1, yet the hit is the best listed identity, with
    // its margin over the other listed one only
    let q = sim.prepare(&[0.0, 0.6, 0.8]);
    let hit = idx.search(&q, 60).unwrap();
    assert_eq!(idx.entries()[hit.identity].label, "b");
    assert!((hit.score - 0.8).abs() < 1e-6 && (hit.margin - 0.2).abs() < 1e-6);
    let known = hit.known.unwrap();
    assert_eq!(idx.entries()[known.identity].label, "k");
    assert!((known.score - 1.0).abs() < 1e-6);
    assert_eq!(bits(&Some(hit)), bits(&idx.search_exact(&q, 60)));
    // an expired known person is skipped like anyone: at 0, "gone" (1.0 to [0, 0, 1]) is the
    // best known one, after 50 it is not
    let idx = Index::build(&w, "m", &sim, 0);
    let q = sim.prepare(&[0.0, 0.0, 1.0]);
    let best_known = |now| {
        let k = idx.search(&q, now).unwrap().known.unwrap();
        idx.entries()[k.identity].label.clone()
    };
    assert_eq!((best_known(0), best_known(60)), ("gone".into(), "k".into()));
    // no known person not expired: none beside the hit
    let mut only_gone = w.clone();
    only_gone.identities.retain(|i| i.label != "k");
    let idx = Index::build(&only_gone, "m", &sim, 0);
    assert_eq!(idx.search(&q, 60).unwrap().known, None);
    // a suspended known person is not in the index
    let mut w2 = w.clone();
    w2.identities
        .iter_mut()
        .for_each(|i| i.suspended = i.known());
    let idx = Index::build(&w2, "m", &sim, 0);
    assert!(idx.entries().iter().all(|e| e.role == Role::Listed));
    assert_eq!(idx.search(&q, 0).unwrap().known, None);
    // known people only: nobody to be a hit for
    let mut known_only = w.clone();
    known_only.identities.retain(Identity::known);
    let idx = Index::build(&known_only, "m", &sim, 0);
    assert_eq!((idx.len(), idx.listed()), (2, 0));
    assert_eq!(idx.search(&q, 0), None);
    assert_eq!(idx.search_exact(&q, 0), None);
}

#[test]
fn empty_and_wrong_dimension() {
    let idx = Index::build(&Watchlist::new(), "m", &Similarity::cosine(), 0);
    assert!(idx.search(&[1.0, 0.0, 0.0], 0).is_none());
    let idx = Index::build(&list(), "m", &Similarity::cosine(), 0);
    assert!(idx.search(&[1.0, 0.0], 0).is_none());
}

#[test]
fn single_identity_margin_is_its_score() {
    let mut w = Watchlist::new();
    w.identities.push(ident("only", &[[1.0, 0.0, 0.0]], None));
    let sim = Similarity::cosine();
    let hit = Index::build(&w, "m", &sim, 0)
        .search(&sim.prepare(&[1.0, 0.0, 0.0]), 0)
        .unwrap();
    assert!((hit.score - 1.0).abs() < 1e-6 && (hit.margin - 1.0).abs() < 1e-6);
}

#[test]
fn an_index_holds_one_models_descriptors_and_counts_who_has_none() {
    let sim = Similarity::cosine();
    let mut w = list();
    // a 2-d model "n": a has it (pointing where its "m" rows do not), b has only "m"
    w.identities[0].descriptors.push(Descriptor {
        model_id: "n".into(),
        vector: vec![0.0, 1.0],
    });
    let n = Index::build(&w, "n", &sim, 0);
    assert_eq!(n.len(), 1, "only a has descriptors of n");
    assert_eq!(
        n.without_model(),
        2,
        "b and old (not expired at 0) cannot match under n"
    );
    let hit = n.search(&sim.prepare(&[0.0, 1.0]), 0).unwrap();
    assert_eq!(n.entries()[hit.identity].label, "a");
    assert!((hit.score - 1.0).abs() < 1e-6);
    assert!(
        n.search(&sim.prepare(&[1.0, 0.0, 0.0]), 0).is_none(),
        "m's rows are not in n's index"
    );
    // under m, a's n descriptor is left out (a 2-d row would not even fit)
    let m = Index::build(&w, "m", &sim, 100);
    assert_eq!((m.len(), m.without_model()), (2, 0));
    assert_eq!(Index::build(&w, "n", &sim, 100).without_model(), 1);
    // suspended people are not counted: they match under no model
    w.identities[1].suspended = true;
    assert_eq!(Index::build(&w, "n", &sim, 100).without_model(), 0);
}
/// xorshift64*: deterministic test vectors.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in [-0.5, 0.5).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn vector(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| self.unit()).collect()
    }
}

/// `n` identities of 1 to 3 descriptors: random, some exact copies of earlier descriptors
/// (tied scores), some near copies; some expire at time 50 (before the searches at 100), some
/// at 150, some had expired at build time (0). With `known_every` k > 0, every kth is a known
/// person.
fn random_list(rng: &mut Rng, n: usize, dim: usize, known_every: usize) -> Watchlist {
    let mut w = Watchlist::new();
    let mut all: Vec<Vec<f32>> = Vec::new();
    for i in 0..n {
        let descriptors = (0..1 + rng.below(3))
            .map(|_| {
                let v = match rng.below(10) {
                    0 if !all.is_empty() => all[rng.below(all.len())].clone(),
                    1 if !all.is_empty() => all[rng.below(all.len())]
                        .iter()
                        .map(|x| x + 1e-6 * rng.unit())
                        .collect(),
                    _ => rng.vector(dim),
                };
                all.push(v.clone());
                Descriptor {
                    model_id: "m".into(),
                    vector: v,
                }
            })
            .collect();
        let expires_at = match rng.below(10) {
            0 => Some(50),
            1 => Some(150),
            2 => Some(-1),
            _ => None,
        };
        w.identities.push(Identity {
            id: format!("id-{i}"),
            label: format!("p{i}"),
            note: None,
            added_by: "t".into(),
            added_at: 0,
            expires_at,
            suspended: false,
            role: match known_every > 0 && i % known_every == known_every / 2 {
                true => Role::Known,
                false => Role::Listed,
            },
            descriptors,
        });
    }
    w
}

/// A hit as bits, with the descriptor that made it and the best known person.
type Bits = (usize, u32, u32, u32, u32, Option<(usize, u32)>);

fn bits(h: &Option<Hit>) -> Option<Bits> {
    h.as_ref().map(|h| {
        (
            h.identity,
            h.score.to_bits(),
            h.margin.to_bits(),
            h.reference,
            h.references,
            h.known.map(|k| (k.identity, k.score.to_bits())),
        )
    })
}

/// Queries against `list`: random vectors, copies of enrolled descriptors (expired ones too),
/// perturbed copies, and (unprepared) scaled copies.
fn queries(rng: &mut Rng, list: &Watchlist, sim: &Similarity, n: usize) -> Vec<Vec<f32>> {
    let dim = list.identities[0].descriptors[0].vector.len();
    (0..n)
        .map(|k| {
            let ident = &list.identities[rng.below(list.identities.len())];
            let d = &ident.descriptors[rng.below(ident.descriptors.len())].vector;
            match k % 5 {
                0 => sim.prepare(&rng.vector(dim)),
                1 => sim.prepare(d),
                2 => sim.prepare(&d.iter().map(|x| x + 0.05 * rng.unit()).collect::<Vec<_>>()),
                3 => sim.prepare(&d.iter().map(|x| x + 0.3 * rng.unit()).collect::<Vec<_>>()),
                _ => {
                    let f = [37.0, 1e-3, 1e4][rng.below(3)];
                    sim.prepare(d).iter().map(|x| x * f).collect()
                }
            }
        })
        .collect()
}

/// The pre-filtered search against the full scan on random lists; returns the rows and the rows
/// scored in f32 per query, on average.
/// Every `known_every`th identity is a known person (none for 0).
fn same_as_full_scan(
    seed: u64,
    identities: usize,
    dim: usize,
    n_queries: usize,
    known_every: usize,
) -> (usize, f64) {
    let mut rng = Rng(seed);
    let list = random_list(&mut rng, identities, dim, known_every);
    let sim = Similarity::centred(rng.vector(dim).iter().map(|x| x * 0.1).collect());
    let idx = Index::build_with(&list, "m", &sim, 0, 1);
    assert!(idx.prefilter_bytes() == idx.owner.len() * (dim + 8));
    let mut scored = 0;
    for (k, q) in queries(&mut rng, &list, &sim, n_queries).iter().enumerate() {
        let exact = idx.search_exact(q, 100);
        assert!(exact.is_some());
        assert_eq!(
            exact.as_ref().unwrap().known.is_some(),
            known_every > 0,
            "a known person beside the listed hit, when there are known people"
        );
        for threads in [1, 2, 3] {
            let (hit, stats) = idx.search_threads(q, 100, threads);
            assert_eq!(bits(&hit), bits(&exact), "query {k}, {threads} threads");
            assert!(stats.prefiltered);
            if threads == 1 {
                scored += stats.rows_scored;
            }
        }
        assert_eq!(bits(&idx.search(q, 100)), bits(&exact));
    }
    (idx.owner.len(), scored as f64 / n_queries as f64)
}

#[test]
fn prefiltered_search_equals_the_full_scan_bit_for_bit() {
    let (rows, scored) = same_as_full_scan(0x5eed, 1500, 128, 150, 0);
    assert!(rows > 2500);
    assert!(
        scored < rows as f64 * 0.02,
        "{scored} of {rows} rows scored"
    );
    // Another dimension: the general (not unrolled) dot product, with a tail.
    let (rows, scored) = same_as_full_scan(0xd1a, 400, 37, 60, 0);
    assert!(scored < rows as f64 * 0.2, "{scored} of {rows} rows scored");
    // Known people among them (one in 7, one in 2): their best is exact too, and found as cheaply.
    let (rows, scored) = same_as_full_scan(0x5eed, 1500, 128, 150, 7);
    assert!(
        scored < rows as f64 * 0.03,
        "{scored} of {rows} rows scored"
    );
    same_as_full_scan(0xd1a, 400, 37, 60, 2);
}

#[test]
fn ties_go_to_the_first_identity_with_a_zero_margin() {
    let mut rng = Rng(7);
    let mut list = random_list(&mut rng, 300, 128, 0);
    for i in &mut list.identities {
        i.expires_at = None;
    }
    let twin = list.identities[200].descriptors[0].clone();
    list.identities[100].descriptors.push(twin.clone());
    list.identities[250].descriptors = vec![twin.clone()];
    let sim = Similarity::cosine();
    let idx = Index::build_with(&list, "m", &sim, 0, 1);
    let q = sim.prepare(&twin.vector);
    let exact = idx.search_exact(&q, 0).unwrap();
    assert_eq!((exact.identity, exact.margin), (100, 0.0));
    let (hit, stats) = idx.search_threads(&q, 0, 2);
    assert_eq!(bits(&hit), bits(&Some(exact)));
    assert!(stats.prefiltered && stats.rows_scored < 20, "{stats:?}");
}

#[test]
fn degenerate_queries() {
    let mut rng = Rng(11);
    let list = random_list(&mut rng, 200, 128, 5);
    let sim = Similarity::cosine();
    let idx = Index::build_with(&list, "m", &sim, 0, 1);
    // Zero: every score is 0, nothing can be ruled out.
    let zero = vec![0.0; 128];
    let (hit, stats) = idx.search_threads(&zero, 100, 2);
    assert_eq!(bits(&hit), bits(&idx.search_exact(&zero, 100)));
    assert!(stats.prefiltered);
    assert_eq!(stats.rows_scored, idx.scan_exact(&zero, 100).1.rows_scored);
    // Not finite, or of a magnitude the bound does not cover: the full scan.
    let mut nan = sim.prepare(&rng.vector(128));
    nan[3] = f32::NAN;
    let huge: Vec<f32> = rng.vector(128).iter().map(|x| x * 1e30).collect();
    for q in [nan, huge] {
        let (hit, stats) = idx.search_threads(&q, 100, 2);
        assert_eq!(bits(&hit), bits(&idx.search_exact(&q, 100)));
        assert!(!stats.prefiltered);
    }
    assert_eq!(idx.search_threads(&[1.0; 5], 100, 2).0, None);
}

#[test]
fn bounds_hold_when_rounding_errors_line_up() {
    let mut rng = Rng(3);
    for dim in [128, 37] {
        for _ in 0..300 {
            let r = Similarity::cosine().prepare(&rng.vector(dim));
            let codes = Codes::new(&r, dim).unwrap();
            let s = f32::from_le_bytes(codes.data[dim..dim + 4].try_into().unwrap());
            // The query leans towards the row's own rounding errors, the worst case for the
            // row's half of the bound, at a scale of its own.
            let q: Vec<f32> = (r.iter().zip(&codes.data))
                .map(|(x, &b)| {
                    let e = x - s * (b as i8) as f32;
                    (e.signum() * (0.5 + rng.unit()) + 0.3 * x) * 3.0
                })
                .collect();
            for q in [q.clone(), r.clone(), q.iter().map(|x| -x).collect()] {
                let code = QueryCode::new(&q).unwrap();
                let d = dot(&r, &q);
                let ((lo, up), (lo0, up0)) = (
                    code.bounds::<0>(&codes.data),
                    code.bounds::<128>(&codes.data),
                );
                assert!(lo <= d && d <= up, "{lo} <= {d} <= {up}");
                assert_eq!((lo.to_bits(), up.to_bits()), (lo0.to_bits(), up0.to_bits()));
                let scale: f32 = q.iter().map(|x| x * x).sum::<f32>().sqrt();
                assert!(up - lo < 0.1 * scale, "loose bound: {lo} .. {up}");
            }
        }
    }
}

#[test]
fn small_indexes_have_no_prefilter_table() {
    let idx = Index::build(&list(), "m", &Similarity::cosine(), 0);
    assert_eq!(idx.prefilter_bytes(), 0);
    let (_, stats) = idx.search_with_stats(&[1.0, 0.0, 0.0], 0);
    assert_eq!(
        stats,
        SearchStats {
            prefiltered: false,
            rows_scored: 4
        }
    );
}
