#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A still-camera clip for motion gating (bench/still_person.sh), with ground truth.

Writes raw I420 frames (640 x 360 by default, 15 fps) to stdout and the truth JSON (--truth) in
bench/make_clip.py's format, so that examples/recall.rs reads it. The camera does not move: a
still background (bench/make_clip.py's, with its sensor grain), empty for --empty seconds; then a
person (a dark silhouette with a head) walks in from the left edge in --walk seconds and stands
still in the middle. --variant:
  away    the head is turned away (a hair-coloured head in the face sprite's shape) while walking
          in and for --away seconds of standing still, then turns to the camera: the face (the
          obama.jpg sprite) appears in place, and stays still to the end;
  facing  the face is visible while walking in, and stays still to the end;
  empty   nobody: --empty seconds of the still background only (the idle cost, bench/idle_cost.sh).
The truth holds the face's box on the frames where it is visible (none while turned away).

  python make_still_clip.py --variant away --truth t.json \\
    | gst-launch-1.0 fdsrc ! rawvideoparse format=i420 width=640 height=360 framerate=15/1 \\
        ! x264enc ! mp4mux ! filesink location=clip.mp4

Needs numpy, opencv(-headless), onnxruntime (bench/make_clip.py's sprites are found by CenterFace).
"""
import argparse
import json
import os
import sys

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_clip import blend, make_background, make_sprites, session  # noqa: E402

FPS = 15


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=360)
    ap.add_argument("--variant", choices=["away", "facing", "empty"], default="away")
    ap.add_argument("--empty", type=float, default=3.0, help="seconds of the empty scene first")
    ap.add_argument("--walk", type=float, default=2.0, help="seconds to walk in")
    ap.add_argument("--away", type=float, default=10.0, help="seconds standing still turned away")
    ap.add_argument("--after", type=float, default=7.0, help="seconds standing still at the end")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--truth", required=True)
    args = ap.parse_args()
    w, h = args.width, args.height
    t_enter, t_still = args.empty, args.empty + args.walk
    t_turn = t_still + (args.away if args.variant == "away" else 0.0)
    frames = int(round((t_turn + args.after) * FPS))
    if args.variant == "empty":
        frames, t_enter = int(round(args.empty * FPS)), float("inf")
    rng_bg, rng_grain = (np.random.default_rng([args.seed, k]) for k in range(2))

    sprites = make_sprites(session(), ["obama.jpg"])
    if not sprites:
        sys.exit("make_still_clip.py: no usable face sprite")
    spr = sprites[0]
    bg = make_background(rng_bg, w, h)
    grain = [rng_grain.normal(0, 1.5, (h, w)).astype(np.int16) for _ in range(4)]

    # The head: the sprite scaled to a face height of 22 % of the frame; the back of the head is
    # the same shape, filled with hair colour and a little texture.
    bx0, by0, bx1, by1 = spr["box"]
    k = 0.22 * h / (by1 - by0)
    sh, sw = spr["img"].shape[:2]
    nw, nh = int(round(sw * k)), int(round(sh * k))
    kx, ky = nw / sw, nh / sh
    hair_img = np.empty_like(spr["img"])
    hair_img[:] = (30, 38, 48)  # BGR: dark brown
    hair_img = np.clip(hair_img + rng_bg.normal(0, 6, hair_img.shape), 0, 255).astype(np.uint8)
    hair = {"img": hair_img, "alpha": spr["alpha"]}
    # Where the head stands: its centre at 55 % of the width, the face's top at 18 % of the height.
    x_end, y = int(0.55 * w - nw / 2), int(0.18 * h - by0 * ky)

    out = sys.stdout.buffer
    truth = []
    for f in range(frames):
        t = f / FPS
        frame = bg.copy()
        boxes = []
        if t >= t_enter:
            s = min(1.0, (t - t_enter) / args.walk)
            x = int(round(-nw + s * (x_end + nw)))
            # a body under the head: a dark coat, shoulders wider than the head
            cx = x + nw // 2
            top = y + int(0.85 * nh)
            cv2.ellipse(frame, (cx, top + int(0.9 * nh)), (int(0.95 * nw), int(nh)), 0, 180, 360,
                        (60, 50, 45), -1)
            cv2.rectangle(frame, (cx - int(0.95 * nw), top + int(0.9 * nh)), (cx + int(0.95 * nw), h),
                          (60, 50, 45), -1)
            facing = args.variant == "facing" or t >= t_turn
            blend(frame, spr if facing else hair, nw, nh, x, y)
            if facing:
                box = [x + bx0 * kx, y + by0 * ky, x + bx1 * kx, y + by1 * ky]
                cx0, cy0, cx1, cy1 = max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3])
                if cx1 > cx0 and cy1 > cy0:
                    inside = (cx1 - cx0) * (cy1 - cy0) / ((box[2] - box[0]) * (box[3] - box[1]))
                    boxes.append({"track": 0, "sprite": 0, "box": [round(v, 1) for v in box],
                                  "inside": round(inside, 3), "occluded": 0.0})
        truth.append(boxes)
        yuv = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)
        yuv[:h] = np.clip(yuv[:h].astype(np.int16) + grain[f % 4], 0, 255).astype(np.uint8)
        out.write(yuv.tobytes())
    out.flush()
    with open(args.truth, "w") as fh:
        json.dump({"width": w, "height": h, "fps": FPS, "frames": frames, "faces": 1, "seed": args.seed,
                   "variant": args.variant, "enter_s": t_enter, "still_s": t_still, "turn_s": t_turn,
                   "sprites": [{"source": spr["source"], "box": [round(v, 1) for v in spr["box"]],
                                "score": round(spr["score"], 3)}],
                   "boxes": truth}, fh, separators=(",", ":"))
        fh.write("\n")


if __name__ == "__main__":
    main()
