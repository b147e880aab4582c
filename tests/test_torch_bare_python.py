"""The torch path runs on the GPU machine's bare Python: no TensorFlow, Keras, Spark or BigDL there.

Each test runs the path in a subprocess whose ``PYTHONPATH`` starts with ``scripts/bare-gpu-python`` (a
``sitecustomize`` that makes those packages not importable, as where they are not installed) and the repository
(the GPU machine runs the source tree, nothing installed).  An attempt by *our* code to import one of them fails
the run there, and is named here from the log the blocker writes.  numpy 2 removed idioms that numpy 1.26
(our .venv) still accepts: ruff's NPY201 rule checks every repository module the torch path loads.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("torchvision")

pytestmark = pytest.mark.torch

ROOT = Path(__file__).resolve().parent.parent
BARE = ROOT / "scripts" / "bare-gpu-python"
HIDDEN = ("tensorflow", "keras", "pyspark", "bigdl")


def _bare(args: list[str], tmp_path: Path, timeout: float = 300) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run ``python ARGS`` as on the GPU machine; returns the process and the hidden imports our code attempted."""
    log = tmp_path / "hidden.log"
    env = {**os.environ, "PYTHONPATH": f"{BARE}{os.pathsep}{ROOT}", "IOTBENCH_HIDDEN_LOG": str(log),
           "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    attempts = log.read_text().splitlines() if log.is_file() else []
    ours = [a for a in attempts if any(f" {ROOT / d}" in a for d in ("iotbench", "fixtures", "benchmarks"))
            or f" {ROOT / 'conftest.py'}" in a]
    return proc, ours


def test_the_blocker_hides_the_heavy_packages_as_if_not_installed(tmp_path):
    """So that the tests below can fail: under it these imports fail and find_spec says 'not installed'."""
    code = ("import importlib.util\n"
            f"for name in {HIDDEN!r}:\n"
            "    assert importlib.util.find_spec(name) is None, name\n"
            "    try:\n"
            "        __import__(name)\n"
            "    except ModuleNotFoundError:\n"
            "        pass\n"
            "    else:\n"
            "        raise SystemExit(name + ' imported')\n"
            "import iotbench.report  # our own package still imports\n")
    proc, _ = _bare(["-c", code], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert list(dict.fromkeys((tmp_path / "hidden.log").read_text().split()[::2])) == list(HIDDEN)


def test_iotbench_infer_torch_imagenet_runs_without_tensorflow_or_spark(imagenet_sample, tmp_path):
    """The whole CLI (its parser imports every command module) and a real run at a tiny size on the CPU."""
    out = tmp_path / "run.json"
    proc, ours = _bare(["-m", "iotbench", "infer", "torch-imagenet", str(imagenet_sample), "-a", "mobilenet_v3_small",
                        "-b", "2", "-d", "0.2", "-i", "1", "--device", "cpu", "--threads", "1", "--warmup", "1",
                        "--json", str(out)], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not ours, f"the torch path tried to import: {ours}"
    assert "Test completed" in proc.stdout and "first result" in proc.stdout
    summary = json.loads(out.read_text())
    assert summary["images"] == 2 * summary["iterations"] > 0 and summary["random_init"] is True
    assert summary["cuda_graphs"] is False and summary["compile"] is False and summary["compile_s"] is None
    assert summary["time_to_first_result_s"] > 0


def test_gpu_benchmarks_collect_and_skip_with_the_reason_without_tensorflow_or_spark(tmp_path):
    """``pytest benchmarks -m gpu`` as gpu-bench.sh runs it: every plugin of the root conftest loads, every
    benchmark module imports, and on a machine without a GPU each GPU case skips saying why."""
    proc, ours = _bare(["-m", "pytest", "benchmarks", "-m", "gpu", "-p", "no:cacheprovider", "-q", "-rs",
                        "--torch-archs", "resnet18,alexnet"], tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert not ours, f"the benchmark session tried to import: {ours}"
    assert "6 skipped" in proc.stdout and "no CUDA device" in proc.stdout and "--torch-dry-run" in proc.stdout


def _torch_path_files(tmp_path: Path) -> list[str]:
    code = ("import sys, iotbench.cli, iotbench.commands.torch_imagenet, iotbench.engines.torch_imagenet, "
            "iotbench.data.imagenet, fixtures.cuda, fixtures.data, fixtures.options, iotbench.report\n"
            f"ours = {tuple(str(ROOT / d) + os.sep for d in ('iotbench', 'fixtures', 'benchmarks'))!r}\n"
            "print('\\n'.join(sorted({m.__file__ for m in list(sys.modules.values()) "
            "if (getattr(m, '__file__', None) or '').startswith(ours)})))")
    proc, _ = _bare(["-c", code], tmp_path)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_the_torch_path_uses_no_numpy_1_only_idiom(tmp_path):
    """The GPU machine has numpy 2.x; ruff's NPY201 flags what numpy 2 removed (np.float_, np.product, …)."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if not Path(ruff).is_file():
        pytest.skip("ruff is not installed (pip install '.[dev]')")
    files = _torch_path_files(tmp_path) + [str(ROOT / "benchmarks" / "test_torch_imagenet.py")]
    assert any(f.endswith("engines/torch_imagenet.py") for f in files) and any(f.endswith("sender.py") for f in files)
    proc = subprocess.run([ruff, "check", "--no-cache", "--select", "NPY201", *files], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout
