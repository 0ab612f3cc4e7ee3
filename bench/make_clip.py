#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A synthetic clip of moving faces for the redaction benchmark (bench/redact.sh), with ground truth.

Writes raw I420 frames (BT.601 limited range, as cv2.cvtColor makes them) to stdout, e.g.
  python make_clip.py --width 1280 --height 720 --seconds 10 --faces 3 --truth t.json \\
    | gst-launch-1.0 fdsrc ! rawvideoparse format=i420 width=1280 height=720 framerate=30/1 \\
        colorimetry=bt601 ! x264enc ! mp4mux ! filesink location=clip.mp4
and the ground truth as JSON (--truth): per frame, the face boxes in frame pixels.

The clip: a textured background (colour gradients, blotches, shapes, grain) that pans slowly, and
--faces "slots" (0, 1, 3, 8, ...): each slot shows one face at a time that enters the frame from one
edge, crosses it along a curved path while its size changes, leaves by another edge, and is followed
after a short gap by the next face. So about N faces are in view at any time (fewer during gaps), and
faces enter, leave, overlap, grow and shrink. Everything is drawn from --seed: same arguments, same
bytes.

The faces: generous head crops of the people in tests/photos (obama.jpg, obama2.jpg, biden.jpg,
astronaut.png and the six faces of t1.jpg), blended in with a feathered elliptical mask. Each sprite's
face box comes from CenterFace (models/centerface.onnx, pre/post-processing from python_detector.py)
run ONCE on the sprite itself; the box in a frame is that box under the sprite's placement (scale,
offset). Boxes are not clipped to the frame (a face leaving the frame has a box partly outside).

Truth JSON: {"width", "height", "fps", "frames", "faces", "seed", "sprites": [{"source", "box",
"score"}], "boxes": [[{"track", "sprite", "box": [x0, y0, x1, y1], "inside", "occluded"}, ...] per
frame]}. "inside" is the fraction of the box inside the frame; "occluded" the fraction of its
in-frame part that a sprite drawn later (over it) covers (where its alpha is over 0.5).

Threads for CenterFace: env BENCH_THREADS (default 2). Needs numpy, opencv(-headless), onnxruntime.
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np
os.environ["ORT_DISABLE_TELEMETRY"] = "1"  # before onnxruntime loads: no telemetry
import onnxruntime as ort

# python_detector.py sits beside this file: reuse its resize, heatmap decode and NMS.
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from python_detector import decode, nms, resize_bilinear  # noqa: E402

ROOT = os.path.dirname(HERE)
PHOTOS = os.path.join(ROOT, "tests", "photos")
MODEL = os.path.join(ROOT, "models", "centerface.onnx")
FPS = 30


# ---- CenterFace, shared with redact_coverage.py ----------------------------------------------------
def session(model=MODEL):
    so = ort.SessionOptions()
    so.intra_op_num_threads = int(os.environ.get("BENCH_THREADS", "2"))
    so.inter_op_num_threads = 1
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3  # no warnings about the model's unused initializers
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def tensor_size(w, h, longest):
    """The tensor for a w x h image with its longest side at `longest`, both sides multiples of 32."""
    s = longest / max(w, h)
    return max(32, int(round(w * s / 32)) * 32), max(32, int(round(h * s / 32)) * 32)


def detect(sess, bgr, longest=640, threshold=0.5):
    """CenterFace on a BGR uint8 image: (boxes [n,4] x0 y0 x1 y1 in image pixels, scores [n])."""
    h, w = bgr.shape[:2]
    tw, th = tensor_size(w, h, longest)
    rgb = bgr[:, :, ::-1].astype(np.float32)
    t = resize_bilinear(rgb, tw, th).astype(np.float32).transpose(2, 0, 1)[None].copy()
    heat, scale, off, lms = sess.run(None, {"input.1": t})
    boxes, scores = decode(heat, scale, off, lms, threshold)
    boxes[:, [0, 2]] *= w / tw
    boxes[:, [1, 3]] *= h / th
    keep = nms(boxes, scores) if len(scores) else []
    return boxes[keep].reshape(-1, 4), scores[keep].reshape(-1)


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


# ---- sprites ---------------------------------------------------------------------------------------
SOURCES = ["obama.jpg", "obama2.jpg", "biden.jpg", "astronaut.png", "t1.jpg"]


