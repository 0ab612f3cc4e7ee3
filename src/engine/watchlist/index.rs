// SPDX-License-Identifier: MIT
//! Exact 1:N search over every descriptor of one embedder model of every identity (a list holds
//! descriptors of several models; an index is for one). Descriptors are prepared once (centred
//! and L2-normalised) into one contiguous row-major f32 matrix, rows of an identity next to each
//! other. An identity scores the max over its rows of the f32 [`dot`] with the query; the answer is
//! the best listed identity (the first in index order on a tie) and its margin over the best other
//! listed one, beside the best known person ([`Role::Known`](super::Role::Known), never a match:
//! see [`crate::engine::matcher::decide`]) and their score. Listed identities come first in the
//! index, known people after them, so that each role's rows are one range. Expired identities are
//! skipped, and suspended ones are not in the index at all.
//!
//! A small index is scanned in full ([`Index::search_exact`]). That scan reads 4 × dim bytes per
//! row and query (512 MB at a million 128-d rows: it runs at memory speed), so from
//! [`QUANTISE_MIN_ROWS`] rows on the index also keeps each row r quantised to i8 with its own scale,
//! s_r = max|r_i| / 127 and b_i = round(r_i / s_r), beside s_r and ‖b‖₁ (dim + 8 bytes a row, the
//! f32 rows stay), and a query goes in two steps:
//!
//! 1. Pre-filter, on the i8 table (a quarter of the bytes; split over two threads on a large
//!    index). The query is quantised the same way (s_q, a_i = round(q_i / s_q)). A row's
//!    approximate score is s_q·s_r·(a·b), a·b an exact integer dot product, and
//!
//!    |q·r − s_q·s_r·(a·b)| ≤ s_r·(‖q‖₁ + s_q·‖b‖₁) / 2
//!
//!    because q·r − s_q·s_r·(a·b) = s_r·Σ(q_i − s_q·a_i)·b_i + Σq_i·(r_i − s_r·b_i) and every
//!    rounding error is at most half a step (s_q/2, s_r/2). Widened by what the f32 [`dot`] can
//!    differ from the real q·r (at most (dim + 32)·2⁻²⁴·Σ|q_i·r_i| ≤ that · ‖q‖₁ · 127·s_r) and by
//!    a relative 10⁻³ for the f32 arithmetic of the bound itself (which needs ~10⁻⁴), this gives
//!    each row a lower and an upper bound on the very f32 score the full scan computes, and each
//!    identity the max of its rows' bounds. T is the second largest lower bound over distinct
//!    listed identities not expired. Over the known people's rows, T_k is the largest lower bound
//!    of a known person not expired.
//! 2. Rescoring: every listed identity with a row whose upper bound reaches T, and every known
//!    person with one that reaches T_k, and only those, is scored with the f32 [`dot`] over all its
//!    rows, in index order, by the same code as the full scan.
//!
//! Why that is exact: a listed identity whose upper bound is below T scores less than two other
//! live listed identities (the two whose lower bounds reach T), so it is neither the best nor the
//! runner-up and plays no part in the tie rule (it is strictly below the best). A known person
//! whose upper bound is below T_k scores less than the known person whose lower bound is T_k, so
//! is not the best known one either. Leaving them out changes neither the best identities nor the
//! best score of the others, and the scores kept are the very same f32 numbers, so
//! [`Index::search`] returns the same [`Hit`], bit for bit, as [`Index::search_exact`].
//! Queries or rows the bound does not cover (not finite, or of a magnitude far outside a prepared
//! descriptor's) take the full scan.

use std::ops::Range;
use std::sync::OnceLock;

use crate::engine::cosine::{Similarity, dot};

use super::{Role, Watchlist};

