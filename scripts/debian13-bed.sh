#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The Debian 13 test bed: builds and tests the plugin against GStreamer 1.26 from Debian's own
# packages, on a Debian 12 host, with the host's Rust toolchain. Run by scripts/test.sh as its last
# step. In order:
#   1. a Debian 13 (trixie) root made with `debootstrap --variant=minbase` from the mirror of the
#      host's apt sources (or $FACEVEIL_DEBIAN_MIRROR), with GStreamer 1.26 and its dev packages; the
#      analytics headers (libgstreamer-plugins-bad1.0-dev, which depends on OpenCV) are unpacked
#      without their dependencies. The root is cached and rebuilt only when the package list or this
#      script's version changes (a stamp keyed by their sha256);
#   2. `cargo fetch --locked` on the host, then, inside the root (the repo, $RUSTUP_HOME and
#      $CARGO_HOME bind-mounted at their host paths, the target dir kept in the cache so that a
#      second run is incremental), offline:
#      a. the plugin built with the `analytics` feature, clippy clean with it, and `meson setup` turning that feature on
#         by itself (meson_options.txt: analytics=auto);
#      b. the element tests (unit tests, pipelines, detector, redact, bin, harness, and analytics, where
#         GStreamer's objectdetectionoverlay draws our faces, once tests/analytics.rs exists);
#      c. scripts/check-element-names.sh against the real 1.26 registry;
#      d. one gst-launch-1.0 pipeline with Debian's `onnxinference` (its ONNX Runtime 1.21) and our
#         `veildetect` (ONNX Runtime 1.32 from third_party/) in the same process.
#   3. a summary: minutes per phase, disk used by the root and the target dir.
# Mounts live in a private mount namespace and are undone on every exit; none outlives the script.
#
# Cache: ${FACEVEIL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faceveil}/debian13/{root,target,stamp}
# FACEVEIL_BED=auto (default): a machine that cannot run it (not root, no network to the mirror,
#   chroot fails) prints "debian13-bed: SKIPPED: <reason>" and exits 0;
# FACEVEIL_BED=require: the same machine fails; FACEVEIL_BED=off: does nothing.
# FACEVEIL_DEBIAN_MIRROR: the Debian mirror to debootstrap from (default: the host's apt sources).
# usage: bash scripts/debian13-bed.sh
set -euo pipefail

BED_VERSION=1   # raise to rebuild every cached root
SUITE=trixie
# What the build and the element tests need inside the root (beside minbase).
PACKAGES=(
  pkg-config gcc libc6-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly  # x264enc (pipelines/record*.sh)
  gstreamer1.0-libav         # avdec_h264: the tests decode what they recorded
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  fonts-dejavu-core          # veiloverlay's label font
  meson ninja-build          # meson turns the analytics feature on by itself here (checked below)
)
# Unpacked with dpkg-deb -x, without their dependencies (this one would pull in libopencv-dev).
UNPACK=(libgstreamer-plugins-bad1.0-dev)

MODE=${FACEVEIL_BED:-auto}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${FACEVEIL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faceveil}
BED=$CACHE/debian13
ROOTFS=$BED/root
TARGET=$BED/target
STAMP=$BED/stamp
LOGS=$BED/log
# The tools venv of scripts/setup.sh (python `onnx`, for the onnxinference model).
VENV=${FACEVEIL_VENV:-${FACEVEIL_CACHE:-$HOME/.cache/faceveil}/venv-tools}
RUSTUP_DIR=${RUSTUP_HOME:-$HOME/.rustup}
CARGO_DIR=${CARGO_HOME:-$HOME/.cargo}

say() { printf 'debian13-bed: %s\n' "$*" >&2; }
case $MODE in
  off) exit 0 ;;
  auto | require) ;;
  *) say "FAILED: FACEVEIL_BED is '$MODE'; it must be auto, require or off"; exit 2 ;;
esac
# A machine that cannot run the bed: skipped (auto) or failed (require).
skip() {
  if [ "$MODE" = require ]; then
    say "FAILED: cannot run on this machine (FACEVEIL_BED=require): $*"
    exit 1
  fi
  echo "debian13-bed: SKIPPED: $*"
  exit 0
}

