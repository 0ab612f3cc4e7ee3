#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Build the dlib ResNet face descriptor as an ONNX model from face-api's tfjs weights.

Reads `face_recognition_model-weights_manifest.json` and the weight file(s) it names (as shipped in
the npm package @vladmandic/face-api 1.7.15, directory `model/`), dequantises the weights
(uint8: value = q * scale + min, computed in double and rounded to float32, as tfjs does) and writes
the network with the `onnx` helper API (opset 13):

  input      `input`      f32 [N, 3, 150, 150], RGB, 0..255, NCHW (N dynamic)
  in graph   (x - [122.782, 117.001, 104.298]) / 255           (face-api's normalisation)
  output     `embedding`  f32 [N, 128]                          (raw descriptor, not normalised)

Network (dlib_face_recognition_resnet_model_v1, in the order face-api's FaceRecognitionNet runs it):
  conv 7x7/2 valid (32) + relu, max-pool 3x3/2 valid                       150 -> 72 -> 35
  3 x residual(32), down(64), 3 x residual(64), down(128), 2 x residual(128),
  down(256), 2 x residual(256), down(256)                                  35 -> 17 -> 8 -> 3(4) -> 1(2)
  mean over H, W, then fully connected 256 -> 128 (no bias)
Every conv layer is conv + bias, then a per-channel scale layer (x * w + b); the scale is folded into
the conv's weights and bias here (in double precision).
  residual:  relu(conv3x3(relu(conv3x3(x))) + x)                     (3x3 convs: stride 1, pad 1)
  down:      relu(pad(conv3x3(relu(conv3x3/2 valid(x)))) + chpad(avgpool2x2/2(x)))
             chpad appends zero channels when the block doubles the channels; pad appends one zero row
             (bottom) and one zero column (right) to the conv branch when its size is one less than the
             pooled shortcut's. Both depend on the 150x150 input, so the graph is fixed to 150x150.

usage: convert_dlib_resnet.py IN_DIR OUT.onnx
  IN_DIR holds face_recognition_model-weights_manifest.json (or a `model/` directory that does).
Exits non-zero with a message on any inconsistency (missing or extra weights, shapes, sizes).
"""
import json
import os
import sys
from typing import NoReturn

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MANIFEST = "face_recognition_model-weights_manifest.json"
INPUT_SIZE = 150
MEAN_RGB = (122.782, 117.001, 104.298)
OPSET = 13

# (name, kind, in channels, out channels). "conv7" is the stem; "res" a residual block; "down" a
# residual block that halves the size (stride-2 conv, average-pool shortcut).
BLOCKS = [
    ("conv32_down", "conv7", 3, 32),
    ("conv32_1", "res", 32, 32),
    ("conv32_2", "res", 32, 32),
    ("conv32_3", "res", 32, 32),
    ("conv64_down", "down", 32, 64),
    ("conv64_1", "res", 64, 64),
    ("conv64_2", "res", 64, 64),
    ("conv64_3", "res", 64, 64),
    ("conv128_down", "down", 64, 128),
    ("conv128_1", "res", 128, 128),
    ("conv128_2", "res", 128, 128),
    ("conv256_down", "down", 128, 256),
    ("conv256_1", "res", 256, 256),
    ("conv256_2", "res", 256, 256),
    ("conv256_down_out", "down", 256, 256),
]
FC_SHAPE = (256, 128)


def fail(msg: str) -> NoReturn:
    raise SystemExit(f"convert_dlib_resnet: error: {msg}")


def expected_shapes() -> dict:
    """Every weight the network needs, with its tfjs shape (filters are HWIO)."""
    shapes = {}

    def conv_layer(prefix, k, cin, cout):
        shapes[f"{prefix}/conv/filters"] = (k, k, cin, cout)
        shapes[f"{prefix}/conv/bias"] = (cout,)
        shapes[f"{prefix}/scale/weights"] = (cout,)
        shapes[f"{prefix}/scale/biases"] = (cout,)

    for name, kind, cin, cout in BLOCKS:
        if kind == "conv7":
            conv_layer(name, 7, cin, cout)
        else:
            conv_layer(f"{name}/conv1", 3, cin, cout)
            conv_layer(f"{name}/conv2", 3, cout, cout)
    shapes["fc"] = FC_SHAPE
    return shapes


def load_weights(in_dir: str) -> dict:
    """Reads the tfjs manifest and weight files; returns name -> float32 array (tfjs shape)."""
    if not os.path.isfile(os.path.join(in_dir, MANIFEST)) and os.path.isfile(
        os.path.join(in_dir, "model", MANIFEST)
    ):
        in_dir = os.path.join(in_dir, "model")
    path = os.path.join(in_dir, MANIFEST)
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except OSError as e:
        fail(f"cannot read the weights manifest: {e}")
    except ValueError as e:
        fail(f"{path} is not valid JSON: {e}")
    if not isinstance(manifest, list) or not manifest:
        fail(f"{path}: expected a non-empty list of weight groups")

    wanted = expected_shapes()
    out = {}
    for gi, group in enumerate(manifest):
        paths, specs = group.get("paths"), group.get("weights")
        if not isinstance(paths, list) or not paths or not isinstance(specs, list):
            fail(f"{path}: group {gi} lacks 'paths' or 'weights'")
        chunks = []
        for p in paths:
            if os.path.basename(p) != p:
                fail(f"{path}: weight file name {p!r} is not a plain file name")
            try:
                with open(os.path.join(in_dir, p), "rb") as f:
                    chunks.append(f.read())
            except OSError as e:
                fail(f"cannot read weight file named in the manifest: {e}")
        buf = b"".join(chunks)
        offset = 0
        for spec in specs:
            name, shape, dtype = spec.get("name"), spec.get("shape"), spec.get("dtype")
            if name not in wanted:
                fail(f"unexpected weight {name!r} in the manifest (not part of the network)")
            if name in out:
                fail(f"weight {name!r} appears twice in the manifest")
            if tuple(shape or ()) != wanted[name]:
                fail(f"weight {name!r}: manifest shape {shape}, the network needs {list(wanted[name])}")
            if dtype != "float32":
                fail(f"weight {name!r}: dtype {dtype!r}, expected float32")
            count = int(np.prod(shape))
            q = spec.get("quantization")
            if q is None:
                npdt = np.dtype("<f4")
            else:
                qdtype = q.get("dtype")
                if qdtype not in ("uint8", "uint16"):
                    fail(f"weight {name!r}: quantisation dtype {qdtype!r} is not supported (uint8, uint16)")
                if not all(isinstance(q.get(k), (int, float)) for k in ("scale", "min")):
                    fail(f"weight {name!r}: quantisation lacks numeric 'scale' and 'min'")
                npdt = np.dtype("u1") if qdtype == "uint8" else np.dtype("<u2")
            nbytes = count * npdt.itemsize
            if offset + nbytes > len(buf):
                fail(
                    f"weight {name!r} needs bytes {offset}..{offset + nbytes} but the weight data of "
                    f"group {gi} ({', '.join(paths)}) has only {len(buf)} bytes"
                )
            raw = np.frombuffer(buf, dtype=npdt, count=count, offset=offset)
            if q is None:
                values = raw.astype(np.float32)
            else:
                # tfjs: value = q * scale + min in double precision, stored into a Float32Array.
                values = (raw.astype(np.float64) * float(q["scale"]) + float(q["min"])).astype(np.float32)
            if not np.all(np.isfinite(values)):
                fail(f"weight {name!r} has non-finite values")
            out[name] = values.reshape(shape)
            offset += nbytes
        if offset != len(buf):
            fail(f"group {gi}: the manifest accounts for {offset} bytes but the weight data has {len(buf)}")
    missing = sorted(set(wanted) - set(out))
    if missing:
        fail(f"the manifest lacks {len(missing)} weights the network needs, e.g. {missing[:4]}")
    return out


class Builder:
    def __init__(self, weights: dict):
        self.w = weights
        self.nodes = []
        self.inits = []
        self.n = 0

    def name(self, hint: str) -> str:
        self.n += 1
        return f"{hint}_{self.n}"

    def const(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(self, op: str, inputs, hint: str, **attrs) -> str:
        out = self.name(hint)
        self.nodes.append(helper.make_node(op, list(inputs), [out], name=out, **attrs))
        return out

    def conv_layer(self, x: str, prefix: str, stride: int, pad: int, relu: bool) -> str:
        """conv + bias, then scale layer (x * w + b) folded into the conv; optional relu."""
        filt = self.w[f"{prefix}/conv/filters"].astype(np.float64)  # HWIO
        bias = self.w[f"{prefix}/conv/bias"].astype(np.float64)
        sw = self.w[f"{prefix}/scale/weights"].astype(np.float64)
        sb = self.w[f"{prefix}/scale/biases"].astype(np.float64)
        kernel = filt.transpose(3, 2, 0, 1) * sw[:, None, None, None]  # OIHW
        b = bias * sw + sb
        k = filt.shape[0]
        wname = self.const(f"{prefix}/W", kernel.astype(np.float32))
        bname = self.const(f"{prefix}/B", b.astype(np.float32))
        y = self.node(
            "Conv", [x, wname, bname], prefix.replace("/", "_"),
            kernel_shape=[k, k], strides=[stride, stride], pads=[pad, pad, pad, pad],
        )
        return self.node("Relu", [y], prefix.replace("/", "_") + "_relu") if relu else y


def conv_out(size: int, k: int, stride: int, pad: int) -> int:
    return (size + 2 * pad - k) // stride + 1


def build(weights: dict) -> onnx.ModelProto:
    b = Builder(weights)
    mean = b.const("mean_rgb", np.array(MEAN_RGB, dtype=np.float32).reshape(1, 3, 1, 1))
    div = b.const("pixel_range", np.array(255.0, dtype=np.float32))
    x = b.node("Sub", ["input", mean], "centre")
    x = b.node("Div", [x, div], "normalise")
    size = INPUT_SIZE
    channels = 3
    for name, kind, cin, cout in BLOCKS:
        if cin != channels:
            fail(f"internal: block {name} expects {cin} channels, has {channels}")
        if kind == "conv7":
            x = b.conv_layer(x, name, 2, 0, True)
            size = conv_out(size, 7, 2, 0)
            x = b.node("MaxPool", [x], "maxpool", kernel_shape=[3, 3], strides=[2, 2], pads=[0, 0, 0, 0])
            size = conv_out(size, 3, 2, 0)
        elif kind == "res":
            y = b.conv_layer(x, f"{name}/conv1", 1, 1, True)
            y = b.conv_layer(y, f"{name}/conv2", 1, 1, False)
            x = b.node("Relu", [b.node("Add", [y, x], f"{name}_add")], f"{name}_relu")
        else:  # down
            y = b.conv_layer(x, f"{name}/conv1", 2, 0, True)
            y = b.conv_layer(y, f"{name}/conv2", 1, 1, False)
            conv_size = conv_out(conv_out(size, 3, 2, 0), 3, 1, 1)
            pooled = b.node("AveragePool", [x], f"{name}_pool", kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 0, 0])
            pool_size = conv_out(size, 2, 2, 0)
            if conv_size != pool_size:
                # face-api appends one zero row and one zero column to the conv branch.
                if pool_size - conv_size != 1:
                    fail(f"block {name}: conv branch {conv_size}, shortcut {pool_size}: cannot align")
                pads = b.const(f"{name}/pad_hw", np.array([0, 0, 0, 0, 0, 0, 1, 1], dtype=np.int64))
                y = b.node("Pad", [y, pads], f"{name}_pad_hw")
            if cout != cin:
                # face-api concatenates as many zero channels as the shortcut has.
                if cout != 2 * cin:
                    fail(f"block {name}: {cin} -> {cout} channels; face-api only doubles")
                pads = b.const(f"{name}/pad_c", np.array([0, 0, 0, 0, 0, cout - cin, 0, 0], dtype=np.int64))
                pooled = b.node("Pad", [pooled, pads], f"{name}_pad_c")
            x = b.node("Relu", [b.node("Add", [y, pooled], f"{name}_add")], f"{name}_relu")
            size = pool_size
        channels = cout
    if channels != FC_SHAPE[0]:
        fail(f"internal: {channels} channels before the fully connected layer")
    x = b.node("ReduceMean", [x], "global_avg", axes=[2, 3], keepdims=0)
    fc = b.const("fc/W", weights["fc"].astype(np.float32))
    b.nodes.append(helper.make_node("MatMul", [x, fc], ["embedding"], name="fc"))

    graph = helper.make_graph(
        b.nodes,
        "dlib_resnet_face_descriptor",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, INPUT_SIZE, INPUT_SIZE])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["N", FC_SHAPE[1]])],
        b.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="faceveil scripts/convert_dlib_resnet.py",
        doc_string=(
            "dlib_face_recognition_resnet_model_v1 (weights CC0, Davis King) from the tfjs port in "
            "@vladmandic/face-api 1.7.15. Input RGB 0..255 NCHW 150x150, normalisation inside; "
            "output: raw 128-d descriptor."
        ),
    )
    model.ir_version = 8
    return model


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    in_dir, out_path = sys.argv[1], sys.argv[2]
    weights = load_weights(in_dir)
    model = build(weights)
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # noqa: BLE001 - report whatever the checker says
        fail(f"the ONNX checker rejects the graph: {e}")
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    dims = [d.dim_value or d.dim_param for d in inferred.graph.output[0].type.tensor_type.shape.dim]
    if dims != ["N", FC_SHAPE[1]]:
        fail(f"shape inference gives output dims {dims}, expected ['N', {FC_SHAPE[1]}]")
    onnx.save(model, out_path)
    params = sum(int(np.prod(v.shape)) for v in weights.values())
    print(
        f"convert_dlib_resnet: wrote {out_path} ({len(model.graph.node)} nodes, {params} weights, "
        f"input 'input' [N,3,{INPUT_SIZE},{INPUT_SIZE}], output 'embedding' [N,{FC_SHAPE[1]}])"
    )


if __name__ == "__main__":
    main()
