#!/usr/bin/env bash
# The project's test command (CI runs it through .ci/run): set-up, lint, the Rust test suite, and a
# smoke run of the release plugin through gst-launch-1.0 exactly as README shows it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/setup.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
echo "== cargo test"
cargo test --locked

echo "== release plugin through gst-launch-1.0"
cargo build --locked --release
# shellcheck source=scripts/env.sh
. scripts/env.sh
gst-inspect-1.0 facedetector >/dev/null
out=$(gst-launch-1.0 -m filesrc location=tests/photos/obama.jpg ! decodebin ! videoconvert \
      ! facedetector post-messages=true ! fakesink 2>&1)
n=$(grep -c 'facedetector, timestamp' <<<"$out" || true)
[ "$n" = 1 ] || { echo "$out"; echo "expected one facedetector message, got $n"; exit 1; }
grep -q 'landmarks' <<<"$out" || { echo "$out"; echo "the message holds no face"; exit 1; }
gst-inspect-1.0 faceembedder >/dev/null
gst-launch-1.0 -q filesrc location=tests/photos/t1.jpg ! decodebin ! videoconvert ! facedetector \
  ! faceembedder ! fakesink
echo "== all tests passed"
