#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Many cameras in one process: 1, 4, 8 and 16 live 720p30 cameras (each a still frame with 3 faces,
# one of them enrolled, through veilbin at its defaults) in one process for SECONDS after a
# warm-up; per camera the detector runs per second (analysed fps) and the frames skipped because
# the analysis was behind live, the fairness (slowest / fastest camera), cores busy, memory, and the
# embedder runs shared between cameras. Prints a Markdown table for BENCHMARKS.md.
#   bash bench/cameras.sh [SECONDS] [CAMERA COUNTS...]
export ORT_DISABLE_TELEMETRY=1   # no ONNX Runtime telemetry (see README, Privacy)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SECONDS_MEASURED=${1:-20}
shift || true
COUNTS=("${@:-1 4 8 16}")
# shellcheck disable=SC2206  # the counts are words
COUNTS=(${COUNTS[*]})
bash scripts/setup.sh >/dev/null
# shellcheck source=scripts/env.sh
. scripts/env.sh
OUT=bench/out
bash bench/make_frames.sh "$OUT" >/dev/null
cargo build --locked --release --lib --bins --example cameras 2>/dev/null

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export FACEVEIL_PASSPHRASE=bench-cameras-passphrase
target/release/faceveil --list "$tmp/w.fvl" init >/dev/null
target/release/faceveil --list "$tmp/w.fvl" enroll --label obama tests/photos/obama.jpg >/dev/null

echo "| cameras | analysed fps per camera: mean (slowest – fastest) | skipped fps per camera | cores busy | RSS MB | MB per further camera | cameras matched | shared embedder runs |"
echo "|---|---|---|---|---|---|---|---|"
base=""
for n in "${COUNTS[@]}"; do
  line=$(target/release/examples/cameras --cameras "$n" --seconds "$SECONDS_MEASURED" \
    --frame "$OUT/faces3.i420" --watchlist "$tmp/w.fvl")
  echo "$line" >> "$tmp/results.jsonl"
  python3 - "$line" "$base" <<'PY'
import json, sys
r = json.loads(sys.argv[1])
base = json.loads(sys.argv[2]) if sys.argv[2] else None
n = r["cameras"]
skipped = sum(c["skipped_fps"] for c in r["per_camera"]) / n
extra = "–" if not base or n == base["cameras"] else \
    f'{(r["rss_mb"] - base["rss_mb"]) / (n - base["cameras"]):.0f}'
print(f'| {n} | {r["analysed_fps_total"] / n:.1f} ({r["analysed_fps_min"]:.1f} – {r["analysed_fps_max"]:.1f}) '
      f'| {skipped:.1f} | {r["cores_busy"]:.2f} | {r["rss_mb"]} | {extra} | {r["matched_cameras"]}/{n} '
      f'| {r["shared_embedder_runs"]} |')
PY
  [ -n "$base" ] || base=$line
done
echo
echo "Raw results:"
cat "$tmp/results.jsonl"
