"""OpenVINO edge engine: the converted ONNX model (or its NNCF int8 IR) compiled for the CPU plugin.

Why: OpenVINO's CPU plugin compiles the whole graph to oneDNN primitives with its own
layout choices, and on the issue's Xeon (AMX) its bf16 path ran ResNet20 at 4× TensorFlow.
It reads the cached ONNX file directly (one conversion serves both runtimes); int8 is an IR
quantized by NNCF (see :mod:`edge_convert`).

Throughput: the model is compiled with ``PERFORMANCE_HINT=THROUGHPUT``, which splits the cores
into *streams*; a synchronous call uses one stream only (the issue saw f32 at 1,531 images/s
that way, below TensorFlow), so every block is cut into one piece per infer request and the
pieces run together through an ``AsyncInferQueue``.
"""

from __future__ import annotations

import math

import numpy as np

from iotbench.engines import edge_convert
from iotbench.engines.edge_runtime import EdgeRuntimeEngine

#: INFERENCE_PRECISION_HINT per --precision (int8 IR: its fake-quantize ops set the precision, f32 elsewhere).
PRECISION_HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


class OpenVinoEdgeEngine(EdgeRuntimeEngine):
    """Classifies decoded CIFAR-10 batches with OpenVINO's CPU plugin."""

    name = "openvino"
    runtime = "openvino"

    def __init__(self, *args, hint: str = "THROUGHPUT", **kwargs):
        super().__init__(*args, **kwargs)
        self.hint = hint
        self._compiled = None
        self._queue = None
        self.requests = 1

    def _load(self) -> None:
        import openvino as ov

        artefact = edge_convert.onnx_file(self.path, self.cache)
        if self.precision == "int8":
            artefact = edge_convert.openvino_int8_file(artefact, self.transform)
        core = ov.Core()
        try:
            model = core.read_model(artefact)
            self._compiled = core.compile_model(model, "CPU", {
                "PERFORMANCE_HINT": self.hint, "INFERENCE_PRECISION_HINT": PRECISION_HINTS[self.precision]})
        except Exception as err:
            raise ValueError(f"OpenVINO cannot compile {artefact}: {str(err).strip().splitlines()[0]}") from None
        self.requests = max(1, int(self._compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")))
        self._queue = ov.AsyncInferQueue(self._compiled, self.requests)
        self._queue.set_callback(self._done)
        self.artefact = artefact

    @staticmethod
    def _done(request, slot) -> None:
        out, start = slot
        scores = request.get_output_tensor(0).data
        out[start:start + len(scores)] = np.argmax(scores, axis=-1)

    def _run_block(self, x: np.ndarray) -> np.ndarray:
        return self._run_pieces(x, math.ceil(len(x) / self.requests))

    def classify(self, x: np.ndarray) -> np.ndarray:
        """All of ``x`` through the queue in pieces of ``batch``: every request busy until the end."""
        self.warmup()
        x = np.ascontiguousarray(x, np.float32)
        return self._run_pieces(x, self.batch)

    def _run_pieces(self, x: np.ndarray, piece: int) -> np.ndarray:
        out = np.empty(len(x), np.int64)
        if not len(x):
            return out
        piece = max(1, piece)
        for start in range(0, len(x), piece):
            self._queue.start_async({0: x[start:start + piece]}, (out, start))
        self._queue.wait_all()
        return out

    def describe(self) -> str:
        return super().describe() + f"; {self.hint} hint, {self.requests} infer requests"
