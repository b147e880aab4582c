#!/usr/bin/env bash
# The GPU measurement in one call, for a bare GPU machine that is lent for minutes:
#   checks the GPU (nvidia-smi, torch.cuda, a bf16 matmul), then runs `pytest benchmarks -m gpu`:
#   ResNet-50 at bf16 + channels_last + torch.compile + CUDA graphs over a batch sweep (each beside fp32 eager),
#   then every torchvision classifier at bf16 + channels_last eager; prints each case's compile time and time to
#   first result, and the headline images/s per batch against the goal (>= 20,000 img/s on one H100/H200).
#   Designed to end within 8 minutes, compilation included: every step runs under `timeout`, and the benchmark
#   session skips (with the reason) the cases that would end after its budget, so it ends normally with its JSON.
#
# Usage:
#   scripts/gpu-bench.sh [OUTDIR]              on the GPU machine; OUTDIR defaults to $OUT, else gpu-bench-out/
#   scripts/gpu-bench.sh --cpu-dry-run [OUTDIR]  the same steps on this machine's CPU at tiny sizes, with our .venv's
#                                              python and TensorFlow/Keras/Spark/BigDL made unimportable (CI runs it)
# Writes to OUTDIR: torch_gpu.json (pytest-benchmark JSON; commit a GPU run as benchmarks/results/torch_gpu_<gpu>.json),
#   cases.jsonl (one line per finished case, kept even if the run is killed), gpu-bench.log (everything printed).
#
# What the GPU machine has, and so what this script assumes: its own python3 (3.12, /opt/torch/.venv) with torch,
#   torchvision, numpy 2.x, pytest, pytest-benchmark, pillow; no network, no .venv, no ../shared.  The repository
#   runs from its source tree (PYTHONPATH=.), nothing is installed.
# Data: the 1,000-class val256 ImageNet sample (35 MB), carried into an ignored folder of the repository:
#     mkdir -p data-carry && cp -r ../shared/data/imagenet-sample/val256 data-carry/imagenet-val256
#   data-carry/ is in .gitignore: name it in the run's carry list (it travels with the working tree, 64 MiB at most).
#   IOTBENCH_IMAGENET=<dir> overrides; the default is data-carry/imagenet-val256.
# Weights: none are carried (ResNet-50's file alone is 98 MB) and nothing is downloaded: models are randomly
#   initialised, which costs the same time per image; the results say so (random_init, accuracy n/a).
# Knobs (environment): GPU_BENCH_SECONDS (480: the whole script), GPU_BENCH_BATCHES (headline batches,
#   128,256,512,1024), GPU_BENCH_ARCHS (registry sweep, default all), IOTBENCH_GPU_PYTHON (/opt/torch/.venv/bin/python3).
set -uo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
began=$(date +%s)

dry=0
outdir="${OUT:-}"
for arg in "$@"; do
  case "$arg" in
    --cpu-dry-run) dry=1 ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "error: unknown option $arg (see --help)" >&2; exit 2 ;;
    *) outdir="$arg" ;;
  esac
done
outdir="${outdir:-gpu-bench-out}"
mkdir -p "$outdir" || { echo "error: cannot create $outdir" >&2; exit 2; }
outdir="$(cd "$outdir" && pwd)"
log="$outdir/gpu-bench.log"
json="$outdir/torch_gpu.json"
cases="$outdir/cases.jsonl"
rm -f "$json" "$cases" "$outdir/hidden-imports.log"
exec > >(tee "$log") 2>&1

step() { printf '\n== %s (%ds)\n' "$*" "$(( $(date +%s) - began ))"; }
left() { echo $(( total - ($(date +%s) - began) )); }

