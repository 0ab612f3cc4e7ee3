// SPDX-License-Identifier: MIT
//! The open-set evaluation: K people enrolled from E photos each, every other photo of them and
//! every photo of people not enrolled shown as probes, decided by the same index and rule as
//! `faceveil identify` and the `veilmatch` element (`engine::matcher::decide`). Grayscale faces:
//! ORL s1..s20 (never s21..s40), with the colour test and background photos turned grayscale as
//! further strangers.

use gstfaceveil::engine::cosine::Similarity;
use gstfaceveil::engine::matcher::{Decision, KNOWN_MARGIN, decide};
use gstfaceveil::engine::watchlist::index::{Hit, Index};
use gstfaceveil::engine::watchlist::{Descriptor, Identity, Role, Watchlist};

/// Photos of each person, in order (photo 0 first).
pub type People = Vec<Vec<Vec<f32>>>;

/// One probe's best hit, and who it really is (`None`: a stranger to this gallery).
struct Scored {
    truth: Option<usize>,
    hit: Option<(usize, Hit)>,
}

/// The probes of one gallery: K people from `first` on (cyclically), E photos each.
fn scored(
    people: &People,
    strangers: &[Vec<f32>],
    first: usize,
    k: usize,
    e: usize,
    sim: &Similarity,
) -> Vec<Scored> {
    let n = people.len();
    let enrolled: Vec<usize> = (0..k).map(|i| (first + i) % n).collect();
    let mut list = Watchlist::new();
    for &p in &enrolled {
        list.identities.push(Identity {
            id: format!("s{}", p + 1),
            label: format!("s{}", p + 1),
            note: None,
            added_by: "calibrate".into(),
            added_at: 0,
            expires_at: None,
            suspended: false,
            role: Role::Listed,
            descriptors: people[p][..e]
                .iter()
                .map(|v| Descriptor {
                    model_id: "calibration".into(),
                    vector: v.clone(),
                })
                .collect(),
        });
    }
    let index = Index::build(&list, "calibration", sim, 0);
    let search = |v: &[f32]| {
        index
            .search(&sim.prepare(v), 0)
            .map(|h| (enrolled[h.identity], h))
    };
    let mut out = Vec::new();
    for (p, photos) in people.iter().enumerate() {
        let is_enrolled = enrolled.contains(&p);
        for v in &photos[if is_enrolled { e } else { 0 }..] {
            out.push(Scored {
                truth: is_enrolled.then_some(p),
                hit: search(v),
            });
        }
    }
    for v in strangers {
        out.push(Scored {
            truth: None,
            hit: search(v),
        });
    }
    out
}

/// Outcome counts of one setting.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rates {
    pub strangers: usize,
    pub false_alarms: usize,
    pub genuine: usize,
    pub right: usize,
    pub wrong: usize,
}

impl Rates {
    pub fn false_alarm(&self) -> f64 {
        100.0 * self.false_alarms as f64 / self.strangers.max(1) as f64
    }
    pub fn right(&self) -> f64 {
        100.0 * self.right as f64 / self.genuine.max(1) as f64
    }
    pub fn wrong(&self) -> f64 {
        100.0 * self.wrong as f64 / self.genuine.max(1) as f64
    }
}

/// Every gallery of K people from E photos (one per starting person; one when K is everyone),
/// scored once; then decided at any threshold and margin.
pub struct Setting {
    pub k: usize,
    pub e: usize,
    probes: Vec<Scored>,
}

impl Setting {
    pub fn new(
        people: &People,
        strangers: &[Vec<f32>],
        k: usize,
        e: usize,
        sim: &Similarity,
    ) -> Setting {
        let galleries = if k >= people.len() { 1 } else { people.len() };
        let probes = (0..galleries)
            .flat_map(|first| scored(people, strangers, first, k, e, sim))
            .collect();
        Setting { k, e, probes }
    }

    pub fn rates(&self, threshold: f32, min_margin: f32) -> Rates {
        let mut r = Rates::default();
        for s in &self.probes {
            let said = s.hit.as_ref().and_then(|(who, h)| {
                match decide(
                    h.score,
                    h.margin,
                    h.known.map(|k| k.score),
                    threshold,
                    min_margin,
                    KNOWN_MARGIN,
                ) {
                    Decision::Match => Some(*who),
                    _ => None,
                }
            });
            match s.truth {
                None => {
                    r.strangers += 1;
                    r.false_alarms += said.is_some() as usize;
                }
                Some(t) => {
                    r.genuine += 1;
                    r.right += (said == Some(t)) as usize;
                    r.wrong += (said.is_some() && said != Some(t)) as usize;
                }
            }
        }
        r
    }
}
