#!/usr/bin/env bash
# Create (or reuse) .venv-spark4/: a second, smaller environment where the Spark-native engine runs on pyspark 4.x.
# Run by `make setup SPARK=4` after scripts/setup.sh (which makes .venv, the default and only required environment);
# idempotent and quick when nothing changed.  It holds the iotbench package with the Keras extra and pyspark 4 with
# pandas and pyarrow: what the native engine (predict_batch_udf, Structured Streaming) imports.  No BigDL (its jars
# are Scala 2.12, Spark 4 is Scala 2.13 only), no PyTorch, no edge runtimes.  It is a separate script so that
# .venv's marker (a hash of pyproject.toml and scripts/setup.sh) does not change, and .venv is never touched here.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup spark4]\033[0m %s\n' "$*" >&2; }

VENV=.venv-spark4
PYSPARK4="${IOTBENCH_PYSPARK4:-4.3.0}"
# the Spark extra's companions, without its pyspark==3.5.9 pin (pyproject.toml's [spark] extra)
SPARK4_DEPS=("pyspark==$PYSPARK4" "pandas<3" "pyarrow>=15,<19")

command -v java >/dev/null 2>&1 || { echo "error: no java on PATH (Spark 4 needs Java 17 or 21: run make setup)" >&2; exit 2; }

PY="${IOTBENCH_PYTHON:-}"
if [ -z "$PY" ]; then
  for cand in python3.11 "$HOME/.pyenv/versions/3.11.7/bin/python3" python3; do
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      PY="$cand"; break
    fi
  done
fi
[ -n "$PY" ] || { echo "error: Python 3.11 not found (set IOTBENCH_PYTHON)" >&2; exit 2; }

if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi

stamp="$VENV/.iotbench-setup"
want=$( (cat pyproject.toml scripts/setup_spark4.sh; echo "$PYSPARK4") | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "pip install pyspark $PYSPARK4 + TensorFlow/Keras (first time: a few minutes)"
  quiet() { grep -v "WARNING: Location\|BuildBackendWarning\|^ *!!\|^ *\*\*\*\|careful with folders\|name as your package\|with strategy\|^ *$" || true; }
  "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | quiet
  # one resolve: the package (numpy<2 from its dependencies) with the Keras extra, and pyspark 4 beside it
  "$VENV/bin/python" -m pip install -q -e ".[keras]" "${SPARK4_DEPS[@]}" 2>&1 | quiet
  "$VENV/bin/python" -c 'import pyspark, sys; sys.exit(not pyspark.__version__.startswith("4."))' \
    || { echo "error: $VENV does not hold pyspark 4.x" >&2; exit 2; }
  echo "$want" > "$stamp"
else
  say "$VENV is up to date"
fi
say "$VENV: pyspark $("$VENV/bin/python" -c 'import pyspark; print(pyspark.__version__)')"