if [ "$dry" = 1 ]; then
  total="${GPU_BENCH_SECONDS:-150}"
  py="$root/.venv/bin/python"; [ -x "$py" ] || py="$(command -v python3)"
  export PYTHONPATH="$root/scripts/bare-gpu-python:$root"  # TensorFlow, Keras, Spark, BigDL: not installed there
  export IOTBENCH_HIDDEN_LOG="$outdir/hidden-imports.log"
  data="${IOTBENCH_IMAGENET:-$root/../shared/data/imagenet-sample/val256}"
  mode_args=(--torch-dry-run)
  batches="${GPU_BENCH_BATCHES:-}"
else
  total="${GPU_BENCH_SECONDS:-480}"
  py="${IOTBENCH_GPU_PYTHON:-/opt/torch/.venv/bin/python3}"; [ -x "$py" ] || py="$(command -v python3)"
  export PYTHONPATH="$root"
  data="${IOTBENCH_IMAGENET:-$root/data-carry/imagenet-val256}"
  mode_args=()
  batches="${GPU_BENCH_BATCHES:-128,256,512,1024}"
fi
export IOTBENCH_IMAGENET="$data"
export PYTHONDONTWRITEBYTECODE=1 TF_CPP_MIN_LOG_LEVEL=2

step "environment ($([ "$dry" = 1 ] && echo 'CPU dry run' || echo GPU))"
rev=$(git -C "$root" rev-parse --short HEAD 2>/dev/null) && { git -C "$root" diff --quiet HEAD 2>/dev/null || rev+="+changes"; }
echo "repo ${rev:-?}, out $outdir, budget ${total}s"
timeout 60 "$py" -c 'import sys, numpy, torch, torchvision, pytest
print(f"python {sys.version.split()[0]} ({sys.executable}), numpy {numpy.__version__}, torch {torch.__version__}, "
      f"torchvision {torchvision.__version__}, pytest {pytest.__version__}")' || { echo "error: $py lacks numpy/torch/torchvision/pytest"; exit 3; }

if [ "$dry" = 0 ]; then
  step "GPU check"
  timeout 30 nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv \
    || { echo "error: nvidia-smi failed: no usable GPU"; exit 3; }
  timeout 30 nvidia-smi -q -d PERFORMANCE,CLOCK | sed -n '1,40p' || true
fi
step "torch check"
timeout 180 "$py" - "$dry" <<'PY' || { echo "error: torch check failed"; exit 3; }
import sys
import time

import torch

dry = sys.argv[1] == "1"
if not dry and not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} sees no CUDA device (built for CUDA {torch.version.cuda})")
device, dtype, n = ("cpu", torch.float32, 512) if dry else ("cuda", torch.bfloat16, 8192)
if not dry:
    p = torch.cuda.get_device_properties(0)
    print(f"{p.name}: compute capability {p.major}.{p.minor}, {p.total_memory / 2**30:.0f} GiB, "
          f"{p.multi_processor_count} SMs, CUDA {torch.version.cuda}, cudnn {torch.backends.cudnn.version()}")
a = torch.randn(n, n, device=device, dtype=dtype)
b = torch.randn(n, n, device=device, dtype=dtype)
for _ in range(3):
    a @ b
if not dry:
    torch.cuda.synchronize()
start, reps = time.perf_counter(), 20
for _ in range(reps):
    a @ b
if not dry:
    torch.cuda.synchronize()
tflops = 2 * n**3 * reps / (time.perf_counter() - start) / 1e12
print(f"{'fp32' if dry else 'bf16'} matmul {n}x{n} on {device}: {tflops:.2f} TFLOP/s (the device works; for scale)")
PY

step "data"
if ! n_img=$(find "$data" -type f \( -iname '*.jpeg' -o -iname '*.jpg' -o -iname '*.png' \) 2>/dev/null | wc -l) \
   || [ "$n_img" -eq 0 ]; then
  echo "error: no ImageNet images in $data (IOTBENCH_IMAGENET): carry the val256 sample, see the header of $0"
  exit 3
fi
echo "$data: $n_img images in $(find "$data" -mindepth 1 -maxdepth 2 -type d | wc -l) folders"

