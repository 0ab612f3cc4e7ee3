#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The installed tree, as a packager or an NVR operator gets it: `meson install` into a temporary
# prefix, then, in a clean environment (no ORT_DYLIB_PATH, no FACEVEIL_MODEL_DIR, GST_PLUGIN_PATH
# only the prefix's plugin dir, a fresh HOME):
#   - the installed `faceveil` makes a list and enrols a photo;
#   - gst-inspect-1.0 sees every element;
#   - the installed `faceveil-nvr` checks a configuration, refuses a bad one (exit 3, key and line
#     named) and, with one RTSP test camera, prints a match and stops cleanly on SIGTERM;
#   - completions, docs, the example configuration and the systemd unit are in place, and
#     `systemd-analyze verify` accepts the unit.
# Run by scripts/test.sh after the release build (it uses target/release/examples/rtsp_server as the
# test camera). usage: bash scripts/test-install.sh
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

tmp=$(mktemp -d)
camera_pid=
nvr_pid=
cleanup() {
  [ -n "$camera_pid" ] && kill "$camera_pid" 2>/dev/null || true
  [ -n "$nvr_pid" ] && kill "$nvr_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "test-install: FAILED: $*" >&2; exit 1; }

prefix=$tmp/prefix
build=${FACEVEIL_MESON_BUILD:-$ROOT/build-install}
echo "== meson setup/compile/install into $prefix"
rm -rf "$build"
setup_out=$(meson setup "$build" --prefix="$prefix") || { echo "$setup_out"; fail "meson setup"; }
# meson turns the analytics feature on exactly where GStreamer has the analytics library (>= 1.24).
if pkg-config --atleast-version=1.24 gstreamer-analytics-1.0 2>/dev/null; then want=YES; else want=NO; fi
grep -Eq "GStreamer analytics metadata *: *$want" <<<"$setup_out" ||
  { echo "$setup_out"; fail "meson's analytics option is not $want on GStreamer $(pkg-config --modversion gstreamer-1.0)"; }
meson compile -C "$build" >/dev/null
meson install -C "$build" >/dev/null

plugin=$(find "$prefix" -name libgstfaceveil.so -print -quit)
[ -n "$plugin" ] || fail "no libgstfaceveil.so under the prefix"
for f in bin/faceveil bin/faceveil-nvr bin/faceveil-mqtt \
         share/bash-completion/completions/faceveil share/zsh/vendor-completions/_faceveil \
         share/fish/vendor_completions.d/faceveil.fish \
         share/doc/faceveil/README.md share/doc/faceveil/WATCHLIST.md share/doc/faceveil/NVR.md \
         etc/faceveil/nvr.toml.example lib/systemd/system/faceveil-nvr.service \
         lib/systemd/system/faceveil-purge-expired.service lib/systemd/system/faceveil-purge-expired.timer; do
  [ -e "$prefix/$f" ] || fail "$f is not installed"
done
[ -x "$prefix/bin/faceveil-nvr" ] || fail "faceveil-nvr is not executable"
grep -q "ExecStart=$prefix/bin/faceveil-nvr --config $prefix/etc/faceveil/nvr.toml" \
  "$prefix/lib/systemd/system/faceveil-nvr.service" || fail "the unit does not run the installed runner"

# A clean environment: nothing from this shell, cargo or scripts/env.sh.
home=$tmp/home
mkdir -p "$home"
clean() {
  env -i PATH=/usr/bin:/bin HOME="$home" LANG=C.UTF-8 \
    GST_PLUGIN_PATH="$(dirname "$plugin")" GST_REGISTRY="$tmp/registry.bin" "$@"
}
# The same, replacing the (sub)shell: `(clean_exec …) &` makes $! the program's own pid.
clean_exec() {
  exec env -i PATH=/usr/bin:/bin HOME="$home" LANG=C.UTF-8 \
    GST_PLUGIN_PATH="$(dirname "$plugin")" GST_REGISTRY="$tmp/registry.bin" "$@"
}

echo "== the installed faceveil makes a list and enrols a photo"
list=$tmp/lists/w.fvl
mkdir -p "$tmp/lists"
clean "$prefix/bin/faceveil" --list "$list" init >/dev/null
clean "$prefix/bin/faceveil" --list "$list" enroll --label obama tests/photos/obama.jpg
clean "$prefix/bin/faceveil" --list "$list" verify

echo "== the installed purge-expired unit's command deletes an expired person"
# The unit's own ExecStart, with NVR.md's paths pointed at a scratch list.
purge=$(sed -n 's/^ExecStart=//p' "$prefix/lib/systemd/system/faceveil-purge-expired.service")
[ -n "$purge" ] || fail "faceveil-purge-expired.service has no ExecStart"
plist=$tmp/lists/p.fvl
clean "$prefix/bin/faceveil" --list "$plist" init >/dev/null
clean "$prefix/bin/faceveil" --list "$plist" enroll --label biden --expires 1s tests/photos/biden.jpg >/dev/null
clean "$prefix/bin/faceveil" --list "$plist" enroll --label obama tests/photos/obama.jpg >/dev/null
sleep 2
purge=${purge//\/var\/lib\/faceveil\/watchlist.fvl/$plist}
purge=${purge//\/etc\/faceveil\/watchlist.key/$plist.key}
# shellcheck disable=SC2086 # the unit's command line, split as systemd splits it (no quotes in it)
out=$(clean $purge)
grep -q "purged 1 expired identity" <<<"$out" || fail "the unit's command did not purge: $out"
out=$(clean "$prefix/bin/faceveil" --list "$plist" list)
grep -q obama <<<"$out" && ! grep -q biden <<<"$out" || fail "after the unit's purge: $out"

echo "== gst-inspect-1.0 sees every element"
for e in veildetect veilembed veilmatch veilredact veiloverlay veilbin; do
  clean gst-inspect-1.0 "$e" >/dev/null || fail "gst-inspect-1.0 $e"
done

echo "== faceveil-nvr: a bad configuration is refused, naming the key and the line"
cat > "$tmp/bad.toml" <<EOF
[defaults]
watchlist = "$list"
[[camera]]
name = "door"
url = "rtsp://127.0.0.1:1/cam"
treshold = 0.7
EOF
set +e
out=$(clean "$prefix/bin/faceveil-nvr" --config "$tmp/bad.toml" 2>&1)
code=$?
set -e
[ "$code" = 3 ] || fail "bad configuration: exit $code, expected 3: $out"
grep -q "line 6" <<<"$out" && grep -q "treshold" <<<"$out" || fail "the error names no key and line: $out"

echo "== faceveil-nvr with one RTSP test camera prints a match"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
target/release/examples/rtsp_server --port "$port" tests/photos/obama2.jpg >/dev/null 2>&1 &
camera_pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  sleep 0.2
done
cat > "$tmp/nvr.toml" <<EOF
[output]
events = "events.jsonl"
[defaults]
watchlist = "lists/w.fvl"
[[camera]]
name = "door"
url = "rtsp://127.0.0.1:$port/cam"
EOF
clean "$prefix/bin/faceveil-nvr" --config "$tmp/nvr.toml" --check
(clean_exec "$prefix/bin/faceveil-nvr" --config "$tmp/nvr.toml" 2>"$tmp/nvr.log") &
nvr_pid=$!
for _ in $(seq 450); do
  grep -q '"faceveil-match"' "$tmp/events.jsonl" 2>/dev/null && break
  kill -0 "$nvr_pid" 2>/dev/null || { cat "$tmp/nvr.log"; fail "faceveil-nvr exited"; }
  sleep 0.2
done
grep -q '"label":"obama"' "$tmp/events.jsonl" 2>/dev/null || { cat "$tmp/nvr.log"; fail "no match within 90 s"; }
grep -q '"camera-id":"door"' "$tmp/events.jsonl" || fail "the match names no camera"
# SIGHUP with an unchanged file: re-read, every camera kept running.
kill -HUP "$nvr_pid"
for _ in $(seq 50); do grep -q "configuration reloaded" "$tmp/nvr.log" && break; sleep 0.2; done
grep -q "configuration reloaded: 1 cameras (0 started, 0 stopped, 1 unchanged)" "$tmp/nvr.log" \
  || { cat "$tmp/nvr.log"; fail "SIGHUP did not reload the configuration"; }
kill -TERM "$nvr_pid"
wait "$nvr_pid" || fail "faceveil-nvr did not exit 0 on SIGTERM"
nvr_pid=
[ ! -e "$home/.cache/Microsoft" ] || fail "ONNX Runtime telemetry files in HOME"

if command -v systemd-analyze >/dev/null; then
  echo "== systemd-analyze verify"
  # The unit names the user 'faceveil', which this machine need not have: only unit errors count.
  out=$(systemd-analyze verify "$prefix/lib/systemd/system/faceveil-nvr.service" \
    "$prefix/lib/systemd/system/faceveil-purge-expired.service" \
    "$prefix/lib/systemd/system/faceveil-purge-expired.timer" 2>&1 || true)
  if grep -v -e "faceveil-nvr.service: Failed to resolve user" -e "^$" <<<"$out" | grep -q .; then
    echo "$out"
    fail "systemd-analyze verify"
  fi
  skipped=
else
  # Said loudly: a run without the tool has not checked the unit.
  echo "== systemd-analyze verify: SKIPPED, systemd-analyze is not installed (the Debian package systemd, which scripts/setup.sh installs): the unit was NOT verified" >&2
  skipped=" (the systemd unit NOT verified: no systemd-analyze)"
fi
rm -rf "$build"
echo "== installed tree: ok$skipped"
