#!/bin/sh
# SPDX-License-Identifier: MIT
# meson custom_target helper: cargo build --release of the plugin and the programs, then copy them
# to meson's output paths (in the order meson.build lists them).
# usage: meson-cargo-build.sh CARGO SOURCE_ROOT OUTPUT_DIR
# FACEVEIL_CARGO_FEATURES: the cargo features meson chose (e.g. "analytics"), may be empty.
set -eu
cargo=$1 src=$2 out=$3
"$cargo" build --locked --release --lib --bins --features "${FACEVEIL_CARGO_FEATURES:-}" \
  --manifest-path "$src/Cargo.toml"
for f in libgstfaceveil.so faceveil faceveil-nvr faceveil-mqtt; do
  cp "$CARGO_TARGET_DIR/release/$f" "$out/$f"
done