/// Rows from which [`Index::build`] adds the i8 table and searches pre-filter on it.
pub const QUANTISE_MIN_ROWS: usize = 16_384;
/// Rows from which the pre-filter pass is split over threads.
const PARALLEL_MIN_ROWS: usize = 131_072;
/// Threads of one pre-filter pass at most.
const MAX_THREADS: usize = 2;
/// Largest dimension quantised: |a·b| ≤ dim·127² then stays below 2²⁴, exact in f32.
const QUANTISE_MAX_DIM: usize = 1024;
/// Largest |r_i| of a non-zero row quantised must lie in this range (a prepared row has
/// max |r_i| ≥ 1/√dim), and a query's in [`QUERY_RANGE`]: the bound's f32 arithmetic then neither
/// overflows nor underflows.
const ROW_RANGE: Range<f32> = 1e-6..1e6;
/// See [`ROW_RANGE`].
const QUERY_RANGE: Range<f32> = 1e-12..1e12;
/// Relative widening of the error bound, for the f32 arithmetic that computes it.
const BOUND_WIDEN: f32 = 1.0 + 1e-3;
/// Rows a pre-filter pass keeps as candidates before it drops those below its current T.
const CANDIDATES: usize = 1024;

/// An identity as the index knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub id: String,
    pub label: String,
    pub expires_at: Option<i64>,
    pub role: Role,
}

/// What a search found: the best listed identity (the only ones a match can be for), and the best
/// known person.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    /// Index into [`Index::entries`]: a listed identity.
    pub identity: usize,
    pub score: f32,
    /// Score minus the best score of any other listed identity (the whole score when there is
    /// none).
    pub margin: f32,
    /// Which of the identity's descriptors in the index scored `score`: its position among them
    /// (in enrolment order, from 0; the first on a tie).
    pub reference: u32,
    /// How many descriptors of the identity the index holds.
    pub references: u32,
    /// The known person who scored best (the first in index order on a tie), if the index holds
    /// one not expired.
    pub known: Option<Known>,
}

/// The known person closest to a query.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Known {
    /// Index into [`Index::entries`]: a known person.
    pub identity: usize,
    pub score: f32,
}

/// How a search went: for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Whether the i8 pre-filter ran (else every row of a live identity was scored).
    pub prefiltered: bool,
    /// Rows scored exactly (f32).
    pub rows_scored: usize,
}

#[derive(Clone, Debug, Default)]
pub struct Index {
    dim: usize,
    rows: Vec<f32>,
    /// Identity of each row.
    owner: Vec<u32>,
    entries: Vec<Entry>,
    /// The listed identities are `entries[..listed]`, their rows `rows[..listed_rows]` (by row);
    /// the known people follow.
    listed: usize,
    listed_rows: usize,
    /// The i8 table, from [`QUANTISE_MIN_ROWS`] rows on.
    codes: Option<Codes>,
    /// Identities that may match (neither suspended nor expired at build) but have no descriptor
    /// of the index's model: they can never match under it.
    without_model: usize,
}

/// Every row quantised to i8 with its own scale, one record of dim + 8 bytes a row (the codes b,
/// then s_r and ‖b‖₁ as little-endian f32), so that the pre-filter reads one stream.
#[derive(Clone, Debug)]
struct Codes {
    data: Vec<u8>,
}

impl Codes {
    /// `None` when a row is not finite or of a magnitude outside [`ROW_RANGE`] (never so for
    /// prepared descriptors), or the dimension is above [`QUANTISE_MAX_DIM`].
    fn new(rows: &[f32], dim: usize) -> Option<Codes> {
        if dim == 0 || dim > QUANTISE_MAX_DIM {
            return None;
        }
        let mut data = Vec::with_capacity(rows.len() / dim * (dim + 8));
        for row in rows.chunks_exact(dim) {
            let (s, b) = quantise(row, &ROW_RANGE)?;
            let mut l1 = 0;
            data.extend(b.map(|b| {
                l1 += b.unsigned_abs() as u32;
                b as u8
            }));
            data.extend(s.to_le_bytes());
            data.extend((l1 as f32).to_le_bytes());
        }
        Some(Codes { data })
    }
}

