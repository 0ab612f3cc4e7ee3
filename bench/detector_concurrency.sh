#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Both cores for the detector (issue 25, item 2): frames per second of the default detector model
# on a 640x360 substream frame's tensor (640x352) when cameras wait, shared four ways: one session
# with both threads (single), one single-thread session per core side by side (pool, the default),
# and each with the frames of two cameras in one run (batch, pool-batch). Prints a Markdown table.
# The element-level comparison (single against pool, many live cameras) is bench/nvr_cameras.sh
# with FACEVEIL_DETECTOR_SHARING=single|pool.
#   bash bench/detector_concurrency.sh [SECONDS] [MODEL.onnx ...]
export ORT_DISABLE_TELEMETRY=1   # no ONNX Runtime telemetry (see README, Privacy)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SECS=${1:-10}
shift || true
bash scripts/setup.sh >/dev/null
# shellcheck source=scripts/env.sh
. scripts/env.sh
cargo build --locked --release --example detector_concurrency 2>/dev/null
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(models/centerface-int8.onnx models/centerface.onnx)
echo "| model | way | sessions × threads | frames per run | frames/s | ms per run | CPU ms per frame | RSS MB |"
echo "|---|---|---|---|---|---|---|---|"
for m in "${models[@]}"; do
  target/release/examples/detector_concurrency --model "$m" --seconds "$SECS" | python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    r["per"] = r["threads"] // r["sessions"]
    print("| {model} | {way} | {sessions} × {per} | {batch} | {fps:.1f} | {ms_per_run:.1f} | "
          "{cpu_ms_per_frame:.1f} | {rss_mb} |".format(**r))'
done
