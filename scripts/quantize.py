# SPDX-License-Identifier: MIT
"""Static INT8 (QDQ) versions of the detector and the embedder, with ONNX Runtime's quantisation tools.

usage: quantize.py CALIB_DIR MODELS_DIR [NAME...]

CALIB_DIR is what examples/quant_calib.rs writes from the background set (face-api's demo
sample1..3.jpg, whose faces no test uses): photoN.npy (each photo as RGB uint8 [H, W, 3]) and
chips-<name>.npy (each embedder's aligned input chips, float32, as the elements make them).

For each NAME (default: centerface dlib_resnet; the detector is centerface, every other name an
embedder, e.g. sface) it reads models/<name>.onnx and <name>.toml and writes <name>-int8.onnx and a
manifest <name>-int8.toml (the FP32 manifest with `name` and `file` changed). scripts/setup.sh runs it.

Format: QDQ, activations uint8 (asymmetric), weights int8 per channel with 7-bit range
(reduce_range): ONNX Runtime's CPU provider fuses the pairs into integer kernels (QLinearConv and
friends) that take uint8 x int8 on x86 (AVX2 VPMADDUBSW, AVX-512/AVX VNNI VPDPBUSD). The 7-bit weights
keep the AVX2 path (CPUs without VNNI) free of int16 saturation, ONNX Runtime's advice for those CPUs;
with VNNI they cost no speed.
Calibration: MinMax over the calibration set. The detector's feature-pyramid top-down path and heads
stay in float (detector_float_nodes).
"""

import os
import re
import sys
import tempfile
import tomllib

import numpy as np
import onnx
import onnxruntime as ort
from onnx import version_converter
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

ort.set_default_logger_severity(3)  # no warnings about unused BatchNormalization counters

# Tensor sizes (width, height) the detector element uses for common frames at its default
# inference size 640: 16:9 landscape (640x352), 4:3 (640x480), portrait (352x640), square.
DETECTOR_SIZES = [(640, 352), (640, 480), (352, 640), (640, 640)]
# Opset of the quantised graphs: per-channel QuantizeLinear/DequantizeLinear need 13.
OPSET = 13

# A quantised model's outputs must stay this close to the FP32 model's on the calibration set, or
# the script fails (a guard against a broken quantisation, not the acceptance test).
MIN_EMBEDDING_COSINE = 0.97
MAX_HEATMAP_DIFF = 0.25


