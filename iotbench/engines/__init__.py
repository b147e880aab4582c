"""Engines: the systems under test.  An engine turns a decoded batch into predicted classes.

An engine knows nothing about sockets, senders or reports (the receiver and the
benchmarks wire those); adding one is one module with a class that has the three
members below, plus an entry in ``ENGINES``.
"""

from __future__ import annotations

import importlib
from typing import Protocol

import numpy as np

from iotbench.wire import Decoded


class Engine(Protocol):
    #: Short engine name used in reports (``keras``, ``null``, …).
    name: str
    #: What it runs (a model name or file); "-" when nothing.
    model: str

    def warmup(self) -> None:
        """Do the one-off work (load, compile, trace) before the clock starts."""

    def predict(self, batch: Decoded) -> np.ndarray | None:
        """Predicted class per image, or None when the engine does not classify (``null``)."""


#: name -> "module:Class", imported lazily so that each engine's heavy dependency
#: (TensorFlow, torch, pyspark) is only loaded when that engine is used.
ENGINES = {
    "null": "iotbench.engines.null:NullEngine",
    "keras": "iotbench.engines.keras_edge:KerasEdgeEngine",
    "onnxruntime": "iotbench.engines.onnx_edge:OnnxEdgeEngine",
    "openvino": "iotbench.engines.openvino_edge:OpenVinoEdgeEngine",
}


def load_engine_class(name: str) -> type:
    try:
        target = ENGINES[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; available: {', '.join(sorted(ENGINES))}") from None
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)
