// SPDX-License-Identifier: MIT
//! GStreamer-free algorithms: frame sampling, model manifests and sessions, decoding. Nothing below
//! this module uses GStreamer types, so every part is unit-tested on plain data and shared by the
//! elements and the CLI.

pub mod align;
pub mod audit;
pub mod backlog;
pub mod batch;
pub mod cosine;
pub mod cover;
pub mod decode;
pub mod detect_step;
pub mod detector;
pub mod draw;
pub mod embed_step;
pub mod embedder;
pub mod frame;
pub mod gate;
pub mod manifest;
pub mod match_step;
pub mod matcher;
pub mod redact;
pub mod reembed;
pub mod runtime;
pub mod scene;
pub mod secret_file;
pub mod snapshot;
pub mod stats;
pub mod track;
pub mod watchlist;
