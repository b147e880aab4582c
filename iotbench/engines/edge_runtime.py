"""What the edge engines share, whatever runs the model: runtime and precision choice, input transform, batching.

The TensorFlow engine (:mod:`keras_edge`), ONNX Runtime (:mod:`onnx_edge`) and OpenVINO
(:mod:`openvino_edge`) take the same model files and the same streams; only the call that
turns a float32 block into class ids differs.  This module holds the rest once — the model
card's input transform, the refusal of a precision the CPU or runtime cannot run, the
classification of a long array in blocks of ``batch`` — and :func:`make_edge_engine`, the one
place that maps ``--runtime`` / ``--precision`` to an engine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from iotbench import cpu
from iotbench.models import preprocess
from iotbench.wire import Decoded

RUNTIMES = ("tf", "onnxruntime", "openvino")
#: Precisions each runtime offers (bf16 further needs the CPU flags, see :mod:`iotbench.cpu`).
RUNTIME_PRECISIONS = {
    "tf": ("fp32", "bf16"),
    "onnxruntime": ("fp32", "int8"),
    "openvino": ("fp32", "bf16", "int8"),
}


def check_precision(runtime: str, precision: str, flags: frozenset[str] | set[str] | None = None) -> None:
    """Raise a one-line ValueError when ``runtime`` cannot run ``precision`` on a CPU with ``flags``."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; known: {', '.join(RUNTIMES)}")
    instead = tuple(p for p in RUNTIME_PRECISIONS[runtime] if p != precision)
    refusal = cpu.precision_refusal(precision, cpu.cpu_flags() if flags is None else flags, instead)
    if refusal:
        raise ValueError(refusal)
    if precision not in RUNTIME_PRECISIONS[runtime]:
        offered = ", ".join(RUNTIME_PRECISIONS[runtime])
        others = [r for r in RUNTIMES if precision in RUNTIME_PRECISIONS[r]]
        raise ValueError(f"--runtime {runtime} offers {offered}, not {precision}; "
                         f"{precision} runs with --runtime {' or '.join(others)}")


class EdgeRuntimeEngine:
    """Base of the converted-model engines: subclasses implement :meth:`_load` and :meth:`_run_block`."""

    name = "edge"
    runtime = "?"

    def __init__(self, model_path: str | Path, batch: int = 64, input_transform: str | None = None,
                 precision: str = "fp32", cache: str | Path | None = None):
        from iotbench.engines.keras_edge import resolve_transform

        self.path = Path(model_path)
        if not self.path.exists():
            raise FileNotFoundError(f"model file not found: {self.path}")
        check_precision(self.runtime, precision)
        self.precision = precision
        self.model = self.path.name
        self.batch = max(int(batch), 1)
        self.transform, self.transform_source = resolve_transform(self.path, input_transform)
        self.cache = Path(cache) / "edge" if cache is not None else None
        self.artefact: Path | None = None
        self._warm = False

    def warmup(self) -> None:
        """Convert (or take from the cache), load and run one block, so no timed call pays for it."""
        if self._warm:
            return
        self._load()
        self._run_block(np.zeros((self.batch, 32, 32, 3), np.float32))
        self._warm = True

    def inputs(self, batch: Decoded) -> np.ndarray:
        """The model's float32 input: raw 0-255 values transformed, ``%f`` values as sent."""
        if batch.raw:
            return preprocess(batch.images, self.transform)
        return np.asarray(batch.images, np.float32)

    def predict(self, batch: Decoded) -> np.ndarray:
        """A receiver's block (at most ``batch`` images) in one :meth:`_run_block` call, which may
        spread it over the runtime's streams; longer input goes through :meth:`classify`."""
        if not len(batch):
            return np.empty(0, np.int64)
        x = self.inputs(batch)
        if len(x) > self.batch:
            return self.classify(x)
        self.warmup()
        return np.asarray(self._run_block(np.ascontiguousarray(x, np.float32)), np.int64)

    def classify(self, x: np.ndarray) -> np.ndarray:
        """Class ids of model-ready images (also the in-memory ceiling's call), in blocks of ``batch``."""
        self.warmup()
        x = np.ascontiguousarray(x, np.float32)
        return np.concatenate([self._run_block(x[i:i + self.batch]) for i in range(0, len(x), self.batch)]
                              ).astype(np.int64)

    def describe(self) -> str:
        return (f"{self.model}: {self.runtime} {self.precision}, blocks of up to {self.batch}; "
                f"raw inputs transformed '{self.transform}' ({self.transform_source}); model {self.artefact}")

    def _load(self) -> None:
        raise NotImplementedError

    def _run_block(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


def make_edge_engine(runtime: str, model_path: str | Path, *, batch: int = 64, precision: str = "fp32",
                     input_transform: str | None = None, cache: str | Path | None = None, jit_compile: bool = False):
    """The engine for ``--runtime`` / ``--precision`` (refused in one line when this CPU or runtime cannot)."""
    from iotbench.engines import load_engine_class

    check_precision(runtime, precision)
    if runtime == "tf":
        return load_engine_class("keras")(model_path, batch=batch, input_transform=input_transform,
                                          jit_compile=jit_compile, precision=precision)
    if jit_compile:
        raise ValueError(f"--jit is TensorFlow's XLA compiler; --runtime {runtime} compiles the model itself")
    return load_engine_class(runtime)(model_path, batch=batch, input_transform=input_transform,
                                      precision=precision, cache=cache)
