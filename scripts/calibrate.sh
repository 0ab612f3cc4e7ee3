#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Recomputes docs/CALIBRATION.md: score distributions and error rates of the embedder on every
# genuine and impostor pair available (test photos, augmented, and the background photos sample4..6),
# the grayscale ORL faces s1..s20, the open-set evaluation (false alarms per list size), stranger
# false alarms per visit for lists of 10, 100 and 1,000 with exact 95 % intervals (Clopper–Pearson),
# and the default threshold. Copy the threshold it prints into models/dlib_resnet.toml.
#   bash scripts/calibrate.sh                      # the default embedder → docs/CALIBRATION.md
#   bash scripts/calibrate.sh MODEL.onnx [REPORT]  # another embedder (e.g. models/dlib_resnet-int8.onnx);
#                                                  # the report goes to REPORT, else only to stdout
set -euo pipefail
MODEL=${1:+$(realpath "$1")}
REPORT=${2:+$(realpath -m "$2")}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh
# shellcheck source=scripts/env.sh
. scripts/env.sh
if [ -n "$MODEL" ]; then
  CALIBRATE_EMBEDDER=$MODEL cargo run --locked --release --example calibrate -- \
    tests/photos third_party/background third_party/orl ${REPORT:+"$REPORT"}
else
  cargo run --locked --release --example calibrate -- tests/photos third_party/background third_party/orl docs/CALIBRATION.md
fi