/// `v` quantised to i8: s = max|v_i| / 127 and b_i = round(v_i / s) (all 0 when `v` is), or `None`
/// when `v` is not finite or its largest magnitude is neither 0 nor in `range`.
fn quantise<'a>(v: &'a [f32], range: &Range<f32>) -> Option<(f32, impl Iterator<Item = i8> + 'a)> {
    if !v.iter().all(|x| x.is_finite()) {
        return None;
    }
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    if max != 0.0 && !range.contains(&max) {
        return None;
    }
    let s = max / 127.0;
    // Adding and taking away 1.5·2²³ rounds an f32 of magnitude below 2²² to the nearest integer
    // (ties to even): plain arithmetic that vectorises, where `round` is a library call.
    const ROUND: f32 = 12_582_912.0;
    let b = v.iter().map(move |x| {
        if s == 0.0 {
            0
        } else {
            ((x / s + ROUND) - ROUND).clamp(-127.0, 127.0) as i8
        }
    });
    Some((s, b))
}

/// A query as the pre-filter uses it: its i8 code and the factors of the row bounds, so that for a
/// row (b, s_r, ‖b‖₁) the score lies within s_r·(sq·(a·b)) ± s_r·(c0 + c1·‖b‖₁).
struct QueryCode {
    /// The i8 code, widened to i16 once for the dot products.
    a: Vec<i16>,
    sq: f32,
    c0: f32,
    c1: f32,
}

impl QueryCode {
    fn new(query: &[f32]) -> Option<QueryCode> {
        let (sq, a) = quantise(query, &QUERY_RANGE)?;
        let l1: f32 = query.iter().map(|x| x.abs()).sum();
        // The f32 dot's own error: at most (dim + 32)·2⁻²⁴·Σ|q_i·r_i|, and
        // Σ|q_i·r_i| ≤ ‖q‖₁·max|r_i| ≤ ‖q‖₁·127·s_r (see the module notes).
        let dot_err = (query.len() as f32 + 32.0) * (f32::EPSILON / 2.0) * 127.01;
        Some(QueryCode {
            a: a.map(i16::from).collect(),
            sq,
            c0: BOUND_WIDEN * l1 * (0.5 + dot_err),
            c1: BOUND_WIDEN * sq * 0.5,
        })
    }

    /// Lower and upper bounds on the f32 [`dot`] of the query with the row whose record (codes,
    /// s_r, ‖b‖₁) is `record`; `D` as in [`dot_i8`].
    #[inline(always)]
    fn bounds<const D: usize>(&self, record: &[u8]) -> (f32, f32) {
        let (b, meta) = record.split_at(record.len() - 8);
        let s = f32::from_le_bytes([meta[0], meta[1], meta[2], meta[3]]);
        let l1 = f32::from_le_bytes([meta[4], meta[5], meta[6], meta[7]]);
        let approx = s * (self.sq * dot_i8::<D>(&self.a, b) as f32);
        let err = s * (self.c0 + self.c1 * l1);
        (approx - err, approx + err)
    }
}

/// The best identity and the best score of any other one, fed live identities in index order;
/// the full scan and the rescoring after the pre-filter both rank with it.
struct Ranking {
    /// Identity, its score, and which of how many of its rows scored it.
    best: Option<(usize, f32, (u32, u32))>,
    second: f32,
}

impl Ranking {
    fn new() -> Ranking {
        Ranking {
            best: None,
            second: f32::NEG_INFINITY,
        }
    }

    /// Identity `who` scored `score` with its row `reference` of `references`.
    fn offer(&mut self, who: usize, (score, reference, references): (f32, u32, u32)) {
        match self.best {
            Some((_, b, _)) if score <= b => self.second = self.second.max(score),
            _ => {
                if let Some((_, b, _)) = self.best {
                    self.second = self.second.max(b);
                }
                self.best = Some((who, score, (reference, references)));
            }
        }
    }

