#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Several RTSP cameras in one process (one gst-launch pipeline), each with its own camera-id
# (cam0, cam1, …), until Ctrl-C. Every camera shares the one ONNX Runtime of the process.
#   pipelines/multi-camera.sh WATCHLIST RTSP_URL [RTSP_URL...]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
list=${1:-}; need_list "$list"; shift
[ $# -ge 1 ] || { echo "usage: multi-camera.sh WATCHLIST RTSP_URL [RTSP_URL...]" >&2; exit 2; }
branches=() i=0
for url in "$@"; do
  branches+=(rtspsrc location="$url" latency=200 ! decodebin ! veilbin watchlist="$list" \
             camera-id="cam$i" threads=1 ! fakesink sync=false)
  i=$((i + 1))
done
exec gst-launch-1.0 -m -e "${branches[@]}"
