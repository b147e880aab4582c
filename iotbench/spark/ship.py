"""``--ship-env``: the driver's Python environment and our package, packed once and shipped to every executor.

Why: on a real cluster the workers do not have the driver's ``.venv`` at the driver's path.  Spark's documented way
for virtualenvs is a venv-pack archive in ``spark.archives`` (unpacked as ``./environment`` in each executor's
directory) with ``spark.pyspark.python=./environment/bin/python``.  A venv-pack archive does not contain the
interpreter: the workers need the same Python (``sys.base_prefix``) at the same path.

- only what executors import is packed: torch, nvidia, triton, the edge runtimes and Spark's own jars (the worker
  has Spark) are excluded (:data:`EXCLUDE`); BigDL's jars travel in ``spark.jars``, the Keras model in
  ``spark.files`` (``SparkContext.addFile`` by the engine);
- our own package is installed editable (venv-pack refuses those), so it travels as a zip added with
  ``SparkContext.addPyFile`` (``spark.submit.pyFiles`` is only honoured through spark-submit's launcher) and its
  ``.pth`` is left out of the pack;
- the pack is cached under ``~/.cache/iotbench/packs`` by the environment's hash (Python version and path, every
  installed distribution's name and version, the exclusions); its size and build time are printed.

Without ``--ship-env`` :func:`check_executors` runs a tiny first job so that a worker that cannot see the driver's
interpreter or packages fails in seconds, in one line naming the flag, instead of a page of Java after retries.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

PACK_FORMAT = 1  # bump when the pack's contents change for the same environment
SITE = f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
#: big packages that no executor imports (the edge runtimes, PyTorch and its CUDA wheels, converters)
EXCLUDED_PACKAGES = ("torch", "torchvision", "torchaudio", "nvidia", "triton", "cuda", "cuda_bindings", "openvino",
                     "onnxruntime", "onnx", "tf2onnx", "nncf", "sympy", "clang", "mlperf_loadgen", "venv_pack",
                     "conda_pack", "pip", "matplotlib", "fontTools")
EXCLUDE = (
    *(f"{SITE}/{name}/*" for name in EXCLUDED_PACKAGES),
    *(f"{SITE}/{name}-*" for name in EXCLUDED_PACKAGES),
    *(f"{SITE}/{name}.libs/*" for name in EXCLUDED_PACKAGES),
    f"{SITE}/pyspark/jars/*",  # the worker's own Spark provides them
    f"{SITE}/bigdl/share/*/lib/*.jar",  # shipped with spark.jars
    f"{SITE}/__editable__*", f"{SITE}/iotbench-*",  # our package travels as a zip (addPyFile)
)
#: what a worker must be able to import (found, not imported: the check stays cheap)
EXECUTOR_MODULES = ("numpy", "pandas", "pyarrow", "iotbench")
ENV_DIR = "environment"


def cache_dir() -> Path:
    return Path(os.environ.get("IOTBENCH_PACK_CACHE") or Path.home() / ".cache" / "iotbench" / "packs")


def environment_hash() -> str:
    """Hash of what the pack holds: Python, the installed distributions (as ``pip freeze``), the exclusions."""
    from importlib import metadata

    dists = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions(path=[_site()]))
    text = json.dumps([PACK_FORMAT, sys.version, sys.base_prefix, sys.prefix, dists, EXCLUDE])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _site() -> str:
    return str(Path(sys.prefix) / SITE)


@dataclass
class Pack:
    """A packed environment and our package's zip, with what building the pack cost."""

    archive: Path
    package_zip: Path
    size_bytes: int
    build_s: float | None  # seconds to build it (when it was built, now or earlier: read from its sidecar)
    cached: bool

    def line(self) -> str:
        how = "from cache" if self.cached else "built"
        took = "n/a" if self.build_s is None else f"{self.build_s:.1f} s"
        return (f"Shipped environment: {self.archive} ({self.size_bytes / 1e6:.0f} MB, {how}; build time {took}), "
                f"package {self.package_zip.name}")

    def conf(self) -> dict[str, str]:
        """Spark properties that ship it: the archive as ./environment and its interpreter (our package's zip is
        added to the running context: :meth:`add_package`)."""
        return {"spark.archives": f"{self.archive}#{ENV_DIR}", "spark.pyspark.python": f"./{ENV_DIR}/bin/python"}

    def add_package(self, sc) -> None:
        sc.addPyFile(str(self.package_zip))


