#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Watches a V4L2 camera (default /dev/video0) until Ctrl-C, printing the bus messages.
#   pipelines/webcam.sh WATCHLIST [DEVICE]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
list=${1:-}; need_list "$list"
exec gst-launch-1.0 -m -e v4l2src device="${2:-/dev/video0}" ! decodebin \
  ! veilbin watchlist="$list" camera-id=webcam ! fakesink sync=false
