"""OpenVINO edge engine: the converted ONNX model (or its NNCF int8 IR) compiled for the CPU plugin.

Why: OpenVINO's CPU plugin compiles the whole graph to oneDNN primitives with its own
layout choices, and on the issue's Xeon (AMX) its bf16 path ran ResNet20 at 4× TensorFlow.
It reads the cached ONNX file directly (one conversion serves both runtimes); int8 is an IR
quantized by NNCF (see :mod:`edge_convert`).

Throughput: the model is compiled with ``PERFORMANCE_HINT=THROUGHPUT``, which splits the cores
into *streams*; a synchronous call uses one stream only (the issue saw f32 at 1,531 images/s
that way, below TensorFlow), so every block is cut into one piece per infer request and the
pieces run together on one infer request each.
"""

from __future__ import annotations

import math

import numpy as np

from iotbench.engines import edge_convert
from iotbench.engines.edge_runtime import EdgeRuntimeEngine
from iotbench.engines.keras_edge import buckets_for

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
        self._requests: list = []
        self.requests = 1
        self.buckets: tuple[int, ...] = (self.batch,)

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
        piece = math.ceil(self.batch / self.requests)
        self.buckets = tuple(sorted(set(buckets_for(piece)) | {self.batch}))
        self._requests = [self._compiled.create_infer_request() for _ in range(self.requests)]
        self.artefact = artefact

    def _run_block(self, x: np.ndarray) -> np.ndarray:
        return self._run_pieces(x, math.ceil(len(x) / self.requests))

    def classify(self, x: np.ndarray) -> np.ndarray:
        """All of ``x`` in pieces of ``batch``, as many at a time as there are infer requests."""
        self.warmup()
        x = np.ascontiguousarray(x, np.float32)
        return self._run_pieces(x, self.batch)

    def _run_pieces(self, x: np.ndarray, piece: int) -> np.ndarray:
        """Pieces of ``x`` on all infer requests at once, each padded to a bucket shape (the CPU plugin
        re-plans a dynamic-shape model for every new batch size, and a stream's blocks vary in size).

        The requests are started and waited for from this thread, with no completion callback: a
        callback must take the GIL from OpenVINO's thread, which waits behind the receiver's reader
        thread (up to Python's 5 ms switch interval per piece).
        """
        out = np.empty(len(x), np.int64)
        starts = list(range(0, len(x), max(1, piece)))
        for first in range(0, len(starts), len(self._requests)):
            running = []
            for request, start in zip(self._requests, starts[first:first + len(self._requests)]):
                block = x[start:start + piece]
                size = next((b for b in self.buckets if b >= len(block)), len(block))
                if size != len(block):
                    block = np.concatenate([block, np.zeros((size - len(block), *block.shape[1:]), np.float32)])
                request.start_async({0: block})
                running.append((request, start, min(piece, len(x) - start)))
            for request, start, n in running:
                request.wait()
                out[start:start + n] = np.argmax(request.get_output_tensor(0).data[:n], axis=-1)
        return out

    def describe(self) -> str:
        return super().describe() + f"; {self.hint} hint, {self.requests} infer requests"