def make_sprites(sess, sources=SOURCES):
    """Head crops with a feathered elliptical alpha, and their face box from CenterFace on the sprite.
    sources: photos, in tests/photos unless a path says otherwise."""
    sprites = []
    for name in sources:
        img = cv2.imread(os.path.join(PHOTOS, name), cv2.IMREAD_COLOR)
        if img is None:
            sys.exit(f"make_clip.py: cannot read {os.path.join(PHOTOS, name)} (run scripts/setup.sh)")
        boxes, scores = detect(sess, img, longest=max(img.shape[:2]))
        for i in np.argsort(-scores):
            x0, y0, x1, y1 = boxes[i]
            fw, fh = x1 - x0, y1 - y0
            if fh < 48:
                continue
            # generous head region: 0.75 face widths either side, 0.6 face heights above, 0.45 below
            cx0, cy0 = int(max(0, x0 - 0.75 * fw)), int(max(0, y0 - 0.6 * fh))
            cx1, cy1 = int(min(img.shape[1], x1 + 0.75 * fw)), int(min(img.shape[0], y1 + 0.45 * fh))
            crop = img[cy0:cy1, cx0:cx1].copy()
            ch, cw = crop.shape[:2]
            # feathered ellipse centred on the face, touching the crop's edges
            yy, xx = np.mgrid[0:ch, 0:cw].astype(np.float32)
            fx, fy = (x0 + x1) / 2 - cx0, (y0 + y1) / 2 - cy0
            rx = min(fx, cw - fx)
            ry_up, ry_down = fy, ch - fy
            ry = np.where(yy < fy, ry_up, ry_down)
            d = np.sqrt(((xx - fx) / rx) ** 2 + ((yy - fy) / ry) ** 2)
            alpha = np.clip((1.0 - d) / 0.25, 0.0, 1.0)  # opaque inside 0.75 of the ellipse
            # the truth: CenterFace on the sprite itself (over mid-grey, as blended), the face nearest
            # the crop's centre face; other faces (neighbours in t1.jpg) must have faded out
            grey = (crop * alpha[..., None] + 128 * (1 - alpha[..., None])).astype(np.uint8)
            sb, ss = detect(sess, grey, longest=max(32, int(round(max(cw, ch) / 32)) * 32))
            if not len(ss):
                continue
            expect = [x0 - cx0, y0 - cy0, x1 - cx0, y1 - cy0]
            j = max(range(len(ss)), key=lambda k: iou(sb[k], expect))
            if iou(sb[j], expect) < 0.5 or sum(1 for k in range(len(ss)) if k != j and ss[k] > 0.3):
                continue  # the sprite's face is not clear, or a neighbour's face shows
            sprites.append({"source": name, "img": crop, "alpha": alpha,
                            "box": [float(v) for v in sb[j]], "score": float(ss[j])})
    return sprites


