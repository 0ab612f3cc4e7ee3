#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Rewrite OpenCV Zoo's SFace (face_recognition_sface_2021dec.onnx) for the elements.

The shipped graph lists every weight as a graph input as well as an initializer (ONNX Runtime then
treats the weights as overridable and does not fold them), and pins the batch to 1 (input `data`
[1, 3, 112, 112], output `fc1` [1, 128]). This script keeps only the real input, makes the batch
dimension of the input and the output symbolic, and checks with ONNX Runtime that the result gives
the original's descriptors: each chip of a batch of 1 and of a batch of 3 against the original
model at batch 1. Weights are untouched.

The network's input is RGB 0..255 (OpenCV's FaceRecognizerSF::feature: blobFromImage with scale 1,
mean 0, swapRB); its normalisation (x - 127.5) / 128 is inside the graph.

usage: convert_sface.py IN.onnx OUT.onnx
"""
import sys

import numpy as np
import onnx

# Largest absolute difference allowed between the converted and the original model's descriptors
# (float32 arithmetic in another order; the descriptors' entries are of order 1).
MAX_DIFF = 1e-4


def convert(model: onnx.ModelProto) -> None:
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise SystemExit(f"expected one graph input, found {[i.name for i in inputs]}")
    if len(graph.output) != 1:
        raise SystemExit(f"expected one graph output, found {[o.name for o in graph.output]}")
    for value in (inputs[0], graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        if not dims or dims[0].dim_value != 1:
            raise SystemExit(f"{value.name}: expected a batch dimension of 1")
        dims[0].ClearField("dim_value")
        dims[0].dim_param = "batch"
    real_input = onnx.ValueInfoProto()
    real_input.CopyFrom(inputs[0])
    del graph.input[:]
    graph.input.append(real_input)
    # Stale shape annotations on intermediate tensors would pin the batch again.
    del graph.value_info[:]


def check(original: str, converted: onnx.ModelProto) -> float:
    """Largest difference between the converted model's descriptors (batch 1 and batch 3) and the
    original's at batch 1, on three random chips."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)  # the original's weights-as-inputs warn once per weight
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    a = ort.InferenceSession(original, opts, providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(converted.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    name = converted.graph.input[0].name
    chips = np.random.default_rng(7).uniform(0, 255, (3, 3, 112, 112)).astype(np.float32)
    want = np.concatenate([a.run(None, {name: chips[i : i + 1]})[0] for i in range(3)])
    one = np.concatenate([b.run(None, {name: chips[i : i + 1]})[0] for i in range(3)])
    three = b.run(None, {name: chips})[0]
    if want.shape != (3, 128) or three.shape != (3, 128):
        raise SystemExit(f"unexpected output shapes {want.shape}, {three.shape}")
    return float(max(np.abs(one - want).max(), np.abs(three - want).max()))


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    model = onnx.load(sys.argv[1])
    convert(model)
    onnx.checker.check_model(model)
    diff = check(sys.argv[1], model)
    if not diff <= MAX_DIFF:
        raise SystemExit(f"converted SFace differs from the original by {diff:.2e} (> {MAX_DIFF})")
    onnx.save(model, sys.argv[2])
    print(
        f"convert_sface: wrote {sys.argv[2]} (input {model.graph.input[0].name}, output "
        f"{model.graph.output[0].name}; batch 1 and 3 within {diff:.1e} of the original)",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
