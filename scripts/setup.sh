#!/usr/bin/env bash
# Create (or reuse) .venv/ and install everything iotbench needs; idempotent and quick when nothing changed.
#   System packages (apt-get, when missing): netcat-openbsd (nc), a Java runtime (Spark, BigDL, Scala), chromium (the HTML report's test).
#   Python packages (pip): the iotbench package with every extra, and BigDL without its pins
#   (its pyspark==3.1.3 pin conflicts with pyspark 3.5.9, which runs it fine: ../shared/notes/bigdl-spark.md).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

need_apt=()
command -v nc >/dev/null 2>&1 || need_apt+=(netcat-openbsd)
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)  # tests/test_report_html.py opens report --html in it
if [ ${#need_apt[@]} -gt 0 ]; then
  say "apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY="${IOTBENCH_PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 "$HOME/.pyenv/versions/3.11.7/bin/python3" python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY="$cand"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "error: Python 3.11 not found (set IOTBENCH_PYTHON)" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  say "creating .venv with $PY"
  "$PY" -m venv .venv
fi

stamp=.venv/.iotbench-setup
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "pip install (first time: several minutes — TensorFlow, PySpark, PyTorch)"
  quiet() { grep -v "WARNING: Location\|BuildBackendWarning\|^ *!!\|^ *\*\*\*\|careful with folders\|name as your package\|with strategy\|^ *$" || true; }
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | quiet
  .venv/bin/python -m pip install -q -e ".[keras,spark,torch,report,edge,dev]" 2>&1 | quiet
  .venv/bin/python -m pip install -q --no-deps "bigdl-dllib-spark3==2.4.0" "bigdl-core==2.4.0.dev0" 2>&1 \
    | grep -v "dependency conflicts\|requires pyspark\|requires numpy\|requires conda-pack" || true
  echo "$want" > "$stamp"
else
  say ".venv is up to date"
fi

if .venv/bin/python -c 'import iotbench.scala_build' 2>/dev/null; then
  say "building the Scala jar (cached by source hash)"
  .venv/bin/python -m iotbench scala build
fi
