#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The whole pipeline beside the Python peer (issue 10), in the same run: H.264 clips made from the
# test photos (bench/make_clip.py: faces that move, change size, enter and leave; obama among them,
# enrolled from obama3.jpg, which the clips do not show), then for each clip
#   ours:  filesrc ! decodebin ! veilbin <setting> ! fakesink   (examples/stages.rs, timed from
#          PLAYING once prerolled, with the per-stage milliseconds from the elements' stats)
#            default  veilbin at its defaults (the detector's adaptive schedule, interval=0,
#                     and the INT8 detector)
#            fp32     the defaults with the FP32 detector (models/centerface.onnx)
#            equal    interval=1 reembed-interval=1, FP32 detector: detect and embed every face on
#                     every frame, like peer det1
#            int3     interval=3: the detector on one frame in three
#          and, once per clip, the recall of default and int3 against the FP32 detector on every frame
#          (and of default against its own INT8 detector on every frame: the schedule's share)
#          (examples/recall.rs: boxes at IoU >= 0.5, and how soon the enrolled person is matched)
#   peer:  ../shared/peer/peer.py (as it is) --mode det1 and det3emb3, --variant nospin and default
# RUNS runs each (median, min–max): fps, CPU ms per frame, peak RSS. Prints Markdown for
# BENCHMARKS.md and the raw JSON lines.
#   bash bench/pipeline.sh [RUNS]             the whole matrix: 1080p, 720p, 480p × 0, 1, 3, 8 faces
#   RES="1080" FACES="3" bash bench/pipeline.sh 3     one cell
#   bash bench/pipeline.sh --smoke            a few frames of one small clip (scripts/test.sh)
#   EMB=dlib_resnet.onnx RES=1080 FACES=3 bash bench/pipeline.sh 3   another embedder for both sides
# EMB (a file name in models/) is the embedder both sides use: veilbin's `embedder-model` and the
# peer's --emb; unset, ours runs its default and the peer the same model file.
export ORT_DISABLE_TELEMETRY=1   # no ONNX Runtime telemetry (see README, Privacy)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SMOKE=0
if [ "${1:-}" = "--smoke" ]; then SMOKE=1; shift; fi
RUNS=${1:-3}
RES=${RES:-1080 720 480}
FACES=${FACES:-0 1 3 8}
SECS=${SECS:-10}
PEER=${PEER:-$ROOT/../shared/peer/peer.py}
EMB_DEFAULT=sface.onnx   # the embedder veilbin loads when embedder-model is unset (src/engine/manifest.rs)
EMB=${EMB:-$EMB_DEFAULT}
EMB_PROPS=""
[ "$EMB" = "$EMB_DEFAULT" ] || EMB_PROPS="embedder-model=$ROOT/models/$EMB"
if [ "$SMOKE" = 1 ]; then RUNS=1 RES=480 FACES=1 SECS=1; fi
if [ ! -f "$PEER" ]; then
  # The smoke run (scripts/test.sh) keeps our side working without the peer; a measurement needs it.
  [ "$SMOKE" = 1 ] || { echo "the Python peer is not at $PEER (set PEER)" >&2; exit 2; }
  echo "bench/pipeline.sh: no Python peer at $PEER: the smoke run times faceveil only" >&2
  PEER=""
fi

bash scripts/setup.sh >/dev/null
# shellcheck source=scripts/env.sh
. scripts/env.sh
OUT=bench/out/pipeline
mkdir -p "$OUT"
bash bench/make_frames.sh bench/out >/dev/null   # also makes the Python venv (numpy, OpenCV, onnxruntime)
PY=${FACEVEIL_CACHE:-$HOME/.cache/faceveil}/venv-bench/bin/python
cargo build --locked --release --lib --bins --example stages --example recall 2>/dev/null
export BENCH_THREADS=2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
list=$tmp/w.fvl
target/release/faceveil --list "$list" init >/dev/null
target/release/faceveil --list "$list" enroll --label obama tests/photos/obama3.jpg >/dev/null

