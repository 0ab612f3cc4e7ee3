#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Embedder benchmark: faceveil (benches/embedder.rs) beside a Python + onnxruntime + numpy + OpenCV
# version (bench/python_embed.py) on the same 1280x720 I420 frames with 1, 3 and 6 faces, same
# models, same thread count, in the same run. Prints Markdown tables for BENCHMARKS.md.
#   bash bench/run_embed.sh [ITERATIONS]
export ORT_DISABLE_TELEMETRY=1   # no ONNX Runtime telemetry (see README, Privacy)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ITER=${1:-50}
export BENCH_THREADS=${BENCH_THREADS:-2}
# The FP32 detector on both sides, whatever the elements' default.
export BENCH_DETECTOR=${BENCH_DETECTOR:-models/centerface.onnx}
bash scripts/setup.sh >/dev/null
# shellcheck source=scripts/env.sh
. scripts/env.sh
OUT=bench/out
bash bench/make_frames.sh "$OUT" >/dev/null
PY=${FACEVEIL_CACHE:-$HOME/.cache/faceveil}/venv-bench/bin/python
cargo build --locked --release --bench embedder 2>/dev/null
BIN=$(ls -t target/release/deps/embedder-* | grep -v '\.d$' | head -1)

results=$(mktemp)
for n in 1 3 6; do
  f="$OUT/faces$n.i420"
  "$BIN" "$f" 1280 720 "$ITER" | sed "s/^{/{\"file\":\"faces$n\",/" >> "$results"
  "$PY" bench/python_embed.py models/centerface.onnx models/dlib_resnet.onnx "$f" 1280 720 640 352 "$ITER" \
    | sed "s/^{/{\"file\":\"faces$n\",/" >> "$results"
done
cat "$results"
echo
python3 - "$results" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ours = lambda r: r["impl"] == "faceveil"
print("| step | batch | faceveil ms per face (p95 per batch) | python ms per face (p95 per batch) | speed-up |")
print("|---|---|---|---|---|")
for b in (1, 8):
    r = [x for x in rows if x["step"] == "embed" and x["batch"] == b and x["file"] == "faces1"]
    o, p = next(x for x in r if ours(x)), next(x for x in r if not ours(x))
    print(f"| embed only | {b} | {o['per_face_ms']:.2f} ({o['p95_ms']:.1f}) | {p['per_face_ms']:.2f} ({p['p95_ms']:.1f}) | {p['per_face_ms'] / o['per_face_ms']:.2f}x |")
print()
print("| 1280x720 I420 | faces (ours / python) | faceveil fps | faceveil ms mean (p95) | python fps | python ms mean (p95) | speed-up |")
print("|---|---|---|---|---|---|---|")
for n in (1, 3, 6):
    r = [x for x in rows if x["step"] == "detect+embed" and x["file"] == f"faces{n}"]
    o, p = next(x for x in r if ours(x)), next(x for x in r if not ours(x))
    print(f"| {n} face{'s' if n > 1 else ''} | {o['faces']} / {p['faces']} | {o['fps']} | {o['mean_ms']} ({o['p95_ms']}) | {p['fps']} | {p['mean_ms']} ({p['p95_ms']}) | {p['mean_ms'] / o['mean_ms']:.2f}x |")
PYEOF
rm -f "$results"
