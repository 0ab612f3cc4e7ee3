#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The main job, end to end on a fresh machine: set-up, build, a new encrypted watch list, one person
# enrolled from one photo, then a short clip with that person and others through veilbin; the
# match events come out as JSON lines.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

bash scripts/setup.sh
cargo build --locked --release --lib --bin faceveil --bin faceveil-nvr
# shellcheck source=scripts/env.sh
. scripts/env.sh

OUT=${FACEVEIL_DEMO_DIR:-$ROOT/target/demo}
mkdir -p "$OUT"
CLIP="$OUT/clip.mp4"
LIST="$OUT/watchlist.fvl"
echo "== making $CLIP: 2 s of each of obama2, biden, astronaut and t1 (6 people), 640x480, 10 fps, H.264"
segments=""
for p in obama2.jpg biden.jpg astronaut.png t1.jpg; do
  segments+=" filesrc location=tests/photos/$p ! decodebin ! imagefreeze num-buffers=20 \
    ! videoconvert ! videoscale ! videorate \
    ! video/x-raw,format=I420,width=640,height=480,pixel-aspect-ratio=1/1,framerate=10/1 ! c."
done
# shellcheck disable=SC2086
gst-launch-1.0 -q concat name=c ! x264enc tune=zerolatency ! mp4mux ! filesink location="$CLIP" $segments

echo "== a new watch list with one person, enrolled from one photo (obama.jpg)"
rm -f "$LIST" "$LIST.key"
target/release/faceveil --list "$LIST" init
target/release/faceveil --list "$LIST" enroll --label obama --note "demo" tests/photos/obama.jpg
target/release/faceveil --list "$LIST" list

echo "== the clip through veilbin: match events as JSON lines (obama2 is in the first 2 s)"
target/release/faceveil-nvr --watchlist "$LIST" demo="$CLIP"
