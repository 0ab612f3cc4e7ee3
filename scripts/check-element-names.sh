#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Checks that faceveil's element names collide with no other GStreamer element, now or likely later.
# Two plugins that register the same element name do not fail: the one scanned last wins, whatever
# its rank, and only a level-5 debug line says so. So every element here carries the one prefix
# `veil`, and this script checks, against
#   1. the list in tests/data/gst-elements.txt: every element of GStreamer 1.22 (core, base, good,
#      bad, ugly, libav, rtsp-server: the Debian 12 registry), the elements added in 1.24, 1.26 and
#      1.28, and those of gst-plugins-rs (sources named at the top of the file);
#   2. the live registry of this machine: every plugin file in the system's plugin folders and on
#      GST_PLUGIN_PATH that holds the bytes "veil" is inspected on its own (a name registered twice
#      is hidden from the merged registry, so looking there would not see it);
# that the plugin registers exactly the six elements below, all with the prefix, that no upstream
# name has the prefix, and that no other plugin file registers any name with the prefix.
# Usage: scripts/check-element-names.sh [PLUGIN_DIR]   (default target/release)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=veil
OURS="veilbin veildetect veilembed veilmatch veiloverlay veilredact"
LIST="$ROOT/tests/data/gst-elements.txt"
PLUGIN_DIR=${1:-$ROOT/target/release}
PLUGIN="$PLUGIN_DIR/libgstfaceveil.so"
fail() { echo "check-element-names: FAILED: $*" >&2; exit 1; }
[ -f "$PLUGIN" ] || fail "$PLUGIN not found: build it first (cargo build --release --lib)"
[ -f "$LIST" ] || fail "$LIST not found"

# Element names of one plugin file, inspected alone.
elements_of() {
  ORT_DISABLE_TELEMETRY=1 GST_REGISTRY="$tmp/registry.bin" GST_PLUGIN_PATH= GST_PLUGIN_SYSTEM_PATH= \
    gst-inspect-1.0 "$1" 2>/dev/null | sed -n 's/^  \([a-z0-9_-]*\): .*/\1/p' | sort -u
}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# 1. the plugin's own names
ours=$(elements_of "$PLUGIN" | tr '\n' ' ' | sed 's/ $//')
[ "$ours" = "$OURS" ] || fail "the plugin registers '$ours', expected '$OURS'"
for e in $ours; do
  case $e in "$PREFIX"*) ;; *) fail "element $e lacks the prefix '$PREFIX'" ;; esac
done

# 2. the upstream list: no name with the prefix (so none of ours either)
n=$(grep -cv '^#' "$LIST")
[ "$n" -gt 1000 ] || fail "$LIST holds only $n names"
clash=$(grep -v '^#' "$LIST" | grep "^$PREFIX" || true)
[ -z "$clash" ] || fail "upstream elements with the prefix '$PREFIX': $clash"

# 3. the live registry: every other plugin file that could hold such a name
dirs="$(pkg-config --variable=pluginsdir gstreamer-1.0 2>/dev/null || echo /usr/lib/x86_64-linux-gnu/gstreamer-1.0) ${GST_PLUGIN_PATH:+${GST_PLUGIN_PATH//:/ }}"
checked=0
for d in $dirs; do
  [ -d "$d" ] || continue
  for f in "$d"/*.so; do
    [ -f "$f" ] || continue
    [ "$(readlink -f "$f")" = "$(readlink -f "$PLUGIN")" ] && continue
    grep -qa "$PREFIX" "$f" || continue
    checked=$((checked + 1))
    all=$(elements_of "$f")
    [ -n "$all" ] || echo "check-element-names: warning: $f holds 'veil' but registers nothing when inspected alone" >&2
    other=$(grep "^$PREFIX" <<<"$all" | tr '\n' ' ' || true)
    [ -z "$other" ] || fail "$f registers '${other% }' (prefix '$PREFIX')"
  done
done
echo "check-element-names: ok: $OURS; none of $n upstream names and no other plugin file here" \
     "($checked inspected) uses the prefix '$PREFIX'"