    /// The hit of the listed identities ranked by `self`, with the best of the known people
    /// ranked by `known`.
    fn hit(self, known: Ranking) -> Option<Hit> {
        let second = self.second;
        self.best
            .map(|(identity, score, (reference, references))| Hit {
                identity,
                score,
                margin: if second.is_finite() {
                    score - second
                } else {
                    score
                },
                reference,
                references,
                known: known
                    .best
                    .map(|(identity, score, _)| Known { identity, score }),
            })
    }
}

/// The two best lower bounds of distinct live identities seen so far, best first; the second one is
/// T for the listed identities' rows seen so far, the first T_k for the known people's (each only
/// grows).
#[derive(Clone, Copy)]
struct Top([(f32, u32); 2]);

/// Which of a [`Top`]'s bounds is the floor of a role's rows: the second best for listed
/// identities (T), the best for known people (T_k).
fn rank_of(role: Role) -> usize {
    match role {
        Role::Listed => 1,
        Role::Known => 0,
    }
}

impl Top {
    /// None seen: identity `u32::MAX`, bound −∞.
    const NONE: Top = Top([(f32::NEG_INFINITY, u32::MAX); 2]);

    /// The `k`th best lower bound (from 0).
    fn floor(&self, k: usize) -> f32 {
        self.0[k].0
    }

    /// Takes in a lower bound `lo` of identity `who` above the current second best (skipped when
    /// expired by `now`).
    #[inline(never)]
    fn raise(&mut self, lo: f32, who: u32, index: &Index, now: i64) {
        let top = &mut self.0;
        if who == top[0].1 {
            top[0].0 = top[0].0.max(lo);
            return;
        }
        if who != top[1].1 {
            if index.expired(who, now) {
                return;
            }
            top[1].1 = who;
        }
        top[1].0 = lo;
        if top[1].0 > top[0].0 {
            top.swap(0, 1);
        }
    }
}

/// What a pre-filter pass over some rows of one role leaves: their [`Top`], and the rows whose
/// upper bound reached the floor (T or T_k) as it stood then, in row order.
struct Scan {
    top: Top,
    /// Which of `top`'s bounds is the floor ([`rank_of`]).
    k: usize,
    candidates: Vec<(usize, f32)>,
    limit: usize,
}

impl Scan {
    /// A pass whose floor is its [`Top`]'s `k`th best bound ([`rank_of`]).
    fn new(k: usize) -> Scan {
        Scan {
            top: Top::NONE,
            k,
            candidates: Vec::with_capacity(CANDIDATES),
            limit: CANDIDATES,
        }
    }

    fn floor(&self) -> f32 {
        self.top.floor(self.k)
    }

    /// Keeps `row` when its upper bound `up` reaches the current floor.
    #[inline(always)]
    fn keep(&mut self, row: usize, up: f32) {
        if up >= self.floor() {
            self.candidates.push((row, up));
            if self.candidates.len() >= self.limit {
                self.prune();
            }
        }
    }

    /// Drops the rows below the current floor (they pile up while it is still low).
    #[cold]
    #[inline(never)]
    fn prune(&mut self) {
        let floor = self.floor();
        self.candidates.retain(|&(_, u)| u >= floor);
        if self.candidates.len() * 2 > self.limit {
            self.limit *= 2;
        }
    }
}

/// Cores this process may use (read once: the standard library reads cgroup files for it).
fn parallelism() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

impl Index {
    /// Builds the index of the descriptors of embedder model `model` of the identities active at
    /// `now` (unix seconds): not expired, not suspended
    /// ([`Identity::active`](super::Identity::active)), the listed ones first, then the known
    /// people. One that expires later is skipped by the searches from then on; one without
    /// descriptors of `model` is left out (and counted, [`Index::without_model`]).
    pub fn build(list: &Watchlist, model: &str, sim: &Similarity, now: i64) -> Index {
        Index::build_with(list, model, sim, now, QUANTISE_MIN_ROWS)
    }

