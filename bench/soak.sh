#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Soak run (not part of the tests): faceveil-nvr on one RTSP test camera (obama2.jpg, 10 fps) for
# MINUTES minutes (default 10), printing the runner's resident memory and open file descriptors every
# 10 s, and the matches it wrote. Flat RSS after warm-up and a constant fd count are the pass.
#   bash bench/soak.sh [MINUTES]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
MINUTES=${1:-10}
bash scripts/setup.sh >/dev/null
cargo build --locked --release --bins --examples 2>/dev/null
. scripts/env.sh
tmp=$(mktemp -d)
trap 'kill $cam $nvr 2>/dev/null || true; rm -rf "$tmp"' EXIT
target/release/faceveil --list "$tmp/w.fvl" init >/dev/null
target/release/faceveil --list "$tmp/w.fvl" enroll --label obama tests/photos/obama.jpg >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
target/release/examples/rtsp_server --port "$port" tests/photos/obama2.jpg >/dev/null &
cam=$!
sleep 2
target/release/faceveil-nvr --watchlist "$tmp/w.fvl" --out "$tmp/events.jsonl" \
  "door=rtsp://127.0.0.1:$port/cam" 2>"$tmp/nvr.log" &
nvr=$!
echo "| t (s) | RSS (kB) | fds | matches |"
echo "|---|---|---|---|"
end=$((SECONDS + MINUTES * 60))
while [ $SECONDS -lt $end ]; do
  sleep 10
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$nvr/status")
  fds=$(ls "/proc/$nvr/fd" | wc -l)
  n=$(grep -c faceveil-match "$tmp/events.jsonl" 2>/dev/null || true)
  echo "| $SECONDS | $rss | $fds | $n |"
done
