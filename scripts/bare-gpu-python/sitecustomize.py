"""Make this Python look like the GPU machine's bare one: TensorFlow, Keras, Spark and BigDL are not installed.

Put this folder first on ``PYTHONPATH`` (``scripts/gpu-bench.sh --cpu-dry-run`` and tests/test_torch_bare_python.py
do) and ``import tensorflow`` fails with ``ModuleNotFoundError``, exactly as where the package is absent:
``importlib.util.find_spec`` answers ``None`` (not an exception), so code that probes for optional packages behaves
as it would there.  Each attempt is appended, with the importing frame, to ``$IOTBENCH_HIDDEN_LOG`` when set, so a
test can say *who* tried.
"""

from __future__ import annotations

import os
import sys
import traceback
from importlib.machinery import PathFinder

HIDDEN = frozenset(os.environ.get("IOTBENCH_HIDDEN", "tensorflow keras tf_keras pyspark py4j bigdl").split())


class HiddenPathFinder(PathFinder):
    """The standard path finder, blind to the hidden top-level packages."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname.partition(".")[0] in HIDDEN:
            _log(fullname)
            return None
        return super().find_spec(fullname, path, target)


def _log(name: str) -> None:
    log = os.environ.get("IOTBENCH_HIDDEN_LOG")
    if not log:
        return
    frames = [f for f in traceback.extract_stack()[:-3] if "importlib" not in f.filename]
    where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else "?"
    with open(log, "a") as f:
        f.write(f"{name} {where}\n")


for _name in [m for m in sys.modules if m.partition(".")[0] in HIDDEN]:
    del sys.modules[_name]  # nothing imported before us (a .pth file) stays reachable
sys.meta_path[:] = [HiddenPathFinder if f is PathFinder else f for f in sys.meta_path]