def fail(msg):
    print(f"quantize.py: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def load_npy(path):
    try:
        return np.load(path)
    except OSError as e:
        fail(f"cannot read {path}: {e} (examples/quant_calib.rs writes it)")


def resize_axis(a, n_out, axis):
    """Stretches axis `axis` of `a` to `n_out` samples: each output sample averages the input over
    its footprint when shrinking (area), linear between the two nearest input samples (pixel
    centres) when enlarging, like the element's frame sampler."""
    n_in = a.shape[axis]
    scale = n_in / n_out
    if scale >= 1.0:
        # Integral of the piecewise-constant signal at the footprints' edges.
        c = np.concatenate([np.zeros_like(np.take(a, [0], axis)), np.cumsum(a, axis)], axis)
        x = np.arange(n_out + 1) * scale
        k = np.minimum(np.floor(x).astype(int), n_in - 1)
        f = (x - k).reshape([-1 if d == axis else 1 for d in range(a.ndim)])
        edges = np.take(c, k, axis) + f * np.take(a, k, axis)
        return np.diff(edges, axis=axis) / scale
    s = np.clip((np.arange(n_out) + 0.5) * scale - 0.5, 0, n_in - 1)
    i0 = np.floor(s).astype(int)
    i1 = np.minimum(i0 + 1, n_in - 1)
    f = (s - i0).reshape([-1 if d == axis else 1 for d in range(a.ndim)])
    return np.take(a, i0, axis) * (1 - f) + np.take(a, i1, axis) * f


def detector_tensor(rgb, width, height, manifest):
    """A photo (RGB uint8 [H, W, 3]) stretched to the tensor, normalised and laid out as the
    manifest's [input] says."""
    inp = manifest["input"]
    if inp.get("resize", "stretch") != "stretch":
        fail("only resize = stretch is supported here")
    img = resize_axis(resize_axis(rgb.astype(np.float64), height, 0), width, 1).astype(np.float32)
    if inp["color"] == "bgr":
        img = img[:, :, ::-1]
    img = (img - np.array(inp["mean"], np.float32)) / np.array(inp["std"], np.float32)
    if inp["layout"] == "nchw":
        img = img.transpose(2, 0, 1)
    return np.ascontiguousarray(img[None], np.float32)


class Feeds(CalibrationDataReader):
    def __init__(self, name, tensors):
        self.name = name
        self.tensors = tensors
        self.i = 0

    def get_next(self):
        if self.i >= len(self.tensors):
            return None
        self.i += 1
        return {self.name: self.tensors[self.i - 1]}

    def __len__(self):
        return len(self.tensors)

    def rewind(self):
        self.i = 0


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def detector_float_nodes(model):
    """Names of the detector's nodes that stay in float: the top-down path of the feature pyramid
    (from the deepest lateral convolution, the one that feeds the first ConvTranspose, through the
    upsampling and the additions) and the heads, i.e. that convolution and everything computed from
    it. They sum features of different scales and regress the box sizes through exp(): quantised,
    boxes of the test photos moved to IoU 0.80 against FP32; in float, IoU ≥ 0.96, at no measurable
    cost (the backbone is most of the work)."""
    nodes = list(model.graph.node)
    producer = {o: n for n in nodes for o in n.output}
    first = next((n for n in nodes if n.op_type == "ConvTranspose"), None)
    if first is None:
        fail("the detector has no ConvTranspose: scripts/quantize.py does not know this graph")
    start = producer.get(first.input[0])
    while start is not None and start.op_type != "Conv":
        start = producer.get(start.input[0])
    if start is None:
        fail("no convolution feeds the detector's first ConvTranspose")
    return sorted(downstream(nodes, [start]))


def downstream(nodes, starts):
    """Names of the nodes `starts` and of every node computed from them."""
    consumers = {}
    for n in nodes:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    keep, todo = {n.name for n in starts}, list(starts)
    while todo:
        for o in todo.pop().output:
            for c in consumers.get(o, []):
                if c.name not in keep:
                    keep.add(c.name)
                    todo.append(c)
    return keep


def embedder_float_nodes(model):
    """Names of the embedder's nodes that stay in float: depthwise convolutions (one filter per
    channel: too few weights per channel for 7-bit steps), and from every BatchNormalization that
    ONNX Runtime could not fold into a convolution on, the rest of the graph (SFace's head: a
    normalisation after an activation, the fully connected layer and the normalisation of the
    descriptor; quantised, its per-channel scales land on the wrong axis). Fully quantised, SFace's
    descriptors fell to cosine 0.968 against FP32 on the calibration chips; so, to 0.978. The dlib
    ResNet has neither: nothing of it stays in float."""
    nodes = list(model.graph.node)
    depthwise = {
        n.name
        for n in nodes
        if n.op_type == "Conv" and any(a.name == "group" and a.i > 1 for a in n.attribute)
    }
    bn = [n for n in nodes if n.op_type == "BatchNormalization"]
    return sorted(depthwise | downstream(nodes, bn))


def quantize(src, dst, input_name, tensors, tmp, float_nodes=None):
    """FP32 `src` → QDQ INT8 `dst`, calibrated on `tensors` (a list of input arrays); the nodes that
    `float_nodes(model)` names stay in float."""
    model = onnx.load(src)
    if model.opset_import[0].version < OPSET:
        model = version_converter.convert_version(model, OPSET)
    upgraded = os.path.join(tmp, "upgraded.onnx")
    onnx.save(model, upgraded)
    # Shape inference and ONNX Runtime's basic graph optimisation (BatchNormalization folded into
    # the convolutions before them), so that the quantised weights are the folded ones. ONNX shape
    # inference is enough for these CNNs (symbolic shape inference would need sympy).
    pre = os.path.join(tmp, "pre.onnx")
    quant_pre_process(upgraded, pre, skip_symbolic_shape=True)
    model = onnx.load(pre)
    for i, n in enumerate(model.graph.node):
        n.name = n.name or f"node{i}_{n.op_type}"
    onnx.save(model, pre)
    exclude = float_nodes(model) if float_nodes else []
    quantize_static(
        pre,
        dst,
        Feeds(input_name, tensors),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        reduce_range=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        nodes_to_exclude=exclude,
        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
    )
    return exclude


def write_manifest(src_toml, dst_toml, name, file, how):
    text = open(src_toml, encoding="utf-8").read()
    m = tomllib.loads(text)["model"]
    text, n1 = re.subn(r'(?m)^name = "' + re.escape(m["name"]) + '"', f'name = "{name}"', text, count=1)
    text, n2 = re.subn(r'(?m)^file = "' + re.escape(m["file"]) + '"', f'file = "{file}"', text, count=1)
    if (n1, n2) != (1, 1):
        fail(f"{src_toml}: could not find the [model] name and file lines")
    text = how + text
    tomllib.loads(text)  # still valid
    tmp = dst_toml + ".part"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, dst_toml)


def how(src_name):
    return (
        f"# INT8 version of {src_name}, made by scripts/quantize.py (run by scripts/setup.sh) with\n"
        "# onnxruntime.quantization 1.32.0: static QDQ, uint8 activations, per-channel int8 weights\n"
        "# (7-bit range), MinMax calibration on the background set (face-api demo sample1..3.jpg,\n"
        "# never used by the tests). Generated: edit scripts/quantize.py, not this file.\n"
    )