# ---- background ------------------------------------------------------------------------------------
def make_background(rng, bw, bh):
    base = cv2.resize(rng.uniform(50, 205, (5, 8, 3)).astype(np.float32), (bw, bh), interpolation=cv2.INTER_CUBIC)
    mid = cv2.resize(rng.normal(0, 22, (max(2, bh // 24), max(2, bw // 24), 3)).astype(np.float32), (bw, bh),
                     interpolation=cv2.INTER_CUBIC)
    img = base + mid
    over = img.copy()
    unit = min(bw, bh)
    for _ in range(220):  # rectangles, circles and lines, half transparent
        c = tuple(float(v) for v in rng.uniform(20, 235, 3))
        x, y = int(rng.uniform(0, bw)), int(rng.uniform(0, bh))
        k = rng.integers(3)
        if k == 0:
            cv2.rectangle(over, (x, y), (x + int(rng.uniform(0.01, 0.12) * unit), y + int(rng.uniform(0.01, 0.12) * unit)), c, -1)
        elif k == 1:
            cv2.circle(over, (x, y), int(rng.uniform(0.005, 0.05) * unit), c, -1)
        else:
            cv2.line(over, (x, y), (x + int(rng.normal(0, 0.15) * unit), y + int(rng.normal(0, 0.15) * unit)), c,
                     int(rng.integers(1, 6)))
    img = 0.5 * img + 0.5 * over
    img += rng.normal(0, 6, (bh, bw, 1)).astype(np.float32)  # grain
    return np.clip(img, 0, 255).astype(np.uint8)


# ---- motion ----------------------------------------------------------------------------------------
def plan(rng, n_slots, n_sprites, frames, w, h):
    """Per slot, a list of appearances: (first frame, last frame, sprite, path function)."""
    appearances = []
    order = list(rng.permutation(n_sprites))
    nxt = 0
    for slot in range(n_slots):
        t = -rng.uniform(0.0, 3.0) * FPS  # the first face of a slot may already be in view at frame 0
        while t < frames:
            dur = rng.uniform(4.0, 7.5) * FPS
            sp = int(order[nxt % len(order)])
            nxt += 1
            # face heights at start and end, a wobble on top
            fh0, fh1 = rng.uniform(0.09, 0.30, 2) * h
            wob_a, wob_p, wob_ph = rng.uniform(0.05, 0.15), rng.uniform(1.5, 3.5) * FPS, rng.uniform(0, 2 * np.pi)
            edges = rng.permutation(4)[:2]  # enter by one edge, leave by another

            def edge_point(e):
                u = rng.uniform(0.15, 0.85)
                return [(-0.1 * w, u * h), (1.1 * w, u * h), (u * w, -0.1 * h), (u * w, 1.1 * h)][e]

            p0, p2 = np.array(edge_point(edges[0])), np.array(edge_point(edges[1]))
            p1 = np.array([rng.uniform(0.25, 0.75) * w, rng.uniform(0.25, 0.75) * h])  # curve through the middle
            appearances.append((slot, int(t), int(t + dur), sp, p0, p1, p2, fh0, fh1, wob_a, wob_p, wob_ph))
            t += dur + rng.uniform(0.2, 1.2) * FPS
    return appearances


def place(a, f, sprites):
    """Sprite size and top-left for appearance a at frame f, so that the face centre follows the path."""
    slot, f0, f1, sp, p0, p1, p2, fh0, fh1, wa, wp, wph = a
    s = (f - f0) / (f1 - f0)
    c = (1 - s) ** 2 * p0 + 2 * (1 - s) * s * p1 + s ** 2 * p2  # quadratic Bezier: face centre
    fh = (fh0 + (fh1 - fh0) * s) * (1 + wa * np.sin(2 * np.pi * f / wp + wph))
    spr = sprites[sp]
    bx0, by0, bx1, by1 = spr["box"]
    k = fh / (by1 - by0)
    sh, sw = spr["img"].shape[:2]
    nw, nh = max(2, int(round(sw * k))), max(2, int(round(sh * k)))
    kx, ky = nw / sw, nh / sh  # the scale actually applied
    fcx, fcy = (bx0 + bx1) / 2 * kx, (by0 + by1) / 2 * ky
    x, y = int(round(c[0] - fcx)), int(round(c[1] - fcy))
    box = [x + bx0 * kx, y + by0 * ky, x + bx1 * kx, y + by1 * ky]
    return nw, nh, x, y, box


def blend(frame, spr, nw, nh, x, y):
    """Draws the sprite at size nw x nh, top-left (x, y); returns its alpha at that size."""
    h, w = frame.shape[:2]
    X0, Y0, X1, Y1 = max(0, x), max(0, y), min(w, x + nw), min(h, y + nh)
    interp = cv2.INTER_AREA if nw < spr["img"].shape[1] else cv2.INTER_LINEAR
    alpha = cv2.resize(spr["alpha"], (nw, nh), interpolation=cv2.INTER_LINEAR)
    img = cv2.resize(spr["img"], (nw, nh), interpolation=interp)[Y0 - y:Y1 - y, X0 - x:X1 - x]
    al = alpha[Y0 - y:Y1 - y, X0 - x:X1 - x, None]
    roi = frame[Y0:Y1, X0:X1]
    roi[:] = (img * al + roi * (1 - al)).astype(np.uint8)
    return alpha


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=720)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--faces", type=int, default=3, help="face slots: about this many faces in view (0, 1, 3, 8)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--truth", required=True, help="ground-truth JSON to write")
    ap.add_argument("--sources", default="",
                    help="comma-separated photos to take the faces from (default: " + ", ".join(SOURCES)
                    + "; relative to tests/photos)")
    ap.add_argument("--png", default="", help="also write frames F,G,... as PNG: DIR:F,G (for a look)")
    args = ap.parse_args()
    w, h = args.width, args.height
    if w % 2 or h % 2:
        sys.exit("make_clip.py: width and height must be even (I420)")
    frames = int(round(args.seconds * FPS))
    # one generator per purpose, so that the faces' motion (relative to the frame) is the same at
    # every frame size for a given seed
    rng_bg, rng_motion, rng_grain = (np.random.default_rng([args.seed, k]) for k in range(3))

    sess = session()
    sprites = make_sprites(sess, [s for s in args.sources.split(",") if s] or SOURCES)
    if args.faces and not sprites:
        sys.exit("make_clip.py: no usable face sprites")
    m = int(0.04 * w)  # pan margin
    bg = make_background(rng_bg, w + 2 * m, h + 2 * m)
    grain = [rng_grain.normal(0, 1.5, (h, w)).astype(np.int16) for _ in range(4)]  # a little sensor noise
    apps = plan(rng_motion, args.faces, len(sprites), frames, w, h) if args.faces else []
    pngs = {}
    if args.png:
        d, fl = args.png.split(":")
        pngs = {int(f): os.path.join(d, f"frame{int(f):04d}.png") for f in fl.split(",")}

    out = sys.stdout.buffer
    truth = []
    for f in range(frames):
        ox = int(round(m + m * 0.9 * np.sin(2 * np.pi * f / (12 * FPS))))
        oy = int(round(m + m * 0.6 * np.sin(2 * np.pi * f / (9 * FPS) + 1.0)))
        frame = bg[oy:oy + h, ox:ox + w].copy()
        live = [a for a in apps if a[1] <= f <= a[2]]
        live.sort(key=lambda a: a[0])  # slot order = drawing order
        placed = []
        for a in live:
            nw, nh, x, y, box = place(a, f, sprites)
            if x + nw <= 0 or y + nh <= 0 or x >= w or y >= h:
                continue
            alpha = blend(frame, sprites[a[3]], nw, nh, x, y)
            placed.append((a, alpha, x, y, box))
        boxes = []
        for i, (a, _, x, y, box) in enumerate(placed):
            x0, y0, x1, y1 = box
            cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
            area = (x1 - x0) * (y1 - y0)
            if cx1 <= cx0 or cy1 <= cy0:
                continue
            inside = (cx1 - cx0) * (cy1 - cy0) / area
            # occlusion: where a sprite drawn later is more than half opaque, sampled on a 24 x 24 grid
            # over the in-frame part of the box
            gx = (np.linspace(cx0, cx1, 24, endpoint=False) + (cx1 - cx0) / 48).astype(int)
            gy = (np.linspace(cy0, cy1, 24, endpoint=False) + (cy1 - cy0) / 48).astype(int)
            cov = np.zeros((24, 24), bool)
            for (_, al2, x2, y2, _) in placed[i + 1:]:
                ys, xs = gy - y2, gx - x2
                iy, ix = (ys >= 0) & (ys < al2.shape[0]), (xs >= 0) & (xs < al2.shape[1])
                if iy.any() and ix.any():
                    cov[np.ix_(iy, ix)] |= al2[np.ix_(ys[iy], xs[ix])] > 0.5
            boxes.append({"track": apps.index(a), "sprite": a[3], "box": [round(v, 1) for v in box],
                          "inside": round(inside, 3), "occluded": round(float(cov.mean()), 3)})
        truth.append(boxes)
        yuv = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)
        yuv[:h] = np.clip(yuv[:h].astype(np.int16) + grain[f % 4], 0, 255).astype(np.uint8)
        if f in pngs:
            cv2.imwrite(pngs[f], cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420))
        out.write(yuv.tobytes())
    out.flush()
    with open(args.truth, "w") as fh:
        json.dump({"width": w, "height": h, "fps": FPS, "frames": frames, "faces": args.faces, "seed": args.seed,
                   "sprites": [{"source": s["source"], "box": [round(v, 1) for v in s["box"]],
                                "score": round(s["score"], 3)} for s in sprites],
                   "boxes": truth}, fh, separators=(",", ":"))
        fh.write("\n")


if __name__ == "__main__":
    main()
