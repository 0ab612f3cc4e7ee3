#!/bin/sh
# SPDX-License-Identifier: MIT
# meson custom_target helper: cargo build --release, then copy the plugin to meson's output path.
# usage: meson-cargo-build.sh CARGO SOURCE_ROOT OUTPUT
set -eu
cargo=$1 src=$2 out=$3
"$cargo" build --locked --release --lib --manifest-path "$src/Cargo.toml"
cp "$CARGO_TARGET_DIR/release/libgstfacewatch.so" "$out"
