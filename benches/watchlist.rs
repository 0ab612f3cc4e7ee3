// SPDX-License-Identifier: MIT
//! Watch-list speed: 1:N match latency per face against 1k, 100k and 1M identities (one descriptor
//! each), and the load time of a 1M-identity list (read + decrypt + decode + index).
//!
//! usage: cargo bench --bench watchlist [-- SIZES...]     (default 1000 100000 1000000)
//! Prints one JSON line per size: the search as the index runs it (`match_ms_*`: from 16,384 rows
//! on, the i8 pre-filter and exact f32 rescoring, on 2 threads from 131,072 rows) beside the plain
//! full f32 scan (`exact_ms_*`), the rows the search scored in f32 per query (`rows_scored_mean`),
//! and the memory the i8 table adds (`prefilter_mb`: rows × (dim + 8) bytes). Every query's hit
//! must be the same, bit for bit, in both (the run stops otherwise; `identical` counts them).
//! Descriptors are random 128-d vectors; half the queries are perturbed copies of enrolled
//! descriptors (they must find their identity), half random vectors that match nobody.

use std::time::Instant;

use gstfaceveil::engine::cosine::Similarity;
use gstfaceveil::engine::watchlist::file::Secret;
use gstfaceveil::engine::watchlist::index::{Hit, Index};
use gstfaceveil::engine::watchlist::store::{load, save};
use gstfaceveil::engine::watchlist::{Descriptor, Identity, Role, Watchlist, now};

/// xorshift64*: a fast deterministic generator, enough for test vectors.
struct Rng(u64);

impl Rng {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        ((self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    }
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000, 100_000, 1_000_000]
    } else {
        sizes
    };
    let dim = 128;
    let model = "dlib_resnet:bench";
    let mean: Vec<f32> = (0..dim).map(|i| (i as f32 * 0.01).sin() * 0.05).collect();
    let sim = Similarity::centred(mean);
    let dir = std::env::temp_dir().join(format!("faceveil-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for n in sizes {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ n as u64);
        let mut list = Watchlist::new();
        list.identities = (0..n)
            .map(|i| Identity {
                id: format!("{i:032x}"),
                label: format!("person-{i}"),
                note: None,
                added_by: "bench".into(),
                added_at: 0,
                expires_at: None,
                suspended: false,
                role: Role::Listed,
                descriptors: vec![Descriptor {
                    model_id: model.into(),
                    vector: (0..dim).map(|_| rng.next_f32()).collect(),
                }],
            })
            .collect();
        let path = dir.join(format!("list-{n}.fvl"));
        let secret = Secret::Key([7u8; 32]);
        save(&path, &mut list, &secret).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();

        let t = Instant::now();
        let loaded = load(&path, &secret).unwrap();
        let t_decode = t.elapsed().as_secs_f64();
        let index = Index::build(&loaded, model, &sim, now());
        let t_load = t.elapsed().as_secs_f64();

        let mut queries: Vec<(Option<usize>, Vec<f32>)> = Vec::new();
        for k in 0..20 {
            let target = (n / 2 + k * 7919) % n;
            let v: Vec<f32> = list.identities[target].descriptors[0]
                .vector
                .iter()
                .map(|x| x + 0.05 * rng.next_f32())
                .collect();
            queries.push((Some(target), sim.prepare(&v)));
            let v: Vec<f32> = (0..dim).map(|_| rng.next_f32()).collect();
            queries.push((None, sim.prepare(&v)));
        }
        let reps = (2_000_000 / n).clamp(queries.len(), 500);
        let (mut ms, mut exact_ms) = (Vec::with_capacity(reps), Vec::with_capacity(reps));
        let mut rows_scored = 0;
        let mut prefiltered = true;
        for r in 0..reps {
            let (target, q) = &queries[r % queries.len()];
            let t = Instant::now();
            let (hit, stats) = index.search_with_stats(q, 0);
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let exact = index.search_exact(q, 0);
            exact_ms.push(t.elapsed().as_secs_f64() * 1e3);
            rows_scored += stats.rows_scored;
            prefiltered &= stats.prefiltered;
            let bits = |h: &Option<Hit>| {
                h.as_ref()
                    .map(|h| (h.identity, h.score.to_bits(), h.margin.to_bits()))
            };
            assert_eq!(
                bits(&hit),
                bits(&exact),
                "query {r}: the search must equal the full scan"
            );
            if let Some(target) = target {
                assert_eq!(
                    hit.map(|h| h.identity),
                    Some(*target),
                    "the perturbed copy must find its identity"
                );
            }
        }
        let summary = |ms: &mut Vec<f64>| {
            ms.sort_by(f64::total_cmp);
            (
                ms.iter().sum::<f64>() / reps as f64,
                ms[reps / 2],
                ms[(reps * 95 / 100).min(reps - 1)],
            )
        };
        let (mean, p50, p95) = summary(&mut ms);
        let (exact_mean, exact_p50, exact_p95) = summary(&mut exact_ms);
        println!(
            "{{\"identities\":{n},\"file_mb\":{:.1},\"load_s\":{t_load:.3},\"decrypt_decode_s\":{t_decode:.3},\
             \"match_ms_mean\":{mean:.3},\"match_ms_p50\":{p50:.3},\"match_ms_p95\":{p95:.3},\
             \"exact_ms_mean\":{exact_mean:.3},\"exact_ms_p50\":{exact_p50:.3},\"exact_ms_p95\":{exact_p95:.3},\
             \"prefiltered\":{prefiltered},\"rows_scored_mean\":{:.1},\"prefilter_mb\":{:.1},\
             \"queries\":{reps},\"identical\":{reps}}}",
            size as f64 / 1e6,
            rows_scored as f64 / reps as f64,
            index.prefilter_bytes() as f64 / 1e6,
        );
        drop((list, loaded, index));
        std::fs::remove_file(&path).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
