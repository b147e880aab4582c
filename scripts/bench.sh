#!/usr/bin/env bash
# The main benchmark on the embedded default (CPU, local Spark): every path at CI sizes, then a results table.
# Extra arguments go to pytest, e.g.  scripts/bench.sh -k keras   or   scripts/bench.sh -m "not gpu" --full
# (the default skips `slow` cases: Spark streaming and standalone-cluster runs, full-set Scala runs).
set -euo pipefail
bash "$(dirname "$0")/setup.sh"
source "$(dirname "$0")/env.sh"
mkdir -p .benchmarks
out=".benchmarks/bench-$(date -u +%Y%m%dT%H%M%SZ).json"
status=0
python -m pytest benchmarks -m "not gpu and not slow" --benchmark-json "$out" --benchmark-columns=median,rounds "$@" \
  || status=$?
python -m iotbench report "$out"
exit $status
