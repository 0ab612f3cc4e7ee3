#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# An NVR-like many-camera benchmark (issue 25, item 3): faceveil-nvr, the product, on 1, 4, 8, 16
# and 32 RTSP cameras as an NVR analyses them: 640x360 substreams at 15 fps, H.264 decoded in its
# own pipelines. The cameras are examples/rtsp_server serving the clips of bench/make_nvr_clips.py
# (a still room, empty about three quarters of the time, people walking in at random times, the
# enrolled one among them), live and looped, without re-encoding. Per camera count:
#   - cores busy of faceveil-nvr (utime + stime from /proc over SECONDS, after a warm-up), its RSS
#     (VmHWM, peak) and the analysed fps per camera while someone is in view (its health lines,
#     one a second) and while the room is empty;
#   - for every visit of the enrolled person that starts in the window, the time from the face
#     being whole in view (the clip's truth, on the wall clock from the server's loop starts) to
#     its faceveil-match event (its utc), and the visits without one; matches outside such a visit
#     are counted as false;
#   - the idle cost per camera: faceveil-nvr on the same number of cameras showing an empty room,
#     minus gst-launch decoding the same streams alone (uridecodebin ! fakesink), divided by N.
# Prints a Markdown table for BENCHMARKS.md, then the raw results (JSON lines).
#   bash bench/nvr_cameras.sh [SECONDS] [CAMERA COUNTS...]        (default 45 s; 1 4 8 16 32)
# Environment:
#   NVR_DEFAULTS       TOML lines added to the cameras' [defaults] of the generated nvr.toml, e.g.
#                      'interval = 3' (any camera key of docs/NVR.md; cooldown is 3 unless given)
#   NVR_WARMUP         seconds before measuring (10): models loaded, cameras connected
#   NVR_IDLE_SECONDS   seconds measured for the idle cost (20); NVR_IDLE=0 skips it
#   NVR_CLIP_SECONDS   length of each clip (60); the clips are made once, in bench/out/nvr
#   NVR_RUNS           keep every run's files (server, nvr.toml, events, stderr) in this folder
#   Everything else in the environment reaches faceveil-nvr (e.g. FACEVEIL_DETECTOR_SHARING).
export ORT_DISABLE_TELEMETRY=1   # no ONNX Runtime telemetry (see README, Privacy)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
SECONDS_MEASURED=${1:-45}
shift || true
COUNTS=("${@:-1 4 8 16 32}")
# shellcheck disable=SC2206  # the counts are words
COUNTS=(${COUNTS[*]})
WARMUP=${NVR_WARMUP:-10}
IDLE_SECONDS=${NVR_IDLE_SECONDS:-20}
IDLE=${NVR_IDLE:-1}
CLIP_SECONDS=${NVR_CLIP_SECONDS:-60}
DEFAULTS=${NVR_DEFAULTS:-}

bash scripts/setup.sh >/dev/null
# shellcheck source=scripts/env.sh
. scripts/env.sh
PY=${FACEVEIL_CACHE:-$HOME/.cache/faceveil}/venv-bench/bin/python
"$PY" -c "import cv2, numpy, onnxruntime" 2>/dev/null \
  || bash bench/make_frames.sh bench/out >/dev/null   # makes the venv (numpy, OpenCV, onnxruntime)
cargo build --locked --release --lib --bins --example rtsp_server 2>/dev/null

CLIPS=bench/out/nvr
max=0
for n in "${COUNTS[@]}"; do [ "$n" -gt "$max" ] && max=$n; done
"$PY" bench/make_nvr_clips.py --out "$CLIPS" --count "$max" --seconds "$CLIP_SECONDS"
"$PY" bench/make_nvr_clips.py --out "$CLIPS" --empty --seconds "$CLIP_SECONDS"

