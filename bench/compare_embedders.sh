#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Cost per face of each embedder (benches/embedder.rs): dlib ResNet and SFace, FP32 and INT8, on the
# chips of the 3-face 1280x720 frame (bench/make_frames.sh), batch 1 and 8, in one run. Prints a
# Markdown table for BENCHMARKS.md.
#   bash bench/compare_embedders.sh [ITERATIONS]
export ORT_DISABLE_TELEMETRY=1   # no ONNX Runtime telemetry (see README, Privacy)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
ITER=${1:-100}
export BENCH_THREADS=${BENCH_THREADS:-2}
# The FP32 detector finds the faces for every embedder.
export BENCH_DETECTOR=${BENCH_DETECTOR:-models/centerface.onnx}
bash scripts/setup.sh >/dev/null
# shellcheck source=scripts/env.sh
. scripts/env.sh
OUT=bench/out
bash bench/make_frames.sh "$OUT" >/dev/null
cargo build --locked --release --bench embedder 2>/dev/null
BIN=$(ls -t target/release/deps/embedder-* | grep -v '\.d$' | head -1)

results=$(mktemp)
for m in dlib_resnet dlib_resnet-int8 sface sface-int8; do
  BENCH_EMBEDDER="models/$m.onnx" "$BIN" "$OUT/faces3.i420" 1280 720 "$ITER" >> "$results"
done
python3 - "$results" "$BENCH_THREADS" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
embed = [r for r in rows if r["step"] == "embed"]
chips = [r for r in rows if r["step"] == "chip+sharpness"]
models = list(dict.fromkeys(r["model"] for r in embed))
print(f"| model | batch 1: ms per face (p95) | batch 8: ms per face (p95 per batch) | chip warp + sharpness, ms per face |")
print("|---|---|---|---|")
for m, c in zip(models, chips):
    b = {r["batch"]: r for r in embed if r["model"] == m}
    print(f"| {m} | {b[1]['per_face_ms']:.2f} ({b[1]['p95_ms']:.1f}) | {b[8]['per_face_ms']:.2f} ({b[8]['p95_ms']:.1f}) | {c['per_face_ms']:.3f} |")
print(f"\n{sys.argv[2]} intra-op threads, {rows[0]['faces']} faces of faces3.i420 (1280x720).")
PYEOF
rm -f "$results"
