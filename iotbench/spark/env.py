"""The process environment the JVM and Spark's Python workers need: the one place that sets it.

- ``PYTHONHOME`` must point at the interpreter's own prefix for pyspark: BigDL sets it to the virtualenv,
  which has no standard library, and Python workers then die with ``No module named 'encodings'``;
  ``spark-submit`` of our Scala jar runs no Python, so there it is removed (:func:`submit_env`);
- ``PYSPARK_PYTHON`` is this interpreter, so workers see the same packages as the driver;
- ``SPARK_LOCAL_IP=127.0.0.1`` keeps every socket on loopback;
- on AMD CPUs, ``MKL_DEBUG_CPU_TYPE=5`` (see :func:`mkl_cpu_env`): BigDL's bundled Intel MKL otherwise
  runs its generic SSE code there — BigDL predicted 1,100 img/s without it and 2,000 img/s with it
  (CNN, 10,000 images, local[2], 2-core AMD EPYC).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from iotbench.spark.jars import spark_home


def cpu_vendor(cpuinfo: str | None = None) -> str:
    """The CPU vendor id from ``/proc/cpuinfo`` text (read when not given); "" when unknown."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return ""
    match = re.search(r"^vendor_id\s*:\s*(\S+)", cpuinfo, re.MULTILINE)
    return match.group(1) if match else ""


def mkl_cpu_env(vendor: str) -> dict[str, str]:
    """Environment that lets BigDL's Intel MKL use AVX2 on AMD CPUs ({} elsewhere).

    The MKL bundled with bigdl-core dispatches on the CPU *vendor*: on AMD it picks its generic
    code path unless ``MKL_DEBUG_CPU_TYPE=5`` asks for the AVX2 kernels (a documented switch of the
    MKL releases of that era, removed in later ones).  Set it yourself to override.
    """
    return {"MKL_DEBUG_CPU_TYPE": "5"} if vendor == "AuthenticAMD" else {}


def prepare_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """Apply the fixes for pyspark (to ``os.environ`` unless ``env`` is given); returns the mapping."""
    env = os.environ if env is None else env
    for key, value in mkl_cpu_env(cpu_vendor()).items():
        env.setdefault(key, value)
    env["PYTHONHOME"] = sys.base_prefix
    env["PYSPARK_PYTHON"] = sys.executable
    env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env["SPARK_HOME"] = str(spark_home())
    # TensorFlow in Python workers: quiet, and no oneDNN notice on every worker start.
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


def use_executor_python(path: str) -> None:
    """Make ``path`` (a shipped environment's interpreter, relative to the executor) the workers' Python.

    pyspark sends the driver's PYSPARK_PYTHON with every Python function, so it must name the executors' path,
    not the driver's own interpreter.
    """
    os.environ["PYSPARK_PYTHON"] = path


def submit_env() -> dict[str, str]:
    """Environment for ``spark-submit`` of the Scala jar: pyspark's SPARK_HOME, loopback only, MKL's AVX2 kernels
    on AMD, and no ``PYTHONHOME`` (BigDL's virtualenv value would break the launcher's Python, and no worker
    runs Python here)."""
    env = dict(os.environ)
    env["SPARK_HOME"] = str(spark_home())
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    for key, value in mkl_cpu_env(cpu_vendor()).items():
        env.setdefault(key, value)
    env.pop("PYTHONHOME", None)
    return env
