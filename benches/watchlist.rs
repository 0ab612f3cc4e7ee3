// SPDX-License-Identifier: MIT
//! Watch-list speed: exact 1:N match latency per face against 1k, 100k and 1M identities (one
//! descriptor each), and the load time of a 1M-identity list (read + decrypt + decode + index).
//!
//! usage: cargo bench --bench watchlist [-- SIZES...]     (default 1000 100000 1000000)
//! Prints one JSON line per size. Descriptors are random 128-d vectors (the search cost does not
//! depend on their values); the query is a perturbed copy of one enrolled descriptor.

use std::time::Instant;

use gstfacewatch::core::similarity::Similarity;
use gstfacewatch::core::watchlist::file::Secret;
use gstfacewatch::core::watchlist::index::Index;
use gstfacewatch::core::watchlist::store::{load, save};
use gstfacewatch::core::watchlist::{Descriptor, Identity, Watchlist, now};

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
    let dir = std::env::temp_dir().join(format!("facewatch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for n in sizes {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ n as u64);
        let mut list = Watchlist::new(model);
        list.identities = (0..n)
            .map(|i| Identity {
                id: format!("{i:032x}"),
                label: format!("person-{i}"),
                note: None,
                added_by: "bench".into(),
                added_at: 0,
                expires_at: None,
                descriptors: vec![Descriptor {
                    model_id: model.into(),
                    vector: (0..dim).map(|_| rng.next_f32()).collect(),
                }],
            })
            .collect();
        let path = dir.join(format!("list-{n}.fwl"));
        let secret = Secret::Key([7u8; 32]);
        save(&path, &mut list, &secret).unwrap();
        let size = std::fs::metadata(&path).unwrap().len();

        let t = Instant::now();
        let loaded = load(&path, &secret).unwrap();
        let t_decode = t.elapsed().as_secs_f64();
        let index = Index::build(&loaded, &sim, now());
        let t_load = t.elapsed().as_secs_f64();

        let target = n / 2;
        let queries: Vec<Vec<f32>> = (0..20)
            .map(|_| {
                let v: Vec<f32> = list.identities[target].descriptors[0]
                    .vector
                    .iter()
                    .map(|x| x + 0.05 * rng.next_f32())
                    .collect();
                sim.prepare(&v)
            })
            .collect();
        let reps = (2_000_000 / n).clamp(3, 500);
        let mut ms = Vec::with_capacity(reps);
        for r in 0..reps {
            let q = &queries[r % queries.len()];
            let t = Instant::now();
            let hit = index.search(q, 0).unwrap();
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(
                hit.identity, target,
                "the perturbed copy must find its identity"
            );
        }
        ms.sort_by(f64::total_cmp);
        println!(
            "{{\"identities\":{n},\"file_mb\":{:.1},\"load_s\":{t_load:.3},\"decrypt_decode_s\":{t_decode:.3},\
             \"match_ms_mean\":{:.3},\"match_ms_p50\":{:.3},\"match_ms_p95\":{:.3},\"queries\":{reps}}}",
            size as f64 / 1e6,
            ms.iter().sum::<f64>() / reps as f64,
            ms[reps / 2],
            ms[(reps * 95 / 100).min(reps - 1)]
        );
        drop((list, loaded, index));
        std::fs::remove_file(&path).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