@contextlib.contextmanager
def _editable_allowed():
    """venv-pack refuses environments with editable installs; ours (iotbench) is shipped as a zip instead."""
    import venv_pack.core as core

    saved = core.check_no_editable_packages
    core.check_no_editable_packages = lambda context: None
    try:
        yield core
    finally:
        core.check_no_editable_packages = saved


def package_zip(directory: Path) -> Path:
    """``iotbench`` (sources only) as a zip named by its content's hash, for ``spark.submit.pyFiles``."""
    import iotbench

    root = Path(iotbench.__file__).resolve().parent
    files = sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)
    digest = hashlib.sha256()
    for p in files:
        digest.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    out = directory / f"iotbench-{digest.hexdigest()[:16]}.zip"
    if not out.is_file():
        tmp = out.with_suffix(".tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for p in files:
                z.write(p, f"iotbench/{p.relative_to(root)}")
        tmp.replace(out)
    return out


def environment_pack(directory: Path | None = None, log=print) -> Pack:
    """The cached pack of this environment, built (venv-pack, with :data:`EXCLUDE`) when missing."""
    directory = directory or cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    archive = directory / f"env-{environment_hash()}.tar.gz"
    sidecar = archive.with_suffix(".json")
    cached = archive.is_file()
    if not cached:
        try:
            import venv_pack  # noqa: F401
        except ImportError as err:
            raise RuntimeError("--ship-env needs venv-pack: pip install 'venv-pack==0.2.0'") from err
        log(f"Packing the Python environment {sys.prefix} for the executors (once; cached in {directory})…")
        start = time.perf_counter()
        tmp = archive.with_name(archive.name + ".part")
        with _editable_allowed() as core:
            env = core.Env(sys.prefix)
            for pattern in EXCLUDE:
                env = env.exclude(pattern)
            env.pack(output=str(tmp), format="tar.gz", compress_level=1, force=True)
        tmp.replace(archive)
        sidecar.write_text(json.dumps({"build_s": time.perf_counter() - start, "files": len(env)}))
    build_s = json.loads(sidecar.read_text()).get("build_s") if sidecar.is_file() else None
    pack = Pack(archive, package_zip(directory), archive.stat().st_size, build_s, cached)
    log(pack.line())
    return pack


def _probe(_):
    """Runs in an executor's Python worker: what it is and which of :data:`EXECUTOR_MODULES` it cannot find."""
    import importlib.util
    import socket
    import sys as worker_sys

    missing = [m for m in EXECUTOR_MODULES if importlib.util.find_spec(m) is None]
    return socket.gethostname(), worker_sys.executable, missing


def check_executors(sc, python: str, shipped: bool, tasks: int = 2) -> list[tuple[str, str, list[str]]]:
    """A tiny first job: each task reports its interpreter and missing modules; refuse in one line when a worker
    cannot start ``python`` or lacks a module (naming ``--ship-env`` unless it was given)."""
    hint = "check the shipped environment" if shipped else "pass --ship-env"
    try:
        found = sc.parallelize(range(tasks), tasks).map(_probe).collect()
    except Exception as err:
        from iotbench.spark.context import java_error_line

        text = java_error_line(err) or str(err).splitlines()[0]
        if "Cannot run program" in str(err) or "No such file" in text:
            raise RuntimeError(f"worker cannot see {python}: {hint}") from None
        raise RuntimeError(f"worker's Python failed ({text}): {hint}") from None
    for host, executable, missing in found:
        if missing:
            raise RuntimeError(f"worker {host} ({executable}) cannot import {', '.join(missing)}: {hint}")
    return found
