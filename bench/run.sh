#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Detector benchmark: faceveil's detector (benches/detector.rs) beside a Python + onnxruntime +
# numpy implementation (bench/python_detector.py) on the same I420 frames, same model, same thread
# count, in the same run. Prints a Markdown table to paste into BENCHMARKS.md.
#   bash bench/run.sh [ITERATIONS]
export ORT_DISABLE_TELEMETRY=1   # no ONNX Runtime telemetry (see README, Privacy)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ITER=${1:-50}
export BENCH_THREADS=${BENCH_THREADS:-2}
# The FP32 detector on both sides, whatever the elements' default.
export BENCH_DETECTOR=${BENCH_DETECTOR:-models/centerface.onnx}
bash scripts/setup.sh >/dev/null
. scripts/env.sh
PY=${FACEVEIL_CACHE:-$HOME/.cache/faceveil}/venv-tools/bin/python
OUT=bench/out
mkdir -p "$OUT"
cargo build --locked --release --bench detector 2>/dev/null
BIN=$(ls -t target/release/deps/detector-* | grep -v '\.d$' | head -1)

rows=()
for size in 640x480 1920x1080; do
  w=${size%x*} h=${size#*x}
  f="$OUT/t1_$size.i420"
  gst-launch-1.0 -q filesrc location=tests/photos/t1.jpg ! decodebin ! videoconvert ! videoscale add-borders=false \
    ! "video/x-raw,format=I420,width=$w,height=$h" ! filesink location="$f"
  rs=$("$BIN" "$f" "$w" "$h" "$ITER")
  tensor=$(sed -E 's/.*"tensor":"([0-9]+)x([0-9]+)".*/\1 \2/' <<<"$rs")
  # shellcheck disable=SC2086
  py=$("$PY" bench/python_detector.py models/centerface.onnx "$f" "$w" "$h" $tensor "$ITER")
  echo "$rs"
  echo "$py"
  rows+=("$(python3 - "$rs" "$py" <<'PYEOF'
import json, sys
r, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"| {r['frame']} I420 | {r['tensor']} | {r['faces']} / {p['faces']} | {r['fps']} | {r['mean_ms']} ({r['p95_ms']}) "
      f"| {p['fps']} | {p['mean_ms']} ({p['p95_ms']}) | {p['mean_ms'] / r['mean_ms']:.2f}x |")
PYEOF
)")
done
echo
echo "| frame | tensor | faces (ours / python) | faceveil fps | faceveil ms mean (p95) | python fps | python ms mean (p95) | speed-up |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
