#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The peer for benches/detector.rs: the same CenterFace model, the same pre/post-processing, written
the usual way in Python with onnxruntime + numpy, on the same raw I420 frame.

Per frame: I420 -> RGB for the whole frame (BT.601 limited range, chroma upsampled by repetition),
bilinear resize to the same tensor size (pixel-centre aligned), NCHW float32, inference, heatmap
decode (stride 4) and greedy NMS at IoU 0.3.

usage: python_detector.py MODEL.onnx FRAME.i420 WIDTH HEIGHT TENSOR_W TENSOR_H [ITERATIONS]
Prints one JSON line.
"""
import json
import os
import sys
import time

import numpy as np
os.environ["ORT_DISABLE_TELEMETRY"] = "1"  # before onnxruntime loads: no telemetry
import onnxruntime as ort


def i420_to_rgb(data, w, h):
    cw, ch = (w + 1) // 2, (h + 1) // 2
    y = data[: w * h].reshape(h, w).astype(np.float32)
    u = data[w * h : w * h + cw * ch].reshape(ch, cw).astype(np.float32)
    v = data[w * h + cw * ch :].reshape(ch, cw).astype(np.float32)
    u = u.repeat(2, 0).repeat(2, 1)[:h, :w] - 128.0
    v = v.repeat(2, 0).repeat(2, 1)[:h, :w] - 128.0
    y = (y - 16.0) * (255.0 / 219.0)
    k = 255.0 / 224.0
    r = y + 1.402 * k * v
    g = y - 0.344136 * k * u - 0.714136 * k * v
    b = y + 1.772 * k * u
    return np.clip(np.stack([r, g, b], axis=-1), 0, 255)


def resize_bilinear(img, tw, th):
    h, w = img.shape[:2]
    xs = np.clip((np.arange(tw) + 0.5) * (w / tw) - 0.5, 0, w - 1)
    ys = np.clip((np.arange(th) + 0.5) * (h / th) - 0.5, 0, h - 1)
    x0 = xs.astype(np.int32)
    y0 = ys.astype(np.int32)
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    fx = (xs - x0)[None, :, None]
    fy = (ys - y0)[:, None, None]
    top = img[y0][:, x0] * (1 - fx) + img[y0][:, x1] * fx
    bot = img[y1][:, x0] * (1 - fx) + img[y1][:, x1] * fx
    return top * (1 - fy) + bot * fy


def decode(heat, scale, off, lms, threshold=0.5, stride=4):
    ys, xs = np.nonzero(heat[0, 0] > threshold)
    boxes, scores = [], []
    for y, x in zip(ys, xs):
        s0 = np.exp(scale[0, 0, y, x]) * stride
        s1 = np.exp(scale[0, 1, y, x]) * stride
        x1 = (x + off[0, 1, y, x] + 0.5) * stride - s1 / 2
        y1 = (y + off[0, 0, y, x] + 0.5) * stride - s0 / 2
        boxes.append([x1, y1, x1 + s1, y1 + s0])
        scores.append(heat[0, 0, y, x])
    return np.array(boxes).reshape(-1, 4), np.array(scores)


def nms(boxes, scores, iou=0.3):
    order = scores.argsort()[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        ovr = inter / (area(boxes[[i]]) + area(boxes[order[1:]]) - inter)
        order = order[1:][ovr <= iou]
    return keep


def main():
    model, frame, w, h, tw, th = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:7])
    iterations = int(sys.argv[7]) if len(sys.argv) > 7 else 50
    threads = int(os.environ.get("BENCH_THREADS", "2"))
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    data = np.fromfile(frame, dtype=np.uint8)

    def detect():
        rgb = i420_to_rgb(data, w, h)
        t = resize_bilinear(rgb, tw, th).astype(np.float32).transpose(2, 0, 1)[None].copy()
        heat, scale, off, lms = sess.run(None, {"input.1": t})
        boxes, scores = decode(heat, scale, off, lms)
        boxes[:, [0, 2]] *= w / tw
        boxes[:, [1, 3]] *= h / th
        return nms(boxes, scores)

    for _ in range(3):
        detect()
    ms = []
    t_all = time.perf_counter()
    for _ in range(iterations):
        t = time.perf_counter()
        faces = len(detect())
        ms.append((time.perf_counter() - t) * 1e3)
    total = time.perf_counter() - t_all
    ms.sort()
    print(json.dumps({
        "impl": "python+onnxruntime+numpy", "frame": f"{w}x{h}", "tensor": f"{tw}x{th}",
        "threads": threads, "iterations": iterations, "faces": faces,
        "fps": round(iterations / total, 2), "mean_ms": round(sum(ms) / iterations, 2),
        "p50_ms": round(ms[iterations // 2], 2), "p95_ms": round(ms[min(iterations * 95 // 100, iterations - 1)], 2),
    }))


if __name__ == "__main__":
    main()
