#!/usr/bin/env bash
# The main job, end to end on a fresh machine: set-up, build, then detect faces in the sample photos
# and in a short clip made from them, printing one JSON line per frame.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/setup.sh
cargo build --locked --release --example detect
# shellcheck source=scripts/env.sh
. scripts/env.sh

OUT=${FACEWATCH_DEMO_DIR:-$ROOT/target/demo}
mkdir -p "$OUT"
CLIP="$OUT/clip.mp4"
echo "== making $CLIP: 1 s of each photo, 640x480 at 10 fps, H.264"
segments=""
for p in obama2.jpg biden.jpg astronaut.png t1.jpg; do
  segments+=" filesrc location=tests/photos/$p ! decodebin ! imagefreeze num-buffers=10 \
    ! videoconvert ! videoscale ! videorate \
    ! video/x-raw,format=I420,width=640,height=480,pixel-aspect-ratio=1/1,framerate=10/1 ! c."
done
# shellcheck disable=SC2086
gst-launch-1.0 -q concat name=c ! x264enc tune=zerolatency \
  ! mp4mux ! filesink location="$CLIP" $segments

echo "== faces in the photos"
target/release/examples/detect tests/photos/obama.jpg tests/photos/t1.jpg tests/photos/astronaut.png
echo "== faces in the clip (one line per frame)"
target/release/examples/detect "$CLIP"