width_of() { case $1 in 1080) echo 1920 ;; 720) echo 1280 ;; 480) echo 848 ;; esac; }  # 848: rows of whole 4-byte words (rawvideoparse I420)

clip_for() {  # clip_for HEIGHT FACES -> path (made once, cached in bench/out/pipeline)
  local h=$1 f=$2 w clip
  w=$(width_of "$h")
  clip=$OUT/clip${h}p_${f}faces_${SECS}s.mp4
  if [ ! -s "$clip" ] || [ bench/make_clip.py -nt "$clip" ]; then
    "$PY" bench/make_clip.py --width "$w" --height "$h" --seconds "$SECS" --faces "$f" \
        --truth "$OUT/clip${h}p_${f}faces_${SECS}s.json" \
      | gst-launch-1.0 -q fdsrc ! rawvideoparse format=i420 width="$w" height="$h" framerate=30/1 \
          ! x264enc speed-preset=fast key-int-max=60 ! video/x-h264,profile=high ! mp4mux \
          ! filesink location="$clip"
  fi
  echo "$clip"
}

results=$tmp/results.jsonl
ours() {  # ours CLIP H F NAME PROPS
  local line
  line=$(target/release/examples/stages --clip "$1" --watchlist "$list" --props "$5${EMB_PROPS:+ $EMB_PROPS}")
  echo "{\"impl\":\"faceveil\",\"setting\":\"$4\",\"res\":$2,\"faces_in_clip\":$3,${line#\{}" >> "$results"
}
recall() {  # recall CLIP H F NAME PROPS [REFERENCE_MODEL]
  local line
  line=$(target/release/examples/recall --clip "$1" --truth "${1%.mp4}.json" --watchlist "$list" --props "$5${EMB_PROPS:+ $EMB_PROPS}" \
      ${6:+--reference-model "$6"})
  echo "{\"kind\":\"recall\",\"setting\":\"$4\",\"res\":$2,\"faces_in_clip\":$3,${line#\{}" >> "$recalls"
}
recalls=$tmp/recall.jsonl
: > "$recalls"
peer() {  # peer CLIP H F MODE VARIANT
  local line rss
  line=$( { /usr/bin/time -f "%M" "$PY" "$PEER" --det models/centerface.onnx --emb "models/$EMB" \
      --clip "$1" --mode "$4" --variant "$5" --threads 2 2> "$tmp/time"; } )
  rss=$(tail -1 "$tmp/time")
  # the peer's own fields first, ours after them (they win where the names are the same)
  echo "${line%\}},\"impl\":\"peer\",\"setting\":\"$4-$5\",\"res\":$2,\"faces_in_clip\":$3,\"peak_rss_mb\":$((rss / 1024))}" >> "$results"
}

for h in $RES; do
  for f in $FACES; do
    clip=$(clip_for "$h" "$f")
    recall "$clip" "$h" "$f" default ""
    recall "$clip" "$h" "$f" default "" "$ROOT/models/centerface-int8.onnx"
    recall "$clip" "$h" "$f" int3 "interval=3"
    for _ in $(seq "$RUNS"); do
      ours "$clip" "$h" "$f" default ""
      ours "$clip" "$h" "$f" fp32 "detector-model=$ROOT/models/centerface.onnx"
      ours "$clip" "$h" "$f" equal "interval=1 reembed-interval=1 detector-model=$ROOT/models/centerface.onnx"
      ours "$clip" "$h" "$f" int3 "interval=3"
      [ -n "$PEER" ] || continue
      for mode in det1 det3emb3; do
        for variant in nospin default; do
          peer "$clip" "$h" "$f" "$mode" "$variant"
        done
      done
    done
  done
done

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
flags=$(grep -m1 -o -w -E 'avx2|avx512f|avx512_vnni|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')
echo "Machine: $(nproc) cores ($cpu; $flags), $(free -g | awk '/Mem:/{print $2}') GiB; $(gst-launch-1.0 --version | sed -n 2p); ONNX Runtime 1.32.0; $(date -u +%F)"
echo
"$PY" bench/pipeline_table.py "$results" "$recalls"
echo
echo "Raw results:"
cat "$results" "$recalls"
