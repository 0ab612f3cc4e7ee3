#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Records a source to MP4 beside the watch branch (tee): what an NVR does. Stops at the end of a file
# source, or on Ctrl-C for a live one (-e: the MP4 is finalised).
#   pipelines/record.sh SOURCE WATCHLIST OUT.mp4
# SOURCE: an RTSP URL or a video file.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
src=${1:?usage: record.sh SOURCE WATCHLIST OUT.mp4} list=${2:-} out=${3:?usage: record.sh SOURCE WATCHLIST OUT.mp4}
need_list "$list"
# The analysis branch's queue holds 1 s of video whatever the frame size (a plain queue's 10 MB is 3
# frames of 1080p). On a live camera it is also leaky: should the analysis stall, it drops its own
# oldest frames instead of holding the tee, and so the recording, back. A file is analysed whole.
analysis=(queue max-size-buffers=0 max-size-bytes=0 max-size-time=1000000000)
case $src in
  rtsp://*) input=(rtspsrc location="$src" latency=200) analysis+=(leaky=downstream) ;;
  *) input=(filesrc location="$src") ;;
esac
exec gst-launch-1.0 -m -e "${input[@]}" ! decodebin ! tee name=t \
  t. ! "${analysis[@]}" ! veilbin watchlist="$list" camera-id=record ! fakesink sync=false \
  t. ! queue ! videoconvert ! x264enc tune=zerolatency ! mp4mux ! filesink location="$out"
