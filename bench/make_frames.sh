#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the raw I420 1280x720 test frames for the detect+embed benchmark, then checks with
# bench/python_embed.py that CenterFace finds the expected number of faces in each:
#   faces1.i420  tests/photos/obama.jpg, scaled to fit (borders keep the aspect ratio)       1 face
#   faces3.i420  obama2.jpg, biden.jpg, astronaut.png side by side, each fit into 420x700    3 faces
#   faces6.i420  tests/photos/t1.jpg, scaled to fit (borders keep the aspect ratio)           6 faces
# Also creates the benchmark's Python venv (onnxruntime + numpy + OpenCV) if it is missing.
#   bash bench/make_frames.sh OUT_DIR
export ORT_DISABLE_TELEMETRY=1   # no ONNX Runtime telemetry (see README, Privacy)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
OUT=${1:?usage: make_frames.sh OUT_DIR}
mkdir -p "$OUT"
W=1280 H=720
CAPS="format=I420,pixel-aspect-ratio=1/1"   # square pixels, so add-borders letterboxes instead of stretching

# ---- venv for the Python side (separate from the tools venv; exact pins) --------------------------
VENV=${FACEVEIL_CACHE:-$HOME/.cache/faceveil}/venv-bench
PINS=(onnxruntime==1.32.0 numpy==2.3.5 opencv-python-headless==4.13.0.92)  # 4.12.0.88 wants numpy<2.3
if ! "$VENV/bin/python" -c "import cv2, numpy, onnxruntime" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "${PINS[@]}"
fi

# ---- frames --------------------------------------------------------------------------------------
# One photo, scaled to fit the frame.
fit() {  # fit PHOTO OUTFILE
  gst-launch-1.0 -q filesrc location="$1" ! decodebin ! videoconvert ! videoscale add-borders=true \
    ! "video/x-raw,$CAPS,width=$W,height=$H" ! filesink location="$2"
}
fit tests/photos/obama.jpg "$OUT/faces1.i420"
fit tests/photos/t1.jpg "$OUT/faces6.i420"

# Three photos, each fit into a 420x700 cell, composited side by side on black. imagefreeze gives each
# still image a timestamped single buffer so that the compositor outputs exactly one frame.
CELL="videoconvert ! videoscale add-borders=true ! video/x-raw,$CAPS,width=420,height=700 ! imagefreeze num-buffers=1"
# shellcheck disable=SC2086  # $CELL is a pipeline fragment: it must split into words
gst-launch-1.0 -q compositor name=mix background=black \
    sink_0::xpos=0 sink_0::ypos=10 sink_1::xpos=430 sink_1::ypos=10 sink_2::xpos=860 sink_2::ypos=10 \
  ! "video/x-raw,$CAPS,width=$W,height=$H" ! filesink location="$OUT/faces3.i420" \
  filesrc location=tests/photos/obama2.jpg ! decodebin ! $CELL ! mix.sink_0 \
  filesrc location=tests/photos/biden.jpg ! decodebin ! $CELL ! mix.sink_1 \
  filesrc location=tests/photos/astronaut.png ! decodebin ! $CELL ! mix.sink_2

# ---- check: one frame each, and the face count CenterFace finds (at the element's default 640x352) --
size=$((W * H * 3 / 2))
for n in 1 3 6; do
  f="$OUT/faces$n.i420"
  [ "$(stat -c %s "$f")" -eq "$size" ] || { echo "$f: not one ${W}x${H} I420 frame" >&2; exit 1; }
  found=$("$VENV/bin/python" bench/python_embed.py models/centerface.onnx models/dlib_resnet.onnx \
            "$f" "$W" "$H" 640 352 1 | sed -n 's/.*"step": "faces".*"faces": \([0-9]*\).*/\1/p')
  [ "$found" = "$n" ] || { echo "$f: expected $n faces, found ${found:-none}" >&2; exit 1; }
  echo "$f: $n faces"
done
