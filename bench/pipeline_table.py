# SPDX-License-Identifier: MIT
"""Markdown tables of bench/pipeline.sh's JSON lines (one per run): medians with min–max, the ratio to
the peer's det1 nospin on the same clip, and where our time goes per stage.
and, given the recall lines too, how many faces each schedule boxes.
  python3 bench/pipeline_table.py RESULTS.jsonl [RECALL.jsonl]"""
import json
import statistics
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{") and '"kind":"recall"' not in l]
for r in rows:
    # lines of an older pipeline.sh carried the peer's "impl" (python-peer-…) last
    r["side"] = "peer" if str(r.get("impl", "")).startswith(("peer", "python-peer")) else "faceveil"
groups = {}
for r in rows:
    groups.setdefault((r["res"], r["faces_in_clip"], r["side"], r["setting"]), []).append(r)
med = statistics.median
order = {"default": 0, "fp32": 1, "equal": 2, "int3": 3, "det1-nospin": 4, "det1-default": 5,
         "det3emb3-nospin": 6, "det3emb3-default": 7}
keys = sorted(groups, key=lambda k: (-k[0], k[1], order.get(k[3], 9)))
print("| clip | faces | implementation | setting | fps median (min–max) | CPU ms/frame | cores busy | peak RSS MB | × peer det1 nospin |")
print("|---|---|---|---|---|---|---|---|---|")
for key in keys:
    g = groups[key]
    fps = [r["fps"] for r in g]
    ref = groups.get((key[0], key[1], "peer", "det1-nospin"))
    ratio = f"{med(fps) / med([r['fps'] for r in ref]):.2f}×" if ref else "–"
    cores = med([r["cpu_s"] / r["wall_s"] for r in g])
    print(f"| {key[0]}p | {key[1]} | {key[2]} | {key[3]} | {med(fps):.1f} ({min(fps):.1f}–{max(fps):.1f}) "
          f"| {med([r['cpu_ms_per_frame'] for r in g]):.1f} | {cores:.2f} | {med([r['peak_rss_mb'] for r in g]):.0f} | {ratio} |")
print()
print("Where our time goes (ms per frame, medians of the elements' own stats; wall time of each stage in its")
print("streaming thread, so a model run on two threads costs up to twice that in CPU):")
print()
print("| clip | faces | setting | frame → tensor | detector model | detector wait | decode + NMS | tracking | chips + quality | embedder | match | CPU ms/frame |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for key in keys:
    if key[2] != "faceveil":
        continue
    g = groups[key]
    s = lambda k: med([r["ms_per_frame"][k] for r in g])
    print(f"| {key[0]}p | {key[1]} | {key[3]} | {s('tensor'):.2f} | {s('detector_model'):.2f} | {s('detector_wait'):.2f} "
          f"| {s('decode_nms'):.2f} | {s('tracking'):.3f} | {s('chips_quality'):.2f} | {s('embedder'):.2f} | {s('match'):.3f} "
          f"| {med([r['cpu_ms_per_frame'] for r in g]):.1f} |")

if len(sys.argv) > 2:
    recalls = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")]
    print()
    print("Recall against a detector model on every frame (examples/recall.rs; the reference: the FP32 model,")
    print("or the setting's own): the share of the faces it boxes that the setting boxes too (IoU ≥ 0.5), over")
    print("all and for the worst face of the clip (one with ≥ 15 frames); the setting's boxes that box no face")
    print("of the reference (extra; in brackets those on no face of the clip's truth either); frames the")
    print("detector ran on; seconds from the enrolled person wholly in view to the match, per visit (the")
    print("every-frame reference in brackets):")
    print()
    print("| clip | faces | setting | reference | recall | worst face | extra | detector runs (every frame) | match after, s (reference) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in sorted(recalls, key=lambda r: (-r["res"], r["faces_in_clip"], order.get(r["setting"], 9), r.get("reference", "") != "centerface.onnx")):
        lat = lambda v: ", ".join("never" if x is None else f"{x:.2f}" for x in v) or "no visit"
        pct = lambda v: f"{100 * v:.1f} %" if r["reference_boxes"] else "– (no face)"
        extra = lambda r: f"{r['extra_boxes']} of {r['boxes']} ({r.get('boxes_on_nobody', '?')} on no face)" if "boxes" in r else "–"
        print(f"| {r['res']}p | {r['faces_in_clip']} | {r['setting']} | {r.get('reference', '')} | {pct(r['recall'])} "
              f"| {pct(r['worst_face_recall'])} | {extra(r)} | {r['detector_runs']} ({r['reference_detector_runs']}) "
              f"| {lat(r['match_latency_s'])} ({lat(r['reference_match_latency_s'])}) |")