    /// [`Index::build`], with the i8 table from `quantise_min_rows` rows on.
    fn build_with(
        list: &Watchlist,
        model: &str,
        sim: &Similarity,
        now: i64,
        quantise_min_rows: usize,
    ) -> Index {
        let mut idx = Index::default();
        for role in [Role::Listed, Role::Known] {
            if role == Role::Known {
                (idx.listed, idx.listed_rows) = (idx.entries.len(), idx.owner.len());
            }
            for ident in (list.identities.iter()).filter(|i| i.role == role && i.active(now)) {
                let k = idx.entries.len() as u32;
                let mut any = false;
                for d in ident.descriptors.iter().filter(|d| d.model_id == model) {
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
                        role,
                    });
                } else if !ident.has_model(model) {
                    idx.without_model += 1;
                }
            }
        }
        if idx.owner.len() >= quantise_min_rows {
            idx.codes = Codes::new(&idx.rows, idx.dim);
        }
        idx
    }

    /// The people who may match (neither suspended nor expired when the index was built) but
    /// have no descriptor of its model: they never match under it.
    pub fn without_model(&self) -> usize {
        self.without_model
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

    /// How many of [`Index::entries`] are listed identities (the first ones; known people follow).
    pub fn listed(&self) -> usize {
        self.listed
    }

    /// Bytes the i8 pre-filter table takes (rows × (dim + 8); 0 below [`QUANTISE_MIN_ROWS`] rows).
    pub fn prefilter_bytes(&self) -> usize {
        self.codes.as_ref().map_or(0, |c| c.data.len())
    }

    /// The best listed identity for a prepared query (see [`Similarity::prepare`]), with the best
    /// known person, skipping identities that expired by `now`. `None` for an index without a
    /// listed identity or a query of another dimension. The same
    /// answer as [`Index::search_exact`], bit for bit, pre-filtered when the index is large (see
    /// the module notes).
    pub fn search(&self, query: &[f32], now: i64) -> Option<Hit> {
        self.search_with_stats(query, now).0
    }

    /// [`Index::search`], and how it went.
    pub fn search_with_stats(&self, query: &[f32], now: i64) -> (Option<Hit>, SearchStats) {
        let threads = if self.owner.len() >= PARALLEL_MIN_ROWS {
            parallelism().min(MAX_THREADS)
        } else {
            1
        };
        self.search_threads(query, now, threads)
    }

    /// The full scan: every row of every live identity scored with the f32 [`dot`].
    pub fn search_exact(&self, query: &[f32], now: i64) -> Option<Hit> {
        self.scan_exact(query, now).0
    }

    /// [`Index::search_with_stats`] with the pre-filter pass on `threads` threads.
    fn search_threads(
        &self,
        query: &[f32],
        now: i64,
        threads: usize,
    ) -> (Option<Hit>, SearchStats) {
        if self.dim == 0 || query.len() != self.dim {
            return (None, SearchStats::default());
        }
        let Some((codes, code)) = self.codes.as_ref().zip(QueryCode::new(query)) else {
            return self.scan_exact(query, now);
        };
        let listed_rows = 0..self.listed_rows;
        let known_rows = self.listed_rows..self.owner.len();
        let scans = [
            self.prefilter(codes, &code, listed_rows, now, threads, Role::Listed),
            self.prefilter(codes, &code, known_rows, now, threads, Role::Known),
        ];
        let mut stats = SearchStats {
            prefiltered: true,
            rows_scored: 0,
        };
        let [listed, known] = scans.map(|scans| self.rescore(&scans, query, now, &mut stats));
        (listed.hit(known), stats)
    }

    /// The rescoring step after the pre-filter passes over the rows of one role: every identity
    /// with a candidate row that reaches the role's floor over all the passes, scored and ranked.
    fn rescore(&self, scans: &[Scan], query: &[f32], now: i64, stats: &mut SearchStats) -> Ranking {
        let mut rank = Ranking::new();
        let Some(k) = scans.first().map(|s| s.k) else {
            return rank;
        };
        // The floor over all the rows: of the passes' best two (distinct identities, as the
        // passes split at identity boundaries).
        let mut top = Top::NONE;
        for &(lo, who) in scans.iter().flat_map(|s| &s.top.0) {
            if who != u32::MAX && lo > top.floor(1) {
                top.raise(lo, who, self, now);
            }
        }
        let t = top.floor(k);
        let mut last = u32::MAX;
        for &(row, _) in scans
            .iter()
            .flat_map(|s| &s.candidates)
            .filter(|c| c.1 >= t)
        {
            let who = self.owner[row];
            if who == last {
                continue;
            }
            last = who;
            if self.expired(who, now) {
                continue;
            }
            let rows = self.rows_of(row);
            stats.rows_scored += rows.len();
            rank.offer(who as usize, self.score(rows, query));
        }
        rank
    }

    fn scan_exact(&self, query: &[f32], now: i64) -> (Option<Hit>, SearchStats) {
        let mut stats = SearchStats::default();
        if self.dim == 0 || query.len() != self.dim {
            return (None, stats);
        }
        let (mut listed, mut known) = (Ranking::new(), Ranking::new());
        let mut start = 0;
        for run in self.owner.chunk_by(|a, b| a == b) {
            let rows = start..start + run.len();
            start = rows.end;
            if !self.expired(run[0], now) {
                stats.rows_scored += rows.len();
                let rank = match (run[0] as usize) < self.listed {
                    true => &mut listed,
                    false => &mut known,
                };
                rank.offer(run[0] as usize, self.score(rows, query));
            }
        }
        (listed.hit(known), stats)
    }

    /// An identity's score: the max over its rows of the f32 [`dot`] with the query; with the
    /// position of the first row that scored it among the rows, and their number.
    fn score(&self, rows: Range<usize>, query: &[f32]) -> (f32, u32, u32) {
        let n = rows.len() as u32;
        let (best, at) = self.rows[rows.start * self.dim..rows.end * self.dim]
            .chunks_exact(self.dim)
            .enumerate()
            .fold((f32::NEG_INFINITY, 0), |(m, at), (k, row)| {
                let d = dot(row, query);
                if d > m { (d, k as u32) } else { (m, at) }
            });
        (best, at, n)
    }

    /// The rows of the identity that owns `row`.
    fn rows_of(&self, row: usize) -> Range<usize> {
        let who = self.owner[row];
        let start = self.owner[..row]
            .iter()
            .rposition(|&o| o != who)
            .map_or(0, |i| i + 1);
        let end = self.owner[row..]
            .iter()
            .position(|&o| o != who)
            .map_or(self.owner.len(), |i| row + i);
        start..end
    }

    fn expired(&self, who: u32, now: i64) -> bool {
        self.entries[who as usize]
            .expires_at
            .is_some_and(|t| t <= now)
    }

    /// The pre-filter pass over `rows`, the rows of the identities of one `role`, on `threads`
    /// threads (ranges split at identity boundaries; one thread for fewer than
    /// [`PARALLEL_MIN_ROWS`] rows of known people), in row order. None for no rows.
    fn prefilter(
        &self,
        codes: &Codes,
        code: &QueryCode,
        rows: Range<usize>,
        now: i64,
        threads: usize,
        role: Role,
    ) -> Vec<Scan> {
        let k = rank_of(role);
        let (first, n) = (rows.start, rows.end);
        if rows.is_empty() {
            return Vec::new();
        }
        if threads <= 1 || (role == Role::Known && rows.len() < PARALLEL_MIN_ROWS) {
            return vec![self.scan(codes, code, rows, now, k)];
        }
        let mut bounds = vec![first];
        for t in 1..threads {
            let mut at = (first + rows.len() * t / threads).max(bounds[t - 1]);
            while at > first && at < n && self.owner[at] == self.owner[at - 1] {
                at += 1;
            }
            bounds.push(at);
        }
        bounds.push(n);
        std::thread::scope(|s| {
            let others: Vec<_> = bounds[1..]
                .windows(2)
                .map(|w| {
                    let rows = w[0]..w[1];
                    s.spawn(move || self.scan(codes, code, rows, now, k))
                })
                .collect();
            let mut scans = vec![self.scan(codes, code, bounds[0]..bounds[1], now, k)];
            scans.extend(
                others
                    .into_iter()
                    .map(|h| h.join().expect("pre-filter pass panicked")),
            );
            scans
        })
    }

    /// The pre-filter pass over `rows`, with AVX2 where the CPU has it; its floor is the `k`th
    /// best bound ([`Scan::new`]).
    fn scan(
        &self,
        codes: &Codes,
        code: &QueryCode,
        rows: Range<usize>,
        now: i64,
        k: usize,
    ) -> Scan {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above). The same code, compiled for 256-bit
            // vectors: the integer dot products are exact and the f32 bounds are computed one row
            // at a time without FMA, so the result is the same bit for bit (and the bounds hold
            // whatever the order of the additions).
            return unsafe { scan_avx2(self, codes, code, rows, now, k) };
        }
        scan_body(self, codes, code, rows, now, k)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_avx2(
    index: &Index,
    codes: &Codes,
    code: &QueryCode,
    rows: Range<usize>,
    now: i64,
    k: usize,
) -> Scan {
    scan_body(index, codes, code, rows, now, k)
}

