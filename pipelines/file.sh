#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Watches a video file: prints every bus message (the faceveil-match events among them).
#   pipelines/file.sh VIDEO WATCHLIST [CAMERA_ID]
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
video=${1:?usage: file.sh VIDEO WATCHLIST [CAMERA_ID]} list=${2:-}; need_list "$list"
exec gst-launch-1.0 -m filesrc location="$video" ! decodebin \
  ! veilbin watchlist="$list" camera-id="${3:-file}" ! fakesink
