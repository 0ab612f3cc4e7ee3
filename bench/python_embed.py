#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Python peer of faceveil's detect + align + embed step: CenterFace (detector) and the dlib ResNet
descriptor (embedder), written the usual way with onnxruntime + numpy + OpenCV, on a raw I420 frame.

Two measurements, each printed as one JSON line (plus one line with the faces found):
  step "embed":        the embedder's session.run alone, on a prepared [B,3,150,150] batch of real
                       aligned chips from this frame (repeated to fill the batch), B = 1 and 8.
  step "detect+embed": the whole per-frame path: I420 -> RGB (numpy, as python_detector.py), resize
                       to the tensor (cv2.resize, bilinear), CenterFace + decode + NMS, then per face a
                       4-DOF similarity fit of its 5 landmarks to the chip template, cv2.warpAffine of
                       the full-resolution RGB frame to 150x150, and ONE embedder run over all faces.

usage: python_embed.py DET.onnx EMB.onnx FRAME.i420 WIDTH HEIGHT TENSOR_W TENSOR_H [ITERATIONS]
Threads: env BENCH_THREADS (default 2) intra-op, 1 inter-op, for each session.
"""
import json
import os
import sys
import time

import cv2
import numpy as np
os.environ["ORT_DISABLE_TELEMETRY"] = "1"  # before onnxruntime loads: no telemetry
import onnxruntime as ort

# python_detector.py sits beside this file: reuse its colour conversion, decode and NMS.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from python_detector import decode, i420_to_rgb, nms  # noqa: E402

IMPL = "python+onnxruntime+numpy+opencv"
CHIP = 150
# 5 landmarks (image-left eye, image-right eye, nose tip, left and right mouth corner) in chip pixels,
# as in models/dlib_resnet.toml.
TEMPLATE = np.array([[47.733, 47.140], [100.281, 47.123], [74.017, 77.162],
                     [52.270, 107.812], [95.786, 107.799]], dtype=np.float64)


def session(path, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3  # errors only (the detector graph warns about unused initializers)
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def similarity(src, dst):
    """Least-squares similarity (scale, rotation, translation; Umeyama without reflection) mapping
    src points onto dst points, as a 2x3 matrix for cv2.warpAffine."""
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    norm = (s ** 2).sum()
    a = (s[:, 0] * d[:, 0] + s[:, 1] * d[:, 1]).sum() / norm   # scale * cos
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / norm   # scale * sin
    m = np.array([[a, -b], [b, a]])
    return np.hstack([m, (md - m @ ms)[:, None]])


def stats(ms, iterations, total_s):
    ms = sorted(ms)
    return {"iterations": iterations, "mean_ms": round(sum(ms) / iterations, 3),
            "p50_ms": round(ms[iterations // 2], 3),
            "p95_ms": round(ms[min(iterations * 95 // 100, iterations - 1)], 3),
            "fps": round(iterations / total_s, 2)}


def main():
    det_path, emb_path, frame = sys.argv[1:4]
    w, h, tw, th = map(int, sys.argv[4:8])
    iterations = int(sys.argv[8]) if len(sys.argv) > 8 else 50
    threads = int(os.environ.get("BENCH_THREADS", "2"))
    det, emb = session(det_path, threads), session(emb_path, threads)
    data = np.fromfile(frame, dtype=np.uint8)
    assert data.size == w * h + 2 * ((w + 1) // 2) * ((h + 1) // 2), "frame size does not match WxH I420"

    def detect(rgb):
        t = cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)[None].copy()
        heat, scale, off, lms = det.run(None, {"input.1": t})
        boxes, scores = decode(heat, scale, off, lms)   # tensor coordinates, np.nonzero order
        ys, xs = np.nonzero(heat[0, 0] > 0.5)           # the same cells decode() kept, same order
        lm = lms[0][:, ys, xs].T.reshape(-1, 5, 2)       # per landmark (dy, dx) relative to the box
        bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        pts = np.stack([lm[:, :, 1] * bw[:, None] + boxes[:, 0:1],
                        lm[:, :, 0] * bh[:, None] + boxes[:, 1:2]], axis=-1)
        boxes[:, [0, 2]] *= w / tw
        boxes[:, [1, 3]] *= h / th
        pts *= (w / tw, h / th)
        keep = nms(boxes, scores)
        return boxes[keep], pts[keep]

    def chips(rgb, pts):
        out = [cv2.warpAffine(rgb, similarity(p, TEMPLATE), (CHIP, CHIP), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0) for p in pts]
        return np.stack(out).transpose(0, 3, 1, 2).copy()  # [N,3,150,150] float32 RGB 0..255

    def detect_embed():
        rgb = i420_to_rgb(data, w, h)
        boxes, pts = detect(rgb)
        if len(pts):
            emb.run(["embedding"], {"input": chips(rgb, pts)})
        return len(pts)

    # Faces found once, outside the timing; their chips feed the embed-only measurement.
    rgb = i420_to_rgb(data, w, h)
    boxes, pts = detect(rgb)
    n = len(boxes)
    print(json.dumps({"impl": IMPL, "step": "faces", "frame": f"{w}x{h}", "tensor": f"{tw}x{th}",
                      "faces": n, "face_widths_px": [round(float(b[2] - b[0]), 1) for b in boxes]}))
    if n == 0:
        sys.exit("no face found: nothing to embed")
    batch8 = chips(rgb, pts)[np.arange(8) % n]

    # a) the embedder alone, batch 1 and batch 8.
    for b in (1, 8):
        x = batch8[:b].copy()
        for _ in range(3):
            emb.run(["embedding"], {"input": x})
        ms, t_all = [], time.perf_counter()
        for _ in range(iterations):
            t = time.perf_counter()
            emb.run(["embedding"], {"input": x})
            ms.append((time.perf_counter() - t) * 1e3)
        s = stats(ms, iterations, time.perf_counter() - t_all)
        s.pop("fps")
        print(json.dumps({"impl": IMPL, "step": "embed", "batch": b, "threads": threads, **s,
                          "per_face_ms": round(s["mean_ms"] / b, 3)}))

    # b) the whole per-frame path.
    for _ in range(3):
        detect_embed()
    ms, t_all = [], time.perf_counter()
    for _ in range(iterations):
        t = time.perf_counter()
        faces = detect_embed()
        ms.append((time.perf_counter() - t) * 1e3)
    s = stats(ms, iterations, time.perf_counter() - t_all)
    print(json.dumps({"impl": IMPL, "step": "detect+embed", "frame": f"{w}x{h}", "tensor": f"{tw}x{th}",
                      "threads": threads, "faces": faces, **s}))


if __name__ == "__main__":
    main()