# ---- 0. can this machine run it? (host mount namespace) ---------------------------------------
if [ -z "${_FACEVEIL_BED_NS:-}" ]; then
  [ "$(uname -s)" = Linux ] || skip "not Linux"
  [ "$(id -u)" = 0 ] || skip "not root (debootstrap, mount and chroot need root)"
  if ! command -v dpkg >/dev/null || [ "$(dpkg --print-architecture)" != amd64 ]; then
    skip "not a Debian amd64 host"
  fi
  for c in chroot unshare mount umount findmnt sha256sum; do
    command -v "$c" >/dev/null || skip "no '$c' on this machine"
  done
  [ -d "$RUSTUP_DIR/toolchains" ] ||
    skip "no rustup toolchain in $RUSTUP_DIR (the bed runs the host's Rust inside the root)"
  [ -x "$CARGO_DIR/bin/cargo" ] || skip "no $CARGO_DIR/bin/cargo"
  if ! command -v debootstrap >/dev/null; then
    say "installing debootstrap on the host"
    apt-get install -y --no-install-recommends debootstrap >/dev/null 2>&1 ||
      skip "debootstrap is missing and 'apt-get install debootstrap' failed"
  fi
  unshare --mount --propagation private true 2>/dev/null || skip "cannot make a mount namespace"
  # Mounts left under the cache by a run killed before this one (none should be; see below).
  stale=$(findmnt -rn -o TARGET | grep -F "$BED/" | sort -r || true)
  for m in $stale; do umount -R "$m" 2>/dev/null || umount -lR "$m" || true; done
  if findmnt -rn -o TARGET | grep -qF "$BED/"; then
    say "FAILED in phase 'setup': mounts under $BED that cannot be undone:"
    findmnt -rn -o TARGET | grep -F "$BED/" >&2
    exit 1
  fi
  # Everything from here on runs in a mount namespace of its own: every mount it makes is gone when
  # it ends, whatever ends it (the trap below also undoes them one by one).
  _FACEVEIL_BED_NS=1 exec unshare --mount --propagation private -- "$BASH" "${BASH_SOURCE[0]}" "$@"
fi

# ---- in the namespace ---------------------------------------------------------------------------
PHASE=setup
MOUNTS=()
TIMES=()
undo_mounts() {
  local i
  for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
    umount -R "${MOUNTS[i]}" 2>/dev/null || umount -lR "${MOUNTS[i]}" 2>/dev/null ||
      say "warning: could not unmount ${MOUNTS[i]}"
  done
  MOUNTS=()
}
on_exit() {
  local rc=$?
  undo_mounts
  [ "$rc" = 0 ] || say "FAILED in phase '$PHASE' (exit $rc)${LOG_HINT:+; $LOG_HINT}"
  exit "$rc"
}
trap on_exit EXIT
set -E
trap 'say "failed: $BASH_COMMAND (line $LINENO)"' ERR
trap 'exit 130' INT TERM

# Times a phase: `begin NAME` ... `end`.
begin() {
  PHASE=$1
  T0=$EPOCHREALTIME
  echo "== debian13-bed: $PHASE"
}
end() {
  TIMES+=("$PHASE $(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')")
}
mins() { awk -v s="$1" 'BEGIN { printf "%4.1f min (%5.0f s)", s / 60, s }'; }

# Nothing may be mounted under the root when it is deleted.
assert_unmounted() {
  if findmnt -rn -o TARGET | grep -qF "$ROOTFS/"; then
    say "mounts under $ROOTFS:"
    findmnt -rn -o TARGET | grep -F "$ROOTFS/" >&2
    exit 1
  fi
}

