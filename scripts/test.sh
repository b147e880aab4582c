#!/usr/bin/env bash
# The test suite: lint, unit and integration tests (parallel), the rate-sensitive tests (serial),
# then the CI gate: benchmarks at CI sizes whose ratio and accuracy gates fail the run when they fall.
set -euo pipefail
bash "$(dirname "$0")/setup.sh"
source "$(dirname "$0")/env.sh"
mkdir -p ci-artifacts
status=0
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step "ruff"
ruff check . || status=1
step "tests (parallel)"
python -m pytest tests -n 2 -m "not slow and not serial" --timeout 900 || status=1
step "tests (serial: rates and timings that need the machine to themselves)"
python -m pytest tests -m "serial and not slow" --timeout 900 || { rc=$?; [ $rc -eq 5 ] || status=1; }
step "GPU kit rehearsal (scripts/gpu-bench.sh --cpu-dry-run)"
bash scripts/gpu-bench.sh --cpu-dry-run ci-artifacts/gpu-dry-run || status=1
step "benchmark gate (CI sizes)"
python -m pytest benchmarks -m "not gpu and not slow" --timeout 1200 \
  --benchmark-json ci-artifacts/benchmarks.json --benchmark-columns=median,rounds || status=1
python -m iotbench report ci-artifacts/benchmarks.json || true
exit $status
