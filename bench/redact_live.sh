#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Fail-closed redaction on a live camera (issue 22, item 4): what it costs. The bench clip of
# bench/pipeline.sh (1080p30, 3 moving faces, 10 s; bench/make_clip.py) through
# `veilbin redact=all ! identity sleep-time=SLOW ! fakesink sync=false`, three ways:
#   live        mixed onto a live videotestsrc by compositor (a camera), the consumer keeping up;
#   live slow   the same with a consumer that takes 40 ms a frame (25 fps < 30: the detector falls
#               behind and leaves model runs out to stay live);
#   file        not live (filesrc ... decoder straight into the bin): every frame is analysed as
#               the schedule says, nothing is late, no cover.
# Each row: frames out, fps, CPU ms per frame (the whole process), the detector's runs and skips, and
# veilredact's counts of frames redacted whole, carried boxes grown and unseen areas redacted.
# The measurement is tests/redact_live.rs `bench_live_cover` on a release build (cargo test
# --release). For the numbers before the change, run this script on the parent commit's tree (its
# test file is the same; the counts it lacks read 0).
#   bash bench/redact_live.sh        (env: RUNS=1, ROWS="live slow file", SKIP_BUILD=1 skips cargo; run it under
#                                     flock /tmp/cargo.lock where others build on the same cores)
export ORT_DISABLE_TELEMETRY=1
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RUNS=${RUNS:-1}
ROWS=${ROWS:-live slow file}
OUT=bench/out/redact_live
mkdir -p "$OUT"
PY=${FACEVEIL_CACHE:-$HOME/.cache/faceveil}/venv-bench/bin/python
clip=$OUT/clip1080p_3faces_10s.mp4
if [ ! -s "$clip" ]; then
  [ -x "$PY" ] || bash bench/make_frames.sh bench/out >/dev/null   # makes the Python venv
  "$PY" bench/make_clip.py --width 1920 --height 1080 --seconds 10 --faces 3 \
    | gst-launch-1.0 -q fdsrc ! rawvideoparse format=i420 width=1920 height=1080 framerate=30/1 \
        ! x264enc speed-preset=fast key-int-max=60 ! video/x-h264,profile=high ! mp4mux \
        ! filesink location="$clip"
fi
if [ -z "${SKIP_BUILD:-}" ]; then
  cargo test --locked --release --test redact_live --no-run 2>/dev/null
fi
echo "| input | consumer | frames | fps | CPU ms/frame | detector runs | skipped | whole | grown | unseen |"
echo "|---|---|---|---|---|---|---|---|---|---|"
row() {  # row LIVE SLOW_US LABEL CONSUMER
  local line
  line=$(BENCH_CLIP="$ROOT/$clip" BENCH_LIVE=$1 BENCH_SLOW_US=$2 \
    cargo test --locked --release --test redact_live bench_live_cover -- --ignored --nocapture \
      2>/dev/null | grep '^{')
  python3 -c '
import json, sys
r = json.loads(sys.argv[1])
print("| {} | {} | {frames} | {fps:.1f} | {cpu_ms_per_frame:.1f} | {inferences} | {skipped} | {whole} "
      "| {grown} | {unseen} |".format(sys.argv[2], sys.argv[3], **r))
' "$line" "$3" "$4"
}
for _ in $(seq "$RUNS"); do
  for r in $ROWS; do
    case $r in
      live) row 1 0 live "keeps up" ;;
      slow) row 1 40000 live "40 ms/frame" ;;
      file) row 0 0 file "keeps up" ;;
    esac
  done
done