/// The pre-filter pass over `rows`: each row's bounds from its i8 dot product with the query.
#[inline(always)]
fn scan_body(
    index: &Index,
    codes: &Codes,
    code: &QueryCode,
    rows: Range<usize>,
    now: i64,
    k: usize,
) -> Scan {
    // The common dimension gets a loop of known length, fully unrolled.
    match index.dim {
        128 => scan_rows::<128>(index, codes, code, rows, now, k),
        _ => scan_rows::<0>(index, codes, code, rows, now, k),
    }
}

/// [`scan_body`] for dimension `D`, or any dimension when `D` is 0.
#[inline(always)]
fn scan_rows<const D: usize>(
    index: &Index,
    codes: &Codes,
    code: &QueryCode,
    rows: Range<usize>,
    now: i64,
    k: usize,
) -> Scan {
    let dim = if D > 0 { D } else { index.dim };
    let stride = dim + 8;
    let mut scan = Scan::new(k);
    let records = codes.data[rows.start * stride..rows.end * stride].chunks_exact(stride);
    for (row, record) in rows.zip(records) {
        let (lo, up) = code.bounds::<D>(record);
        scan.keep(row, up);
        if lo > scan.top.floor(1) {
            scan.top.raise(lo, index.owner[row], index, now);
        }
    }
    scan
}

/// Exact integer dot product of the widened query code and a row's codes (bytes of i8), of length
/// `D` (any length when `D` is 0). Vectorisable: 16 lanes of partial sums of widened products,
/// which LLVM turns into multiply-adds of i16 pairs (pmaddwd).
#[inline(always)]
fn dot_i8<const D: usize>(a: &[i16], b: &[u8]) -> i32 {
    #[inline(always)]
    fn sum(a: &[i16], b: &[u8]) -> i32 {
        let mut acc = [0i32; 16];
        let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
        let tail: i32 = (ca.remainder().iter().zip(cb.remainder()))
            .map(|(&x, &y)| x as i32 * y as i8 as i32)
            .sum();
        for (x, y) in ca.zip(cb) {
            for l in 0..16 {
                acc[l] += x[l] as i32 * y[l] as i8 as i32;
            }
        }
        acc.iter().sum::<i32>() + tail
    }
    match (<&[i16; D]>::try_from(a), <&[u8; D]>::try_from(b)) {
        (Ok(a), Ok(b)) if D > 0 => sum(a, b),
        _ => sum(a, b),
    }
}

#[cfg(test)]
mod tests;