step "pytest benchmarks -m gpu"
pytest_s=$(( $(left) - 20 ))          # leave time for the summary
budget_s=$(( pytest_s - 30 ))         # the session stops starting cases before its timeout kills it
args=(benchmarks -m gpu -p no:cacheprovider
      --benchmark-json "$json" --benchmark-columns=median,rounds --torch-log "$cases" --torch-budget "$budget_s"
      "${mode_args[@]}")
[ -n "$batches" ] && args+=(--torch-batches "$batches")
[ -n "${GPU_BENCH_ARCHS:-}" ] && args+=(--torch-archs "$GPU_BENCH_ARCHS")
echo "timeout ${pytest_s}s $py -m pytest ${args[*]}"
timeout --kill-after=10 "$pytest_s" "$py" -m pytest "${args[@]}"
status=$?
[ $status -eq 124 ] || [ $status -eq 137 ] && echo "pytest hit its ${pytest_s}s timeout: cases.jsonl holds the cases that finished"

step "summary"
timeout 30 "$py" - "$json" "$cases" <<'PY' || { [ $status -ne 0 ] || status=1; }
import json
import sys
from pathlib import Path

from fixtures.cuda import case_line

json_path, cases_path = map(Path, sys.argv[1:])
rows = [json.loads(line) for line in cases_path.read_text().splitlines()] if cases_path.is_file() else []
print(f"{len(rows)} cases measured" + ("" if json_path.is_file() else f"; no {json_path.name} (pytest did not finish)"))
for row in rows:
    print(case_line(row))
if json_path.is_file():
    benches = json.loads(json_path.read_text())["benchmarks"]
    head = [b["extra_info"] for b in benches if b["name"].startswith("test_gpu_headline")]
    if head:
        print("\nResNet-50 headline, images/s per batch (time to first result):")
        for i in head:
            compile_s = "n/a" if i["compile_s"] is None else f"{i['compile_s']:.1f} s"
            print(f"  batch {i['batch']:>5}: {i['images_per_sec']:>10,.1f} img/s  ({i['ran']}; fp32 eager "
                  f"{i['fp32_eager_images_per_sec']:,.1f}, x{i['speedup_over_fp32_eager']}; first result "
                  f"{i['time_to_first_result_s']:.1f} s, compile {compile_s})")
        best = max(head, key=lambda i: i["images_per_sec"])
        verdict = "CPU dry run, not comparable to" if best["dry_run"] else "meets" if best["meets_target"] else "below"
        print(f"  best: batch {best['batch']}, {best['images_per_sec']:,.0f} img/s on {best['device_name']}: {verdict} "
              f"the goal of {best['target_images_per_sec']:,.0f} (original {best['original_images_per_sec']}, "
              f"x{best['over_original']}; MLPerf TensorRT int8 on one H100 ~{best['mlperf_h100_images_per_sec']:,.0f})")
        if best.get("random_init"):
            print("  weights: random initialisation (none on disk, nothing downloaded): accuracy n/a")
    sweep = [b["extra_info"] for b in benches if b["name"].startswith("test_gpu_registry")]
    if sweep:
        print(f"\nregistry sweep: {len(sweep)} classifiers measured at {sweep[0]['ran']}, batch {sweep[0]['batch']}")
PY

if [ "$dry" = 1 ] && [ -s "$outdir/hidden-imports.log" ]; then
  ours=$(grep -E " $root/(iotbench|fixtures|benchmarks|conftest)" "$outdir/hidden-imports.log" || true)
  if [ -n "$ours" ]; then
    echo "error: the torch path imported a package the GPU machine lacks:"; echo "$ours"; status=1
  else
    echo "(probes by other packages for the hidden ones, answered 'not installed': $(cut -d' ' -f1 "$outdir/hidden-imports.log" | sort -u | tr '\n' ' '))"
  fi
fi
[ -f "$json" ] || { echo "error: no pytest-benchmark JSON written"; [ $status -ne 0 ] || status=1; }
step "done: exit $status; files in $outdir"
ls -l "$outdir"
exit $status
