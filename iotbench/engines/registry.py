"""The one list of engines: name -> where its class is, which contract it keeps, what it runs on, and
whether this machine can run it.

Adding an engine is one module plus one :data:`REGISTRY` line (docs/ARCHITECTURE.md, "Adding an engine").
The availability check imports nothing heavy: it asks ``importlib.util.find_spec`` whether a package is
installed, and looks for ``java`` on PATH and for an NVIDIA driver, so ``iotbench engines`` answers in a
fraction of a second even where TensorFlow, torch and pyspark all are.
"""

from __future__ import annotations

import importlib
import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iotbench.engines.contracts import MAX, STREAM


@dataclass(frozen=True)
class EngineEntry:
    name: str
    target: str  # "module:Class", imported only when the engine is used
    contract: str  # contracts.STREAM or contracts.MAX
    runtime: str  # what does the arithmetic
    packages: tuple[str, ...] = ()  # importable names the engine needs
    java: bool = False  # needs a JVM (Spark, BigDL)
    cuda: bool = False  # needs an NVIDIA GPU
    adapter: str = ""  # "module:Class" that puts it under its contract, when its own methods differ
    what: str = ""

    def unavailable(self) -> str | None:
        """Why this machine cannot run the engine (the first missing piece), or None when it can."""
        for package in self.packages:
            if importlib.util.find_spec(package) is None:
                return f"Python package {package} not installed"
        if self.java and shutil.which("java") is None:
            return "java not found on PATH"
        if self.cuda and not cuda_present():
            return "no NVIDIA GPU (no driver in /proc/driver/nvidia)"
        return None


def cuda_present() -> bool:
    """An NVIDIA driver is loaded (what torch's CUDA needs), seen without importing torch."""
    return Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None


_SPARK = ("pyspark",)
_TF = ("tensorflow", "keras")
_SPARK_NATIVE = "spark+tf|onnxruntime|openvino"  # --runtime picks the one the Python workers run
REGISTRY: dict[str, EngineEntry] = {e.name: e for e in (
    EngineEntry("null", "iotbench.engines.null:NullEngine", STREAM, "none", ("numpy",),
                what="classifies nothing: the transport's ceiling"),
    EngineEntry("keras", "iotbench.engines.keras_edge:KerasEdgeEngine", STREAM, "tf", _TF,
                what="the Keras model in-process (the edge classifier)"),
    EngineEntry("onnxruntime", "iotbench.engines.onnx_edge:OnnxEdgeEngine", STREAM, "onnxruntime",
                (*_TF, "tf2onnx", "onnxruntime"), what="the Keras model converted to ONNX (fp32, int8)"),
    EngineEntry("openvino", "iotbench.engines.openvino_edge:OpenVinoEdgeEngine", STREAM, "openvino",
                (*_TF, "tf2onnx", "openvino"), what="the Keras model converted for OpenVINO (fp32, int8)"),
    EngineEntry("spark-native-stream", "iotbench.engines.spark_stream:NativeStream", STREAM, _SPARK_NATIVE,
                (*_SPARK, *_TF), java=True, adapter="iotbench.engines.contracts:SparkStream",
                what="Spark Structured Streaming, the Keras model in mapInPandas"),
    EngineEntry("spark-bigdl-stream", "iotbench.engines.spark_stream:BigDLStream", STREAM, "spark+bigdl",
                (*_SPARK, "bigdl"), java=True, adapter="iotbench.engines.contracts:SparkStream",
                what="Spark streaming, lines parsed and the BigDL model run in the JVM"),
    EngineEntry("spark-native-max", "iotbench.engines.spark_max:NativeMax", MAX, _SPARK_NATIVE, (*_SPARK, *_TF),
                java=True, what="cached DataFrame, predict_batch_udf, flat out"),
    EngineEntry("spark-bigdl-max", "iotbench.engines.spark_max:BigDLMax", MAX, "spark+bigdl", (*_SPARK, "bigdl"),
                java=True, what="cached RDD of Samples, BigDL's predictClass, flat out"),
    EngineEntry("torch", "iotbench.engines.torch_imagenet:TorchImageNetEngine", MAX, "torch cpu",
                ("torch", "torchvision"), adapter="iotbench.engines.contracts:TorchMax",
                what="ImageNet classifier on one device-resident batch"),
    EngineEntry("torch-gpu", "iotbench.engines.torch_imagenet:TorchImageNetEngine", MAX, "torch cuda",
                ("torch", "torchvision"), cuda=True, adapter="iotbench.engines.contracts:TorchMax",
                what="the same on an NVIDIA GPU (fp16/bf16, channels-last, CUDA graphs)"),
)}


def entry(name: str) -> EngineEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown engine {name!r}; registered: {', '.join(REGISTRY)}") from None


def load(target: str) -> type:
    module, cls = target.split(":")
    return getattr(importlib.import_module(module), cls)


def engine_class(name: str) -> type:
    """The registered engine's class, imported now (with its heavy dependency); ValueError for an unknown name."""
    return load(entry(name).target)


#: The older name of :func:`engine_class` (``iotbench.engines.load_engine_class``).
load_engine_class = engine_class


def create(name: str, *args: Any, **kwargs: Any) -> Any:
    """A new engine by its registry name: ``engine_class(name)(*args, **kwargs)``.

    The one way the CLI, the fixtures and the benchmarks build an engine, so that a name and the class it
    stands for are written only in :data:`REGISTRY`.  The arguments are the engine's own (a model file and a
    batch, a Spark classifier, a torch model and its options); they are not checked here.
    """
    return engine_class(name)(*args, **kwargs)
