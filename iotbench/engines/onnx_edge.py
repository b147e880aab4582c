"""ONNX Runtime edge engine: the Keras model converted to ONNX (once, cached), fp32 or static int8.

Why a second runtime: on the issue's machine ONNX Runtime ran the original's ResNet20 at
1.5× TensorFlow's speed with the same predictions — its CPU provider fuses the graph and
calls MLAS kernels directly, with no per-call framework overhead.  The session uses one
intra-op thread per core (``os.cpu_count()``: the box is the edge device) and sequential
execution; the batch axis is dynamic, so a partial block is run as it is, without padding.
int8 is ONNX Runtime's own static quantization (see :mod:`edge_convert`).
"""

from __future__ import annotations

import os

import numpy as np

from iotbench.engines import edge_convert
from iotbench.engines.edge_runtime import EdgeRuntimeEngine


class OnnxEdgeEngine(EdgeRuntimeEngine):
    """Classifies decoded CIFAR-10 batches with ONNX Runtime's CPU provider."""

    name = "onnxruntime"
    runtime = "onnxruntime"

    def __init__(self, *args, threads: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.threads = threads or os.cpu_count() or 1
        self._session = None
        self._input = self._output = ""

    def _load(self) -> None:
        import onnxruntime as ort

        artefact = edge_convert.onnx_file(self.path, self.cache)
        if self.precision == "int8":
            artefact = edge_convert.ort_int8_file(artefact, self.transform)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # No busy-waiting between ops: the cores are shared with the sender and the receiver's reader
        # (and, on this project's machines, other jobs); spinning threads measured slower here.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(str(artefact), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # a corrupt or foreign cached file: one line naming it
            raise ValueError(f"ONNX Runtime cannot load {artefact}: {str(err).strip().splitlines()[0]}") from None
        self._input = self._session.get_inputs()[0].name
        self._output = self._session.get_outputs()[0].name
        self.artefact = artefact

    def _run_block(self, x: np.ndarray) -> np.ndarray:
        scores = self._session.run([self._output], {self._input: x})[0]
        return np.argmax(scores, axis=-1)

    def describe(self) -> str:
        return super().describe() + f"; {self.threads} intra-op threads"
