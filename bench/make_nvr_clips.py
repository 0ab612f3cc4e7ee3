#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Camera clips as an NVR analyses them, for bench/nvr_cameras.sh: 640x360 at 15 fps, H.264, with ground truth.

  python make_nvr_clips.py --out DIR --count N [--seconds 60] [--seed 1] [--empty]

writes DIR/nvrNN.mp4 and DIR/nvrNN.json for NN = 00 .. N-1 (with --empty: DIR/empty.mp4 and .json, a
clip with nobody in it). A clip that exists with the same arguments is kept.

Each clip is a still camera: a textured background (bench/make_clip.py's, without its pan) with a
little sensor noise, empty most of the time (about three quarters). People walk in at random times,
one at a time: from the left or right edge to a place in the room (0.6-1 s), stay there facing the
camera for 3-6 s (swaying a little), and walk out by either edge. Their faces are 20-30 % of the frame
height (72-108 px), sprites of the photos in tests/photos made by make_clip.py. About 40 % of the
visits, and at least one per clip, are by the enrolled person: the benchmark enrolls obama.jpg, the
clips show obama2.jpg and obama3.jpg, other photos of him. The others are biden.jpg, astronaut.png
and the six faces of t1.jpg. Everything is drawn from --seed and the clip's number.

Encoding as a camera's substream: x264 without B-frames, a key frame every 2 s, 512 kbit/s, in MP4.

Truth JSON: {"width", "height", "fps", "frames", "seconds", "seed", "visits": [{"who": photo,
"enrolled": bool, "appear", "entry", "exit", "leave"}]}, times in seconds of the clip (frame / fps):
appear = first frame with part of the face box in the frame, entry = first frame with all of it in
the frame, exit = last such frame, leave = last frame with part of it in the frame.

Needs numpy, opencv(-headless), onnxruntime (the benchmark venv of bench/make_frames.sh), and
gst-launch-1.0 with x264enc.
"""
import argparse
import json
import os
import subprocess
import sys

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_clip as mc  # noqa: E402  (sprites, background, blending: the same as the other clips)

W, H, FPS = 640, 360, 15
ENROLLED = ["obama2.jpg", "obama3.jpg"]  # the benchmark enrolls obama.jpg: other photos of him
OTHERS = ["biden.jpg", "astronaut.png", "t1.jpg"]


def plan(rng, seconds, n_enrolled, n_others):
    """Visits: dicts with the sprite, the times of walking in, staying and walking out, the path."""
    visits = []
    # the first visit anywhere in a mean visit-and-gap cycle, so that the clips' visits are spread
    # over time as at random, not bunched at their start
    t = rng.uniform(1.0, 25.0)
    while True:
        w_in, stay, w_out = rng.uniform(0.6, 1.0), rng.uniform(3.0, 6.0), rng.uniform(0.6, 1.0)
        if t + w_in + stay + w_out > seconds - 1.0:
            break
        enrolled = bool(rng.random() < 0.4)
        visits.append({
            "enrolled": enrolled,
            "sprite": int(rng.integers(n_enrolled)) if enrolled else n_enrolled + int(rng.integers(n_others)),
            "t0": t, "t1": t + w_in, "t2": t + w_in + stay, "t3": t + w_in + stay + w_out,
            "side_in": int(rng.integers(2)), "side_out": int(rng.integers(2)),
            "x": rng.uniform(0.25, 0.75) * W, "y": rng.uniform(0.3, 0.5) * H,
            "fh": rng.uniform(0.20, 0.30) * H,
            "sway": rng.uniform(0.005, 0.02) * W, "sway_p": rng.uniform(2.0, 4.0), "ph": rng.uniform(0, 2 * np.pi),
        })
        t = visits[-1]["t3"] + rng.uniform(8.0, 28.0)
    if visits and not any(v["enrolled"] for v in visits):
        v = visits[int(rng.integers(len(visits)))]
        v["enrolled"], v["sprite"] = True, int(rng.integers(n_enrolled))
    return visits


def face_at(v, t):
    """Face centre (x, y) and face height of visit v at time t (None outside the visit)."""
    if not v["t0"] <= t <= v["t3"]:
        return None
    out = -0.25 * W  # far enough outside that the whole sprite is out of the frame
    edge_in = out if v["side_in"] == 0 else W - out
    edge_out = out if v["side_out"] == 0 else W - out
    x = v["x"] + v["sway"] * np.sin(2 * np.pi * t / v["sway_p"] + v["ph"])
    fh = v["fh"] * (1 + 0.03 * np.sin(2 * np.pi * t / (1.3 * v["sway_p"]) + v["ph"]))
    if t < v["t1"]:  # walking in, growing a little as they come closer
        s = (t - v["t0"]) / (v["t1"] - v["t0"])
        return edge_in + (x - edge_in) * s, v["y"], fh * (0.85 + 0.15 * s)
    if t > v["t2"]:
        s = (t - v["t2"]) / (v["t3"] - v["t2"])
        return x + (edge_out - x) * s, v["y"], fh * (1 - 0.15 * s)
    return x, v["y"], fh


def place(spr, cx, cy, fh):
    """Sprite size and top-left so that its face box is fh high, centred on (cx, cy); and the box."""
    bx0, by0, bx1, by1 = spr["box"]
    k = fh / (by1 - by0)
    sh, sw = spr["img"].shape[:2]
    nw, nh = max(2, int(round(sw * k))), max(2, int(round(sh * k)))
    kx, ky = nw / sw, nh / sh
    x = int(round(cx - (bx0 + bx1) / 2 * kx))
    y = int(round(cy - (by0 + by1) / 2 * ky))
    return nw, nh, x, y, [x + bx0 * kx, y + by0 * ky, x + bx1 * kx, y + by1 * ky]


def make(path, truth_path, seed, seconds, sprites, n_enrolled, n_others, empty):
    rng_bg, rng_plan, rng_grain = (np.random.default_rng([seed, k]) for k in range(3))
    frames = int(round(seconds * FPS))
    bg = mc.make_background(rng_bg, W, H)
    grain = [rng_grain.normal(0, 1.5, (H, W)).astype(np.int16) for _ in range(4)]
    empty_yuv = cv2.cvtColor(bg, cv2.COLOR_BGR2YUV_I420)
    empty_frames = [empty_yuv.copy() for _ in grain]
    for e, g in zip(empty_frames, grain):
        e[:H] = np.clip(e[:H].astype(np.int16) + g, 0, 255).astype(np.uint8)
    visits = [] if empty else plan(rng_plan, seconds, n_enrolled, n_others)
    seen = [{"appear": None, "entry": None, "exit": None, "leave": None} for _ in visits]
    enc = subprocess.Popen(
        ["gst-launch-1.0", "-q", "fdsrc", "fd=0", "!", "rawvideoparse", "format=i420", f"width={W}", f"height={H}",
         f"framerate={FPS}/1", "colorimetry=bt601", "!", "x264enc", "speed-preset=veryfast", "bframes=0",
         "key-int-max=30", "bitrate=512", "!", "video/x-h264,profile=main", "!", "mp4mux", "!", "filesink",
         f"location={path}"], stdin=subprocess.PIPE)
    for f in range(frames):
        t = f / FPS
        yuv = empty_frames[f % 4]
        for i, v in enumerate(visits):
            p = face_at(v, t)
            if p is None:
                continue
            spr = sprites[v["sprite"]]
            nw, nh, x, y, box = place(spr, *p)
            if x + nw <= 0 or y + nh <= 0 or x >= W or y >= H:
                continue
            frame = bg.copy()
            mc.blend(frame, spr, nw, nh, x, y)
            yuv = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)
            yuv[:H] = np.clip(yuv[:H].astype(np.int16) + grain[f % 4], 0, 255).astype(np.uint8)
            x0, y0, x1, y1 = box
            partly = x1 > 0 and x0 < W and y1 > 0 and y0 < H
            whole = x0 >= 0 and y0 >= 0 and x1 <= W and y1 <= H
            s = seen[i]
            if partly:
                s["appear"] = t if s["appear"] is None else s["appear"]
                s["leave"] = t
            if whole:
                s["entry"] = t if s["entry"] is None else s["entry"]
                s["exit"] = t
        enc.stdin.write(yuv.tobytes())
    enc.stdin.close()
    if enc.wait() != 0:
        sys.exit(f"make_nvr_clips.py: encoding {path} failed (gst-launch-1.0 with x264enc)")
    names = [s["source"] for s in sprites]
    truth = {"width": W, "height": H, "fps": FPS, "frames": frames, "seconds": frames / FPS, "seed": seed,
             "visits": [{"who": names[v["sprite"]], "enrolled": v["enrolled"],
                         **{k: round(x, 3) for k, x in s.items() if x is not None}}
                        for v, s in zip(visits, seen) if s["entry"] is not None]}
    with open(truth_path, "w") as fh:
        json.dump(truth, fh, indent=1)
        fh.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for the clips and their truth")
    ap.add_argument("--count", type=int, default=16, help="clips with people (nvr00 .. nvrNN)")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--empty", action="store_true", help="write only empty.mp4, a clip with nobody")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    todo = [("empty", 1000)] if args.empty else [(f"nvr{i:02d}", i) for i in range(args.count)]
    sprites = None
    for name, k in todo:
        path, truth = os.path.join(args.out, name + ".mp4"), os.path.join(args.out, name + ".json")
        seed = args.seed * 10007 + k
        try:
            with open(truth) as fh:
                t = json.load(fh)
            if t["seed"] == seed and t["frames"] == int(round(args.seconds * FPS)) and os.path.getsize(path) > 0 \
                    and os.path.getmtime(path) >= os.path.getmtime(__file__):
                continue
        except (OSError, ValueError, KeyError):
            pass
        if sprites is None:
            sess = mc.session()
            enrolled = mc.make_sprites(sess, ENROLLED)
            others = mc.make_sprites(sess, OTHERS)
            if not enrolled or not others:
                sys.exit("make_nvr_clips.py: no usable face sprites")
            sprites = enrolled + others
        make(path, truth, seed, args.seconds, sprites, len(enrolled), len(others), args.empty)
        print(path, file=sys.stderr)


if __name__ == "__main__":
    main()
