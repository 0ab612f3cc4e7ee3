#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Motion gating (issue 25, item 1): what an idle still camera costs. A still 640x360 15 fps H.264
# clip without anyone in it (bench/make_still_clip.py --variant empty: a textured background with
# sensor grain), played in real time (fakesink sync=true) by N pipelines in one gst-launch-1.0:
#   none        filesrc ! qtdemux ! h264parse ! avdec_h264 ! fakesink        (decoding only)
#   <setting>   ... ! avdec_h264 ! veildetect <props> ! fakesink
# The CPU time of the process (utime + stime, /proc) over SECS seconds after a warm-up of WARM
# seconds, in cores per pipeline; minus `none`: the analysis's cost beyond decoding.
#   bash bench/idle_cost.sh                 N=8 SECS=30 WARM=8
export ORT_DISABLE_TELEMETRY=1   # no ONNX Runtime telemetry (see README, Privacy)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/env.sh
. scripts/env.sh
N=${N:-8}
SECS=${SECS:-30}
WARM=${WARM:-8}
OUT=bench/out/still
mkdir -p "$OUT"
PY=${FACEVEIL_CACHE:-$HOME/.cache/faceveil}/venv-bench/bin/python
[ -x "$PY" ] || bash bench/make_frames.sh bench/out >/dev/null   # makes the Python venv
cargo build --locked --release --lib 2>/dev/null
clip=$OUT/still_empty_$((SECS + WARM + 10))s.mp4
if [ ! -s "$clip" ] || [ bench/make_still_clip.py -nt "$clip" ]; then
  "$PY" bench/make_still_clip.py --variant empty --empty $((SECS + WARM + 10)) --truth "$OUT/empty.json" \
    | gst-launch-1.0 -q fdsrc ! rawvideoparse format=i420 width=640 height=360 framerate=15/1 \
        ! x264enc speed-preset=fast key-int-max=60 ! video/x-h264,profile=high ! mp4mux \
        ! filesink location="$clip"
fi
tick=$(getconf CLK_TCK)
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
cost() {  # cost NAME N ELEMENT...: cores per pipeline
  local name=$1 n=$2 desc="" pid t0 t1
  shift 2
  for _ in $(seq "$n"); do
    desc="$desc filesrc location=$clip ! qtdemux ! h264parse ! avdec_h264 max-threads=1 ! $* fakesink sync=true"
  done
  # shellcheck disable=SC2086
  gst-launch-1.0 -q $desc >/dev/null &
  pid=$!
  sleep "$WARM"
  t0=$(cpu "$pid")
  sleep "$SECS"
  t1=$(cpu "$pid")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  awk -v a="$t0" -v b="$t1" -v t="$tick" -v s="$SECS" -v n="$n" -v name="$name" \
    'BEGIN { printf "{\"setting\":\"%s\",\"pipelines\":%d,\"cores_per_pipeline\":%.4f}\n", name, n, (b - a) / t / s / n }'
}
cost none "$N"
cost "veildetect (gating, idle-interval 2000)" "$N" veildetect !
cost "veildetect interval=0 (gating)" "$N" veildetect interval=0 !
# the gate's own cost, per frame, without the forced runs: an idle interval of 10 minutes
cost "veildetect idle-interval=600000 (gating, no forced run)" "$N" veildetect idle-interval=600000 !
cost "veildetect idle-interval=0 (off)" 1 veildetect idle-interval=0 !
cost "veildetect interval=0 idle-interval=0 (off)" 1 veildetect interval=0 idle-interval=0 !
cost "none, 1 pipeline" 1
