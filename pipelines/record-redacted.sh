#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Records a source to MP4 with every face redacted (pixelated) except those of people on the watch
# list: veilbin redact=unmatched. A face is redacted until veilmatch has identified it (fail
# closed), frames between detector runs are redacted at the tracker's boxes, and a face the detector
# loses stays covered for a few frames (veilredact's hold). Stops at the end of a file source, or on
# Ctrl-C for a live one (-e: the MP4 is finalised). Matches are printed as bus messages.
#   pipelines/record-redacted.sh SOURCE WATCHLIST OUT.mp4 [MODE]
# SOURCE: an RTSP URL or a video file. MODE: unmatched (default), all or matched.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
usage="usage: record-redacted.sh SOURCE WATCHLIST OUT.mp4 [unmatched|all|matched]"
src=${1:?$usage} list=${2:-} out=${3:?$usage} mode=${4:-unmatched}
need_list "$list"
case $mode in unmatched|all|matched) ;; *) echo "$usage" >&2; exit 2 ;; esac
case $src in
  rtsp://*) input=(rtspsrc location="$src" latency=200) ;;
  *) input=(filesrc location="$src") ;;
esac
# The recording is the redacted video itself, so the analysis is in its path: on a live source the
# detector skips frames it is late for (the tracker's boxes are redacted meanwhile) instead of
# holding the video back.
# unmatched: a listed person is spared only on a frame where the detector found them and a
# descriptor of that very face confirmed who they are (a box carried between detector runs may
# have drifted onto, or been taken over by, a bystander). The detector runs on every frame
# (interval=1) so that they are shown throughout; frames a live camera cannot analyse in time are
# still covered (docs/PRIVACY.md).
interval=0
[ "$mode" = unmatched ] && interval=1
exec gst-launch-1.0 -m -e "${input[@]}" ! decodebin \
  ! veilbin watchlist="$list" camera-id=record redact="$mode" interval="$interval" \
  ! videoconvert ! x264enc tune=zerolatency ! mp4mux ! filesink location="$out"
