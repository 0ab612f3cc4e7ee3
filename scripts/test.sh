#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The project's test command (CI runs it through .ci/run): set-up, lint, a release build, the Rust
# test suite (unit tests, real pipelines, CLI, RTSP, MQTT), and a smoke run of the release plugin
# through gst-launch-1.0 exactly as README shows it, then the installed tree (scripts/test-install.sh)
# and the Debian 13 test bed (scripts/debian13-bed.sh: GStreamer 1.26, where the machine allows it).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
echo "== cargo build (the plugin, debug for the pipeline-script tests, release for README's commands)"
# --lib: the plugin .so is only produced when the library is built as a target of its own.
cargo build --locked --lib
cargo build --locked --release --lib --bins --examples
echo "== cargo test"
cargo test --locked

echo "== release plugin through gst-launch-1.0"
# shellcheck source=scripts/env.sh
. scripts/env.sh
echo "== element names collide with no GStreamer element (scripts/check-element-names.sh)"
bash scripts/check-element-names.sh target/release
# ... and it fails when a second plugin file registers the same names (a copy of ours on the path)
standin=$(mktemp -d); cp target/release/libgstfaceveil.so "$standin/"
if GST_PLUGIN_PATH="$standin:$GST_PLUGIN_PATH" bash scripts/check-element-names.sh target/release >/dev/null 2>&1; then
  echo "check-element-names.sh did not see a second plugin registering veil* names"; exit 1
fi
rm -rf "$standin"
for e in veildetect veilembed veilmatch veilredact veiloverlay veilbin; do gst-inspect-1.0 "$e" >/dev/null; done
out=$(gst-launch-1.0 -m filesrc location=tests/photos/obama.jpg ! decodebin ! videoconvert \
      ! veildetect post-messages=true ! fakesink 2>&1)
n=$(grep -c 'veildetect, timestamp' <<<"$out" || true)
[ "$n" = 1 ] || { echo "$out"; echo "expected one veildetect message, got $n"; exit 1; }
grep -q 'landmarks' <<<"$out" || { echo "$out"; echo "the message holds no face"; exit 1; }
tmp=$(mktemp -d)
target/release/faceveil --list "$tmp/w.fvl" init >/dev/null
target/release/faceveil --list "$tmp/w.fvl" enroll --label obama tests/photos/obama.jpg >/dev/null
out=$(gst-launch-1.0 -m filesrc location=tests/photos/obama2.jpg ! decodebin ! imagefreeze num-buffers=5 \
      ! veilbin watchlist="$tmp/w.fvl" ! fakesink 2>&1)
rm -rf "$tmp"
grep -q 'faceveil-match, label=(string)obama' <<<"$out" || { echo "$out"; echo "no faceveil-match"; exit 1; }
echo "== bench/pipeline.sh --smoke (one second of one clip: the benchmark keeps working)"
bash bench/pipeline.sh --smoke > /dev/null
echo "== the installed tree (meson install into a temporary prefix)"
bash scripts/test-install.sh
echo "== the Debian 13 test bed (GStreamer 1.26; FACEVEIL_BED=off skips it, =require fails where it cannot run)"
FACEVEIL_BED=${FACEVEIL_BED:-auto} bash scripts/debian13-bed.sh
echo "== all tests passed"