tmp=${NVR_RUNS:-$(mktemp -d)}
mkdir -p "$tmp"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${NVR_RUNS:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT
export FACEVEIL_PASSPHRASE=bench-nvr-passphrase
list=$tmp/w.fvl
target/release/faceveil --list "$list" init >/dev/null
target/release/faceveil --list "$list" enroll --label obama tests/photos/obama.jpg >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
status_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

# serve DIR CLIP... : the cameras, rtsp://127.0.0.1:$port/camN; their loop starts in DIR/server.jsonl
serve() {
  local dir=$1 args=() c
  shift
  for c in "$@"; do args+=(--clip "$c"); done
  port=$(free_port)
  target/release/examples/rtsp_server --port "$port" "${args[@]}" >"$dir/server.jsonl" 2>"$dir/server.err" &
  server=$!
  pids+=("$server")
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench/nvr_cameras.sh: the RTSP server did not start: $(cat "$dir/server.err")" >&2
  exit 1
}

# measure DIR PID WARMUP SECONDS : cores busy and memory of PID over SECONDS after WARMUP (and the
# server's cores busy, for the raw results)
measure() {
  local dir=$1 pid=$2 c0 c1 s0 s1 t0 t1 hz
  hz=$(getconf CLK_TCK)
  sleep "$3"
  kill -0 "$pid" 2>/dev/null || { echo "bench/nvr_cameras.sh: the process under test ended early (see $dir)" >&2; return 1; }
  t0=$(date +%s.%N); c0=$(cpu_ticks "$pid"); s0=$(cpu_ticks "$server")
  sleep "$4"
  t1=$(date +%s.%N); c1=$(cpu_ticks "$pid"); s1=$(cpu_ticks "$server")
  echo "{\"t0\":$t0,\"t1\":$t1,\"cpu\":$(awk -v a="$c0" -v b="$c1" -v hz="$hz" 'BEGIN {print (b - a) / hz}'),\"server_cpu\":$(awk -v a="$s0" -v b="$s1" -v hz="$hz" 'BEGIN {print (b - a) / hz}'),\"hwm_kb\":$(status_kb "$pid" VmHWM),\"rss_kb\":$(status_kb "$pid" VmRSS)}" >"$dir/measure.json"
}

stop() {  # stop PID SERVER: SIGINT to the process under test (it stops its pipelines), SIGTERM to the server
  kill -INT "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  kill -TERM "$2" 2>/dev/null || true
  wait "$2" 2>/dev/null || true
}

# nvr DIR N SECONDS CLIP... : faceveil-nvr on N cameras serving the clips
nvr() {
  local dir=$1 n=$2 secs=$3 i nvr_pid
  shift 3
  mkdir -p "$dir"
  serve "$dir" "$@"
  {
    echo "[output]"
    echo "events = \"events.jsonl\""
    echo "health-interval = 1"
    echo "[defaults]"
    echo "watchlist = \"$list\""
    [[ "$DEFAULTS" == *cooldown* ]] || echo "cooldown = 3   # every visit of the enrolled person is reported"
    [ -z "$DEFAULTS" ] || printf '%s\n' "$DEFAULTS"
    for ((i = 0; i < n; i++)); do
      printf '[[camera]]\nname = "cam%d"\nurl = "rtsp://127.0.0.1:%d/cam%d"\n' "$i" "$port" "$i"
    done
  } >"$dir/nvr.toml"
  target/release/faceveil-nvr --config "$dir/nvr.toml" 2>"$dir/nvr.err" &
  nvr_pid=$!
  pids+=("$nvr_pid")
  measure "$dir" "$nvr_pid" "$WARMUP" "$secs"
  stop "$nvr_pid" "$server"
}

# decode DIR N SECONDS : gst-launch decoding N empty cameras, nothing else
decode() {
  local dir=$1 n=$2 secs=$3 i desc=() dec_pid
  mkdir -p "$dir"
  serve "$dir" $(for ((i = 0; i < n; i++)); do echo "$CLIPS/empty.mp4"; done)
  for ((i = 0; i < n; i++)); do
    desc+=(uridecodebin "uri=rtsp://127.0.0.1:$port/cam$i" ! fakesink sync=false)
  done
  gst-launch-1.0 -q "${desc[@]}" >"$dir/decode.out" 2>&1 &
  dec_pid=$!
  pids+=("$dec_pid")
  measure "$dir" "$dec_pid" 5 "$secs"
  stop "$dec_pid" "$server"
}

for n in "${COUNTS[@]}"; do
  nvr "$tmp/active-$n" "$n" "$SECONDS_MEASURED" $(for ((i = 0; i < n; i++)); do printf '%s/nvr%02d.mp4\n' "$CLIPS" "$i"; done)
  if [ "$IDLE" != 0 ]; then
    nvr "$tmp/idle-$n" "$n" "$IDLE_SECONDS" $(for ((i = 0; i < n; i++)); do echo "$CLIPS/empty.mp4"; done)
    decode "$tmp/decode-$n" "$n" "$IDLE_SECONDS"
  fi
  "$PY" bench/nvr_report.py --clips "$CLIPS" --runs "$tmp" --count "$n" >>"$tmp/results.jsonl"
done
"$PY" bench/nvr_report.py --table "$tmp/results.jsonl"
echo
echo "Raw results:"
cat "$tmp/results.jsonl"
