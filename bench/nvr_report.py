#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The figures of bench/nvr_cameras.sh: one camera count's runs to one JSON line, or those lines to a table.

  nvr_report.py --clips DIR --runs DIR --count N     # reads RUNS/active-N, idle-N, decode-N
  nvr_report.py --table results.jsonl                # the Markdown table for BENCHMARKS.md

A run's folder holds server.jsonl (examples/rtsp_server: when each loop of each camera started, on
the wall clock), events.jsonl (faceveil-nvr's matches and health lines, one a second) and
measure.json (the window measured: t0, t1 on the wall clock, the CPU seconds of the process in it,
its VmHWM and VmRSS at the end). The clips' truth (bench/make_nvr_clips.py) says when each visit
appears, is whole in view (entry .. exit) and leaves, in clip seconds.

- Entry to match: for every visit of the enrolled person whose entry falls in [t0, t1 - 1], the
  first faceveil-match of its camera from its appearance until the next visit appears (or 10 s
  after it left), minus its entry. None: a miss. A match outside every enrolled visit is false.
- Analysed fps while someone is in view: per camera, the frames-analysed of its health lines over
  the intervals between two lines that lie within a visit (entry + 0.5 s .. exit); while empty:
  intervals at least 1 s away from every visit.
"""
import argparse
import json
import os
import statistics
from datetime import datetime, timezone


def utc(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def json_lines(path):
    if not os.path.exists(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.startswith("{")]


def measure(run):
    with open(os.path.join(run, "measure.json")) as fh:
        m = json.load(fh)
    m["cores"] = m["cpu"] / (m["t1"] - m["t0"])
    return m


def visits(clips, run, n, empty=False):
    """Per camera, its visits on the wall clock (every loop the server started)."""
    starts = {}
    for line in json_lines(os.path.join(run, "server.jsonl")):
        starts.setdefault(line["mount"], []).append(line["unix"])
    out = []
    for i in range(n):
        with open(os.path.join(clips, "empty.json" if empty else f"nvr{i:02d}.json")) as fh:
            truth = json.load(fh)
        loops = sorted(starts.get(f"/cam{i}", []))
        cam = []
        for k, s in enumerate(loops):
            until = loops[k + 1] if k + 1 < len(loops) else float("inf")
            for v in truth["visits"]:
                if s + v["appear"] < until:
                    cam.append({"enrolled": v["enrolled"], **{t: s + v[t] for t in ("appear", "entry", "exit", "leave")}})
        out.append(cam)
    return out


def health_rates(events, n, cam_visits, t0, t1):
    """Per camera: (analysed, seconds) while someone is in view, the same while empty, frames-in fps."""
    per = {f"cam{i}": [] for i in range(n)}
    for e in events:
        if e.get("event") == "faceveil-health" and e["camera-id"] in per:
            per[e["camera-id"]].append((utc(e["utc"]), e["frames-analysed"], e["frames-in"], e["frames-skipped"]))
    res = []
    for i in range(n):
        hs = sorted(h for h in per[f"cam{i}"] if t0 <= h[0] <= t1)
        act = [0, 0.0]
        emp = [0, 0.0]
        frames = skipped = 0
        for (ua, aa, fa, sa), (ub, ab, fb, sb) in zip(hs, hs[1:]):
            frames += fb - fa
            skipped += sb - sa
            if any(v["entry"] + 0.5 <= ua and ub <= v["exit"] for v in cam_visits[i]):
                act[0] += ab - aa
                act[1] += ub - ua
            elif all(ub < v["appear"] - 1 or ua > v["leave"] + 1 for v in cam_visits[i]):
                emp[0] += ab - aa
                emp[1] += ub - ua
        span = hs[-1][0] - hs[0][0] if len(hs) > 1 else 0
        res.append({"active": act[0] / act[1] if act[1] else None, "empty": emp[0] / emp[1] if emp[1] else None,
                    "frames_fps": frames / span if span else None, "skipped_fps": skipped / span if span else None})
    return res


def count_report(clips, runs, n):
    run = os.path.join(runs, f"active-{n}")
    m = measure(run)
    t0, t1 = m["t0"], m["t1"]
    events = json_lines(os.path.join(run, "events.jsonl"))
    cam_visits = visits(clips, run, n)
    matches = [[] for _ in range(n)]
    for e in events:
        if e.get("event") == "faceveil-match":
            matches[int(e["camera-id"][3:])].append(utc(e["utc"]))
    latencies, misses, false = [], 0, 0
    for i in range(n):
        vs = sorted(cam_visits[i], key=lambda v: v["appear"])
        windows = []
        for k, v in enumerate(vs):
            nxt = vs[k + 1]["appear"] if k + 1 < len(vs) else float("inf")
            windows.append((v, v["appear"] - 0.5, min(nxt, v["leave"] + 10)))
        for v, a, b in windows:
            if v["enrolled"] and t0 <= v["entry"] <= t1 - 1:
                hit = [t for t in matches[i] if a <= t < b]
                if hit:
                    latencies.append(round(min(hit) - v["entry"], 3))
                else:
                    misses += 1
        for t in matches[i]:
            if t0 <= t <= t1 + 10 and not any(v["enrolled"] and a <= t < b for v, a, b in windows):
                false += 1
    rates = health_rates(events, n, cam_visits, t0, t1)
    act = [r["active"] for r in rates if r["active"] is not None]
    emp = [r["empty"] for r in rates if r["empty"] is not None]
    in_view = []
    t = t0
    while t < t1:
        in_view.append(sum(any(v["appear"] <= t <= v["leave"] for v in cv) for cv in cam_visits))
        t += 0.25
    fr = [r["frames_fps"] for r in rates if r["frames_fps"] is not None]
    sk = [r["skipped_fps"] for r in rates if r["skipped_fps"] is not None]
    out = {
        "cameras": n, "seconds": round(t1 - t0, 1), "cores_busy": round(m["cores"], 3),
        "server_cores": round(m.get("server_cpu", 0) / (t1 - t0), 3),
        "hwm_mb": m["hwm_kb"] // 1024, "rss_mb": m["rss_kb"] // 1024,
        "analysed_fps_in_view": round(statistics.mean(act), 2) if act else None,
        "analysed_fps_in_view_min": round(min(act), 2) if act else None,
        "analysed_fps_empty": round(statistics.mean(emp), 2) if emp else None,
        "frames_fps": round(statistics.mean(fr), 2) if fr else None,
        "skipped_fps": round(statistics.mean(sk), 2) if sk else None,
        "in_view_mean": round(statistics.mean(in_view), 2) if in_view else None,
        "in_view_max": max(in_view) if in_view else None,
        "entries": len(latencies) + misses, "matched": len(latencies),
        "matched_1s": sum(1 for x in latencies if x <= 1.0), "misses": misses, "false_matches": false,
        "latency_median": round(statistics.median(latencies), 2) if latencies else None,
        "latency_max": round(max(latencies), 2) if latencies else None,
        "latencies": sorted(latencies),
        "nvr_stderr_lines": sum(1 for _ in open(os.path.join(run, "nvr.err"))),
    }
    idle, dec = os.path.join(runs, f"idle-{n}"), os.path.join(runs, f"decode-{n}")
    if os.path.exists(os.path.join(idle, "measure.json")) and os.path.exists(os.path.join(dec, "measure.json")):
        mi, md = measure(idle), measure(dec)
        out["idle_cores"] = round(mi["cores"], 3)
        out["decode_cores"] = round(md["cores"], 3)
        out["idle_cost_per_camera"] = round((mi["cores"] - md["cores"]) / n, 4)
        out["decode_per_camera"] = round(md["cores"] / n, 4)
        ir = health_rates(json_lines(os.path.join(idle, "events.jsonl")), n, visits(clips, idle, n, empty=True),
                          mi["t0"], mi["t1"])
        e = [r["empty"] for r in ir if r["empty"] is not None]
        out["idle_analysed_fps"] = round(statistics.mean(e), 2) if e else None
    return out


def fmt(x, spec="{:.2f}"):
    return "–" if x is None else spec.format(x)


def table(path):
    print("| cameras | cores busy | analysed fps per camera while someone is in view: mean (slowest) "
          "| analysed fps per camera, room empty | people in view at once: mean (max) "
          "| enrolled entries matched within 1 s / matched / all | entry → match, s: median (max) "
          "| false matches | idle cost per camera, cores (decoding alone) | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in json_lines(path):
        idle = "–" if "idle_cost_per_camera" not in r else \
            f'{r["idle_cost_per_camera"]:.3f} ({r["decode_per_camera"]:.3f})'
        print(f'| {r["cameras"]} | {r["cores_busy"]:.2f} | {fmt(r["analysed_fps_in_view"], "{:.1f}")} '
              f'({fmt(r["analysed_fps_in_view_min"], "{:.1f}")}) | {fmt(r["analysed_fps_empty"], "{:.1f}")} '
              f'| {fmt(r["in_view_mean"], "{:.1f}")} ({r["in_view_max"]}) '
              f'| {r["matched_1s"]} / {r["matched"]} / {r["entries"]} '
              f'| {fmt(r["latency_median"])} ({fmt(r["latency_max"])}) | {r["false_matches"]} | {idle} '
              f'| {r["hwm_mb"]} |')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips")
    ap.add_argument("--runs")
    ap.add_argument("--count", type=int)
    ap.add_argument("--table")
    a = ap.parse_args()
    if a.table:
        table(a.table)
    else:
        print(json.dumps(count_report(a.clips, a.runs, a.count), separators=(",", ":")))


if __name__ == "__main__":
    main()
