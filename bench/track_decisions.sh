#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Decisions per track (issue 23, item 4): false alarms and time-to-match on video, before (the
# per-frame rule of commit BASE) and after (this tree), in one run. Its table is in BENCHMARKS.md.
#
# Clips (bench/make_clip.py, 848x480, 3 face slots, SECS seconds each, cached in bench/out/track):
# a bench clip (its default photos: obama.jpg, obama2.jpg, biden, astronaut, t1's six faces), a clip of the
# colour calibration photos (those and the background photos sample4..6, docs/CALIBRATION.md) and
# one of the ORL grayscale faces s1..s20 (photos 2..10; photo 1 is enrolled). Each clip goes once
# through veildetect ! veilembed (examples/track_decisions.rs record); the recorded faces are then
# replayed through veilmatch's per-frame code (engine::match_step) with each list and setting, by
# this tree's build and by BASE's (the same example built against BASE's engine), cooldown 0:
#   colour lists  obama (obama3.jpg, which no clip shows), biden, astronaut; every other face is a
#                 stranger
#   ORL lists     s1..s10, and s11..s20 (from photo 1): the other ten are strangers
# at the manifest's thresholds and at lower ones (to see false alarms at all), min-hits 2 and 3.
# A false alarm: a match on a track to an identity that is not the person the track shows
# ((track, identity) pairs); time-to-match: frames from a listed person's track's first frame to its
# first match to them.
#   bash bench/track_decisions.sh [BASE]     BASE: the commit with the per-frame rule (default below)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BASE=${1:-ef87cd7}
SECS=${SECS:-40}
bash scripts/setup.sh >/dev/null
# shellcheck source=scripts/env.sh
. scripts/env.sh
OUT=bench/out/track
mkdir -p "$OUT"
PY=${FACEVEIL_CACHE:-$HOME/.cache/faceveil}/venv-bench/bin/python
[ -x "$PY" ] || bash bench/make_frames.sh bench/out >/dev/null   # makes the venv (numpy, OpenCV, onnxruntime)

# BASE's engine with this example: built in a copy of BASE's tree (the same target directory, so only
# the crate itself is built again).
base=target/track-base
rm -rf "$base" && mkdir -p "$base/src"
git archive "$BASE" | tar -x -C "$base/src"
# (lines marked "not in BASE" use what BASE lacks: known people came after the per-frame rule)
sed '/\/\/ not in BASE$/d' examples/track_decisions.rs > "$base/src/examples/track_decisions.rs"
ln -s "$ROOT/models" "$base/src/models"
CARGO_TARGET_DIR=$ROOT/target cargo build --locked --release --example track_decisions \
  --manifest-path "$base/src/Cargo.toml" 2>/dev/null
cp target/release/examples/track_decisions "$base/track_decisions"
cargo build --locked --release --bin faceveil --example track_decisions 2>/dev/null
after=target/release/examples/track_decisions
before=$base/track_decisions
cmp -s "$before" "$after" && { echo "BASE's build and this tree's are the same binary" >&2; exit 1; }

clip() {  # clip NAME SEED SOURCES -> records bench/out/track/NAME.faces.json (made once)
  local name=$1 seed=$2 sources=$3
  if [ ! -s "$OUT/$name.faces.json" ] || [ bench/make_clip.py -nt "$OUT/$name.faces.json" ]; then
    "$PY" bench/make_clip.py --width 848 --height 480 --seconds "$SECS" --faces 3 --seed "$seed" \
        --sources "$sources" --truth "$OUT/$name.json" \
      | gst-launch-1.0 -q fdsrc ! rawvideoparse format=i420 width=848 height=480 framerate=30/1 \
          ! x264enc speed-preset=fast key-int-max=60 ! video/x-h264,profile=high ! mp4mux \
          ! filesink location="$OUT/$name.mp4"
    "$after" record --clip "$OUT/$name.mp4" --truth "$OUT/$name.json" --out "$OUT/$name.faces.json"
  fi
}
orl() {  # orl PHOTOS: s1..s20, those photos, comma-separated
  local s p out=""
  for s in $(seq 1 20); do for p in $1; do out+="$ROOT/third_party/orl/s$s/$p.png,"; done; done
  echo "${out%,}"
}
bg=$ROOT/third_party/background
clip bench1 11 ""
clip colour 13 "obama.jpg,obama2.jpg,biden.jpg,astronaut.png,t1.jpg,$bg/sample4.jpg,$bg/sample5.jpg,$bg/sample6.jpg"
clip orl 14 "$(orl "2 3 4 5 6 7 8 9 10")"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
list() {  # list NAME LABEL=PHOTO... -> path
  local l=$tmp/$1.fvl a
  target/release/faceveil --list "$l" init >/dev/null
  shift
  for a in "$@"; do target/release/faceveil --list "$l" enroll --label "${a%%=*}" "${a#*=}" >/dev/null; done
  echo "$l"
}
colour=$(list colour obama=tests/photos/obama3.jpg biden=tests/photos/biden.jpg astronaut=tests/photos/astronaut.png)
orl_a=$(list orla $(for s in $(seq 1 10); do echo "s$s=third_party/orl/s$s/1.png"; done))
orl_b=$(list orlb $(for s in $(seq 11 20); do echo "s$s=third_party/orl/s$s/1.png"; done))

rows=$tmp/rows.jsonl
run() {  # run SET LIST "ARGS" RECORDINGS...
  local set=$1 l=$2 args=$3 rule bin
  shift 3
  for rule in before after; do
    if [ $rule = before ]; then bin=$before; else bin=$after; fi
    # shellcheck disable=SC2086
    echo "{\"set\": \"$set\", \"args\": \"$args\", \"rule\": \"$rule\", \"r\": $("$bin" replay --list "$l" $args "$@")}" >>"$rows"
  done
}
for mh in 2 3; do
  for t in 0 0.55 0.50; do
    run colour "$colour" "--threshold $t --min-hits $mh" "$OUT"/bench1.faces.json "$OUT"/colour.faces.json
  done
  for t in 0 0.70 0.65; do
    run "ORL s1-s10" "$orl_a" "--gray-threshold $t --min-hits $mh" "$OUT"/orl.faces.json
    run "ORL s11-s20" "$orl_b" "--gray-threshold $t --min-hits $mh" "$OUT"/orl.faces.json
  done
done
cat "$rows"
python3 - "$rows" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("| list | setting | rule | visits | false alarms | strangers' visits alerted | listed visits matched | frames to match: mean, median |")
print("|---|---|---|---|---|---|---|---|")
for x in rows:
    r = x["r"]
    print(f"| {x['set']} | {x['args'].replace('--', '')} | {x['rule']} | {r['visits']} | {r['false_alarms']} | "
          f"{r['stranger_visits_alerted']} | {r['matched']} of {r['genuine_visits']} | "
          f"{r['frames_to_match_mean']:.1f}, {r['frames_to_match_median']} |")
EOF