def publish(part, models, base, problem, calibration):
    """Moves the checked INT8 model `part` to models/<base>-int8.onnx and writes its manifest, or
    removes it and fails with `problem` (a message; False when the check passed)."""
    if problem:
        os.remove(part)
        fail(problem)
    os.replace(part, os.path.join(models, f"{base}-int8.onnx"))
    write_manifest(
        os.path.join(models, f"{base}.toml"),
        os.path.join(models, f"{base}-int8.toml"),
        f"{base}-int8",
        f"{base}-int8.onnx",
        how(f"{base}.onnx") + calibration,
    )


def detector(calib, models, tmp):
    src = os.path.join(models, "centerface.onnx")
    manifest = tomllib.load(open(os.path.join(models, "centerface.toml"), "rb"))
    photos = sorted(f for f in os.listdir(calib) if re.fullmatch(r"photo\d+\.npy", f))
    if not photos:
        fail(f"no photoN.npy in {calib}")
    tensors = [
        detector_tensor(load_npy(os.path.join(calib, p)), w, h, manifest)
        for p in photos
        for (w, h) in DETECTOR_SIZES
    ]
    dst = os.path.join(models, "centerface-int8.onnx")
    part = dst + f".{os.getpid()}.part"
    kept = quantize(src, part, manifest["input"]["name"], tensors, tmp, detector_float_nodes)
    # Guard: heatmaps of both models on the calibration tensors.
    heat = manifest["detector"]["outputs"]["heatmap"]
    a, b = session(src), session(part)
    worst = 0.0
    for t in tensors[:: len(DETECTOR_SIZES)]:
        feed = {manifest["input"]["name"]: t}
        ha = a.run([heat], feed)[0]
        hb = b.run([heat], feed)[0]
        worst = max(worst, float(np.abs(ha - hb).max()))
    print(
        f"quantize.py: centerface-int8: {len(kept)} nodes kept in float; largest heatmap difference "
        f"{worst:.3f} on {len(photos)} photos",
        file=sys.stderr,
    )
    publish(
        part,
        models,
        "centerface",
        worst > MAX_HEATMAP_DIFF
        and f"the INT8 detector's heatmap differs from FP32 by {worst:.3f} (> {MAX_HEATMAP_DIFF})",
        f"# Detector calibration: those photos stretched to {', '.join(f'{w}x{h}' for w, h in DETECTOR_SIZES)}.\n"
        + "# The feature pyramid's top-down path and the heads stay in float (see detector_float_nodes).\n",
    )


def embedder(calib, models, tmp, base):
    src = os.path.join(models, f"{base}.onnx")
    manifest = tomllib.load(open(os.path.join(models, f"{base}.toml"), "rb"))
    chips = load_npy(os.path.join(calib, f"chips-{base}.npy")).astype(np.float32)
    size = manifest["embedder"]["chip-size"]
    if chips.ndim != 4 or chips.shape[1:] not in [(3, size, size), (size, size, 3)] or len(chips) == 0:
        fail(f"chips-{base}.npy has shape {chips.shape}, expected [N, 3, {size}, {size}]")
    name = manifest["input"]["name"]
    tensors = [chips[i : i + 1] for i in range(len(chips))]
    dst = os.path.join(models, f"{base}-int8.onnx")
    part = dst + f".{os.getpid()}.part"
    kept = quantize(src, part, name, tensors, tmp, embedder_float_nodes)
    out = manifest["embedder"]["output"]
    ea = session(src).run([out], {name: chips})[0]
    eb = session(part).run([out], {name: chips})[0]
    cos = (ea * eb).sum(1) / np.linalg.norm(ea, axis=1) / np.linalg.norm(eb, axis=1)
    print(
        f"quantize.py: {base}-int8: {len(kept)} nodes kept in float; raw descriptor cosine to FP32 "
        f"on {len(chips)} chips: min {cos.min():.4f}, mean {cos.mean():.4f}",
        file=sys.stderr,
    )
    publish(
        part,
        models,
        base,
        cos.min() < MIN_EMBEDDING_COSINE
        and f"the INT8 embedder's descriptors differ from FP32 (cosine {cos.min():.4f} < {MIN_EMBEDDING_COSINE})",
        f"# Embedder calibration: {len(chips)} aligned chips of those faces (and of scaled, rotated,\n"
        "# brighter, darker and JPEG-compressed versions) made by examples/quant_calib.rs. The mean\n"
        "# descriptor (if any) and the thresholds are the FP32 model's.\n"
        + (
            f"# {len(kept)} nodes stay in float (depthwise convolutions and the head, see embedder_float_nodes).\n"
            if kept
            else ""
        ),
    )


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    calib, models = sys.argv[1], sys.argv[2]
    names = sys.argv[3:] or ["centerface", "dlib_resnet"]
    for d in (calib, models):
        if not os.path.isdir(d):
            fail(f"{d} is not a directory")
    for name in names:
        with tempfile.TemporaryDirectory() as tmp:
            if name == "centerface":
                detector(calib, models, tmp)
            else:
                embedder(calib, models, tmp, name)


if __name__ == "__main__":
    main()
