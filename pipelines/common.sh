# SPDX-License-Identifier: MIT
# Sourced by the pipeline scripts: finds the plugin, ONNX Runtime and the models (scripts/env.sh), and
# checks the watch list argument. FACEVEIL_PLUGIN_DIR overrides where the plugin is looked for.
_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=../scripts/env.sh
. "$_root/scripts/env.sh"
if [ -n "${FACEVEIL_PLUGIN_DIR:-}" ]; then
  export GST_PLUGIN_PATH="$FACEVEIL_PLUGIN_DIR"
fi
gst-inspect-1.0 veilbin >/dev/null 2>&1 || {
  echo "veilbin not found: run 'cargo build --release' (and scripts/setup.sh) first" >&2
  exit 1
}
need_list() {
  [ -f "${1:-}" ] || { echo "watch list '${1:-}' not found: make one with 'faceveil init' and 'faceveil enroll'" >&2; exit 2; }
}