# The first non-security Debian mirror of the host's apt sources (deb822 .sources, then
# sources.list), preferring one that serves the host's own release.
host_mirror() {
  local codename
  # shellcheck source=/dev/null
  codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
  {
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] || continue
      awk 'BEGIN { RS = ""; FS = "\n" }
        { t = u = s = ""; on = "yes"
          for (i = 1; i <= NF; i++) {
            if ($i ~ /^[ \t]*#/ || index($i, ":") == 0) continue
            k = tolower(substr($i, 1, index($i, ":") - 1)); v = substr($i, index($i, ":") + 1)
            gsub(/^[ \t]+|[ \t]+$/, "", v)
            if (k == "types") t = v; else if (k == "uris") u = v
            else if (k == "suites") s = v; else if (k == "enabled") on = tolower(v)
          }
          if (t ~ /(^| )deb( |$)/ && on != "no") { n = split(u, us, /[ \t]+/); for (j = 1; j <= n; j++) print us[j], s }
        }' "$f"
    done
    if [ -f /etc/apt/sources.list ]; then
      sed -n 's/^[ \t]*deb[ \t]\+\(\[[^]]*\][ \t]\+\)\?\([^ \t]\+\)[ \t]\+\([^ \t]\+\).*/\2 \3/p' /etc/apt/sources.list
    fi
  } | awk -v c="$codename" '
      $0 ~ /security/ { next }
      { for (i = 2; i <= NF; i++) if ($i == c) { print $1; found = 1; exit } if (first == "") first = $1 }
      END { if (!found && first != "") print first }' | sed 's:/*$::'
}

# A command inside the root, in a clean environment.
in_root() {
  chroot "$ROOTFS" /usr/bin/env -i HOME=/root LANG=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    DEBIAN_FRONTEND=noninteractive ${http_proxy:+http_proxy="$http_proxy"} \
    ${https_proxy:+https_proxy="$https_proxy"} "$@"
}

# The kernel file systems the root needs (proc: onnxinference and ONNX Runtime read it).
mount_system() {
  mount -t proc proc "$ROOTFS/proc" && MOUNTS+=("$ROOTFS/proc")
  mount -t sysfs -o ro sysfs "$ROOTFS/sys" && MOUNTS+=("$ROOTFS/sys")
  mount --rbind /dev "$ROOTFS/dev" && MOUNTS+=("$ROOTFS/dev")
  mount --make-rslave "$ROOTFS/dev"
  mount -t tmpfs -o mode=1777 tmpfs "$ROOTFS/tmp" && MOUNTS+=("$ROOTFS/tmp")
}
# A host folder at the same absolute path inside the root.
bind_same() {
  mkdir -p "$ROOTFS$1"
  mount --bind "$1" "$ROOTFS$1" && MOUNTS+=("$ROOTFS$1")
  [ "${2:-}" != ro ] || mount -o remount,bind,ro "$ROOTFS$1"
}

mkdir -p "$BED" "$LOGS" "$TARGET"
key=$(printf '%s\n' "$BED_VERSION" "$SUITE" "${PACKAGES[@]}" -- "${UNPACK[@]}" | sha256sum | cut -c1-64)

# ---- 1. the root (cached) -----------------------------------------------------------------------
begin "debootstrap+apt"
if [ "$(cat "$STAMP" 2>/dev/null)" = "$key" ] && [ -x "$ROOTFS/usr/bin/gst-launch-1.0" ]; then
  echo "cached root $ROOTFS (stamp ${key:0:12})"
else
  mirror=${FACEVEIL_DEBIAN_MIRROR:-$(host_mirror)}
  [ -n "$mirror" ] || skip "no Debian mirror in the host's apt sources (set FACEVEIL_DEBIAN_MIRROR)"
  case $mirror in
    http://* | https://*)
      if command -v curl >/dev/null; then
        curl -fsS --max-time 20 -o /dev/null "$mirror/dists/$SUITE/InRelease" 2>/dev/null ||
          skip "no network to the Debian mirror (its $SUITE InRelease cannot be fetched)"
      fi
      ;;
  esac
  echo "building the root: debootstrap --variant=minbase $SUITE (mirror of the host's apt sources" \
       "or FACEVEIL_DEBIAN_MIRROR)"
  assert_unmounted
  rm -rf "$ROOTFS" "$STAMP" "$TARGET"   # a new root: nothing built against the old one is kept
  mkdir -p "$TARGET"
  LOG_HINT="see $LOGS/debootstrap.log"
  debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$mirror" >"$LOGS/debootstrap.log" 2>&1
  [ -x "$ROOTFS/bin/true" ] || skip "debootstrap made no usable root"
  in_root /bin/true || skip "chroot into the new root fails"
  mount_system
  LOG_HINT="see $LOGS/apt.log"
  {
    in_root apt-get update
    in_root apt-get install -y --no-install-recommends "${PACKAGES[@]}"
    # shellcheck disable=SC2016 # expanded by the shell inside the root
    in_root sh -c 'cd /tmp && apt-get download "$@" && for d in ./*.deb; do dpkg-deb -x "$d" /; done' \
      sh "${UNPACK[@]}"
    in_root apt-get clean
  } >"$LOGS/apt.log" 2>&1
  undo_mounts
  LOG_HINT=
  echo "$key" >"$STAMP"
fi
in_root /bin/true || skip "chroot into $ROOTFS fails"
echo "GStreamer $(in_root pkg-config --modversion gstreamer-1.0)," \
     "gstreamer-analytics-1.0 $(in_root pkg-config --modversion gstreamer-analytics-1.0)"
end

# ---- 2. the crates, on the host (the build inside is offline) -----------------------------------
begin "cargo fetch"
(cd "$REPO" && "$CARGO_DIR/bin/cargo" fetch --locked --quiet) ||
  skip "cargo fetch --locked failed on the host (no network to the crate registry?)"
end

# ---- mounts (undone by the EXIT trap) -----------------------------------------------------------
PHASE=mount
mount_system
bind_same "$REPO"
bind_same "$RUSTUP_DIR" ro
bind_same "$CARGO_DIR"
bind_same "$TARGET"

# Inside the root: the repo's scripts/env.sh, then the plugin of this build (not the host's
# target/release that env.sh names: that one is built against GStreamer 1.22).
# shellcheck disable=SC2016 # expanded by the shell inside the root
inside() {
  chroot "$ROOTFS" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
    PATH="$CARGO_DIR/bin:/usr/local/bin:/usr/bin:/bin" RUSTUP_HOME="$RUSTUP_DIR" \
    CARGO_HOME="$CARGO_DIR" CARGO_TARGET_DIR="$TARGET" RUSTUP_AUTO_INSTALL=0 CARGO_TERM_COLOR=never \
    ${RUSTUP_TOOLCHAIN:+RUSTUP_TOOLCHAIN="$RUSTUP_TOOLCHAIN"} \
    /bin/bash -c 'set -e; cd "$1"; shift; . scripts/env.sh
                  export GST_PLUGIN_PATH="$CARGO_TARGET_DIR/debug"; exec "$@"' bash "$REPO" "$@"
}
CARGO=(cargo --locked --offline)
FEATURES=(--features analytics)

# ---- a. build -----------------------------------------------------------------------------------
begin build
# --lib makes the plugin .so; rtsp_server is the test camera of tests/pipelines.rs.
inside "${CARGO[@]}" build "${FEATURES[@]}" --lib --example rtsp_server
end

# ---- a''. clippy on the feature's code (the host's clippy cannot build it) ------------------------
begin clippy
inside "${CARGO[@]}" clippy "${FEATURES[@]}" --all-targets -- -D warnings
end

# ---- a'. meson turns the analytics feature on by itself on 1.26 ---------------------------------
begin "meson setup"
out=$(inside meson setup /tmp/meson-bed 2>&1) || { echo "$out" | tail -20; say "meson setup failed"; exit 1; }
grep -Eq 'GStreamer analytics metadata *: *YES' <<<"$out" ||
  { echo "$out" | tail -20; say "meson did not turn the analytics feature on against GStreamer 1.26"; exit 1; }
echo "meson: GStreamer analytics metadata: YES"
end

# ---- b. the element tests -----------------------------------------------------------------------
# harness: the elements one by one, and the metadata through 1.26's own converters and scalers.
TESTS=(pipelines detector redact bin harness)
# e. tests/analytics.rs holds the objectdetectionoverlay pixel test (GStreamer's overlay draws our
#    faces: pixels inside the boxes change, outside do not): it runs here once the file exists.
[ -f "$REPO/tests/analytics.rs" ] && TESTS+=(analytics)
SELECT=(--lib)
for t in "${TESTS[@]}"; do SELECT+=(--test "$t"); done
begin "tests: build"
inside "${CARGO[@]}" test "${FEATURES[@]}" "${SELECT[@]}" --no-run
end
begin "tests: lib (unit)"
inside "${CARGO[@]}" test "${FEATURES[@]}" --lib
end
for t in "${TESTS[@]}"; do
  begin "tests: $t"
  inside "${CARGO[@]}" test "${FEATURES[@]}" --test "$t"
  end
done

# ---- c. element names against the real 1.26 registry ---------------------------------------------
begin "element names"
inside bash scripts/check-element-names.sh "$TARGET/debug"
end

# ---- d. Debian's onnxinference (ONNX Runtime 1.21) beside veildetect (1.32) ----------------------
begin "onnxinference + veildetect"
# onnxinference 1.26 takes any model whose input is one image (it fixes the frame size to the
# model's), but refuses one (“Failed to look up id for key …”) unless the model's metadata names a
# tensor id for every output. models/sface.onnx is such a model once that entry is added: a copy
# with it is made, inside the root, with the python `onnx` of scripts/setup.sh's tools venv.
model_src=$REPO/models/sface.onnx
model=/opt/faceveil-bed/sface-tensor-ids.onnx
if [ ! -s "$ROOTFS$model" ] || [ "$model_src" -nt "$ROOTFS$model" ]; then
  [ -x "$VENV/bin/python" ] || { say "no $VENV/bin/python: run scripts/setup.sh"; exit 1; }
  mkdir -p "$ROOTFS$(dirname "$model")"
  "$VENV/bin/python" - "$model_src" "$ROOTFS$model" <<'EOF'
import sys
import onnx
m = onnx.load(sys.argv[1])
onnx.helper.set_model_props(m, {o.name: "faceveil-bed-" + o.name for o in m.graph.output})
onnx.save(m, sys.argv[2])
EOF
fi
out=$(inside env GST_DEBUG=onnxinference:5 gst-launch-1.0 -m \
  filesrc location=tests/photos/obama.jpg ! jpegdec ! videoconvert ! imagefreeze num-buffers=3 \
  ! veildetect post-messages=true ! videoconvert ! videoscale \
  ! onnxinference model-file="$model" input-image-format=chw ! fakesink 2>&1) ||
  { echo "$out" | tail -40; say "the pipeline failed"; exit 1; }
faces=$(grep -c 'veildetect, timestamp.*landmarks' <<<"$out" || true)
runs=$(grep -c 'doRun.*Input dimensions' <<<"$out" || true)
[ "$faces" = 3 ] || { echo "$out" | tail -40; say "veildetect posted $faces messages with a face, expected 3"; exit 1; }
[ "$runs" = 3 ] || { echo "$out" | tail -40; say "onnxinference ran $runs times, expected 3"; exit 1; }
echo "one pipeline: veildetect found a face in 3 frames, onnxinference ran 3 times; exit 0"
end

# ---- summary ------------------------------------------------------------------------------------
PHASE=summary
undo_mounts   # before du: the binds would be counted
echo "== debian13-bed: summary (GStreamer $(in_root pkg-config --modversion gstreamer-1.0))"
total=0
for t in "${TIMES[@]}"; do
  s=${t##* }
  total=$(awk -v a="$total" -v b="$s" 'BEGIN { print a + b }')
  printf '  %-28s %s\n' "${t% *}" "$(mins "$s")"
done
printf '  %-28s %s\n' total "$(mins "$total")"
printf '  disk: root %s, target %s\n' "$(du -sxh "$ROOTFS" | cut -f1)" "$(du -sxh "$TARGET" | cut -f1)"
echo "debian13-bed: ok"
