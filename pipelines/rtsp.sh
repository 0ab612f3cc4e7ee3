#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Watches one RTSP camera until Ctrl-C, printing the bus messages.
#   pipelines/rtsp.sh RTSP_URL WATCHLIST [CAMERA_ID]
# For a camera that may drop, use faceveil-nvr instead: it reconnects (docs/NVR.md).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
url=${1:?usage: rtsp.sh RTSP_URL WATCHLIST [CAMERA_ID]} list=${2:-}; need_list "$list"
exec gst-launch-1.0 -m -e rtspsrc location="$url" latency=200 ! decodebin \
  ! veilbin watchlist="$list" camera-id="${3:-rtsp}" ! fakesink sync=false
