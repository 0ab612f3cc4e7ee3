#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Motion gating (issue 25, item 1) on a still camera: how soon is a person found who stands still?
# Two clips from bench/make_still_clip.py (640x360, 15 fps, H.264; cached in bench/out/still):
#   away    a person walks in turned away, stands still 10 s, then turns to the camera (obama's
#           face appears in place) and stays still;
#   facing  the face is visible while walking in and stays still.
# Each goes through examples/recall.rs (decodebin ! veilbin, obama enrolled from obama3.jpg, which
# the clips do not show) with motion gating at its default (idle-interval 2000 ms) and off
# (idle-interval=0): match_latency_s is the seconds from the face's first whole frame boxed by the
# reference (the FP32 detector on every frame) to the faceveil-match; detector_runs the model runs.
#   bash bench/still_person.sh
export ORT_DISABLE_TELEMETRY=1   # no ONNX Runtime telemetry (see README, Privacy)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/env.sh
. scripts/env.sh
OUT=bench/out/still
mkdir -p "$OUT"
PY=${FACEVEIL_CACHE:-$HOME/.cache/faceveil}/venv-bench/bin/python
[ -x "$PY" ] || bash bench/make_frames.sh bench/out >/dev/null   # makes the Python venv
cargo build --locked --release --lib --bins --example recall 2>/dev/null

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
list=$tmp/w.fvl
target/release/faceveil --list "$list" init >/dev/null
target/release/faceveil --list "$list" enroll --label obama tests/photos/obama3.jpg >/dev/null

for variant in away facing; do
  clip=$OUT/still_$variant.mp4
  if [ ! -s "$clip" ] || [ bench/make_still_clip.py -nt "$clip" ]; then
    "$PY" bench/make_still_clip.py --variant "$variant" --truth "${clip%.mp4}.json" \
      | gst-launch-1.0 -q fdsrc ! rawvideoparse format=i420 width=640 height=360 framerate=15/1 \
          ! x264enc speed-preset=fast key-int-max=60 ! video/x-h264,profile=high ! mp4mux \
          ! filesink location="$clip"
  fi
  for setting in "gating:" "off:idle-interval=0"; do
    line=$(target/release/examples/recall --clip "$clip" --truth "${clip%.mp4}.json" \
      --watchlist "$list" --props "${setting#*:}")
    echo "{\"clip\":\"$variant\",\"setting\":\"${setting%%:*}\",${line#\{}"
  done
done
