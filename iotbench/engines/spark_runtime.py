"""The Spark-native engine's model inside a Python worker, whatever runs it: TensorFlow, ONNX Runtime or OpenVINO.

The native engine classifies in ``predict_batch_udf`` (max path) or ``mapInPandas`` (stream path),
so the model runs in Spark's Python workers, not in the driver.  What a worker needs is a
:class:`WorkerModel`: small and picklable (it travels in the UDF's closure), and the key under which
each worker keeps the loaded model, so that a model is loaded once per worker and not once per task.

``--runtime onnxruntime|openvino`` reuses the edge engines (:mod:`onnx_edge`, :mod:`openvino_edge`)
as they are; only where their files come from differs.  The conversion (and int8 calibration,
which reads training images) runs on the driver, before the job, through the edge conversion
cache (:mod:`edge_convert`, keyed by the model's sha256 and the converter's version).  A worker
then finds those files where the engine looks for them:

- local masters (the workers share the driver's disk): the driver's cache folder itself;
- a cluster: the files are shipped with ``SparkContext.addFile`` (``spark.files``), and each
  executor lays them out as a cache of its own (links under its SparkFiles folder), so the edge
  engine finds every file it asks for and never converts in a worker.  ONNX Runtime's int8 file is
  named for the CPU's VNNI support (its 7-bit weights choice): workers need the driver's CPU flags.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: OpenVINO's performance hint in a worker: each Spark task slot is one core and runs its own worker, so one
#: stream per worker (LATENCY), not the THROUGHPUT hint's one stream per core of the machine in every worker.
WORKER_OPENVINO_HINT = "LATENCY"


@dataclass(frozen=True)
class WorkerModel:
    """What a Python worker needs to load the native engine's model once (picklable; the worker's cache key)."""

    model_file: str  # the Keras model's name under SparkFiles (shipped with addFile)
    transform: str  # the model card's input transform, decided on the driver
    runtime: str = "tf"
    precision: str = "fp32"
    threads: int = 1  # intra-op threads per task
    batch: int = 256
    cache: str | None = None  # the driver's cache base (the folder holding edge/), read in place (local masters)
    shipped: tuple[tuple[str, str], ...] = ()  # (name under SparkFiles, path under edge/), for a cluster

    def classifier(self) -> Callable[[np.ndarray], np.ndarray]:
        """This worker's ``classify(model input) -> classes``, loaded on first use and kept."""
        if self not in _LOADED:
            _LOADED[self] = _load(self)
        return _LOADED[self]


_LOADED: dict[WorkerModel, Callable[[np.ndarray], np.ndarray]] = {}


def _load(spec: WorkerModel) -> Callable[[np.ndarray], np.ndarray]:
    from pyspark import SparkFiles

    path = SparkFiles.get(spec.model_file)
    if spec.runtime == "tf":
        return _load_tf(path, spec)
    return _load_edge(path, spec)


def _load_tf(path: str, spec: WorkerModel) -> Callable[[np.ndarray], np.ndarray]:
    """TensorFlow: the Keras file, one traced graph for every batch size (a partition's last batch is shorter)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if spec.precision == "bf16":
        from iotbench.engines.keras_edge import use_bf16_math

        use_bf16_math(spec.precision)  # before TensorFlow loads in this worker
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(spec.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised in this worker
        pass
    import keras

    model = keras.models.load_model(path, compile=False)
    classify = tf.function(lambda x: tf.argmax(model(x, training=False), axis=1, output_type=tf.int32),
                           input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)])
    return lambda x: classify(x).numpy()


def _load_edge(path: str, spec: WorkerModel) -> Callable[[np.ndarray], np.ndarray]:
    """ONNX Runtime / OpenVINO: the edge engine, its files from the driver's cache or the shipped copies."""
    from iotbench.engines import load_engine_class

    cache = str(_seed_cache(spec.shipped)) if spec.shipped else spec.cache
    options = {"threads": spec.threads} if spec.runtime == "onnxruntime" else {"hint": WORKER_OPENVINO_HINT}
    engine = load_engine_class(spec.runtime)(path, batch=spec.batch, input_transform=spec.transform,
                                             precision=spec.precision, cache=cache, **options)
    with contextlib.redirect_stderr(io.StringIO()):  # "from the cache" lines, once per worker: not the user's
        engine.warmup()
    return engine.classify


def _seed_cache(shipped: tuple[tuple[str, str], ...]) -> Path:
    """An edge cache of this executor's own: links, under its SparkFiles folder, to the files the driver shipped."""
    from pyspark import SparkFiles

    base = Path(SparkFiles.getRootDirectory()) / "iotbench-cache"
    for name, relative in shipped:
        target = base / "edge" / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):  # another worker of this executor made it first
            os.symlink(SparkFiles.get(name), target)
    return base


# --------------------------------------------------------------------------- on the driver


def convert(runtime: str, precision: str, model: Path, transform: str, batch: int) -> tuple[Path, list[Path]]:
    """Convert on the driver, before the job (or take from the cache): ``(cache base, files a worker reads)``.

    The edge engine's own warm-up does it, so the driver resolves exactly the files a worker's engine will
    ask for: the fp32 ONNX file, and the int8 file (OpenVINO's with its ``.bin``) where asked.
    """
    from iotbench.engines import edge_convert
    from iotbench.engines.edge_runtime import make_edge_engine

    engine = make_edge_engine(runtime, model, batch=batch, precision=precision, input_transform=transform)
    engine.warmup()
    base = edge_convert.cache_root().parent
    files = [edge_convert.onnx_target(model), engine.artefact]
    if engine.artefact.suffix == ".xml":
        files.append(engine.artefact.with_suffix(".bin"))
    return base, list(dict.fromkeys(files))


def ship(sc, base: Path, files: list[Path]) -> tuple[tuple[str, str], ...]:
    """Send the converted files to the executors (``addFile``): ``(name under SparkFiles, path under edge/)`` each.

    Every model's files have the same names (``tf2onnx-1.17.0-opset17.onnx``), and SparkFiles is one flat
    folder, so each travels under its cache folder's name too (``<sha256[:16]>-cnn.keras--tf2onnx-…``),
    from a link made for the purpose in this process's staging folder.
    """
    edge = base / "edge"
    out = []
    for file in files:
        relative = file.relative_to(edge)
        name = "--".join(relative.parts)
        staged = _staging() / name
        if not staged.exists():
            try:
                os.link(file, staged)
            except OSError:  # another file system
                shutil.copy2(file, staged)
        sc.addFile(str(staged))
        out.append((name, str(relative)))
    return tuple(out)


_STAGING: list[Path] = []


def _staging() -> Path:
    if not _STAGING:
        _STAGING.append(Path(tempfile.mkdtemp(prefix="iotbench-spark-files-")))
        atexit.register(shutil.rmtree, _STAGING[0], True)
    return _STAGING[0]


def same_machine(master: str) -> bool:
    """Whether the workers share the driver's disk: ``local`` masters (a cluster's workers may be anywhere)."""
    return master.startswith("local")
