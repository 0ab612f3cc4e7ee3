# SPDX-License-Identifier: MIT
# Source this file (". scripts/env.sh") after scripts/setup.sh and 'cargo build --release' so that
# gst-launch-1.0 / gst-inspect-1.0 in this shell find the plugin, ONNX Runtime and the models.
export ORT_DISABLE_TELEMETRY=1   # no ONNX Runtime telemetry (see README, Privacy)
_fw_root=$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)
case ":${GST_PLUGIN_PATH:-}:" in
  *":$_fw_root/target/release:"*) ;;
  *) export GST_PLUGIN_PATH="$_fw_root/target/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}" ;;
esac
export ORT_DYLIB_PATH="$_fw_root/third_party/onnxruntime/libonnxruntime.so.1.32.0"
export FACEVEIL_MODEL_DIR="$_fw_root/models"
unset _fw_root
