"""Spark max-throughput path: classify an in-memory CIFAR-10 split over and over for a fixed duration.

As the original ``infer_cifar_max.py``: the split is distributed once, then each *iteration*
predicts every image and counts the correct ones, until ``duration`` seconds have passed
(at least one iteration); throughput = images inferred / elapsed.  Two engines:

- ``bigdl``: Samples are built per partition from numpy blocks, materialised once in the JVM
  (``BigDLClassifier.to_jvm(cache=True)``), and every iteration is one ``zooPredictClasses``
  over them — the Python side only collects the predicted classes;
- ``native``: a cached DataFrame ``(label, image binary)``; every iteration runs
  ``predict_batch_udf`` (Arrow batches to the Python workers' Keras model) and sums the matches
  on the cluster.

One untimed warm-up iteration loads the model into every worker first (the original timed it).
The engine knows nothing about the CLI or pytest: :func:`run_max` takes callbacks for output.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from iotbench.engines.spark_models import BigDLClassifier, KerasUDFClassifier, images_dataframe, to_model_input
from iotbench.spark.executors import executor_count, lost_between

BLOCK = 500  # images per numpy block (BigDL) — small enough to spread over partitions


@dataclass
class Iteration:
    index: int
    images: int
    correct: int
    seconds: float


@dataclass
class MaxResult:
    engine: str
    model: str
    dataset: str
    master: str
    partitions: int
    batch: int
    iterations: list[Iteration] = field(default_factory=list)
    elapsed_s: float = 0.0
    executors_start: int | None = None  # live executors when the clock started / stopped (None: not measured)
    executors_end: int | None = None
    runtime: str | None = None  # what runs the model in the workers (tf, onnxruntime, openvino; bigdl)
    precision: str | None = None
    bigdl_engine: str | None = None  # BigDL's engine (mklblas, mkldnn); None for the native engine

    @property
    def images(self) -> int:
        return sum(i.images for i in self.iterations)

    @property
    def correct(self) -> int:
        return sum(i.correct for i in self.iterations)

    @property
    def images_per_sec(self) -> float:
        return self.images / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.images if self.images else None

    def summary(self) -> dict:
        """The fixed summary keys (DESIGN.md § Measuring) plus the path's own."""
        return {
            "engine": self.engine, "model": self.model, "runtime": self.runtime, "precision": self.precision,
            **({"bigdl_engine": self.bigdl_engine} if self.bigdl_engine else {}),
            "dataset": self.dataset, "master": self.master, "partitions": self.partitions, "batch": self.batch,
            "classified": self.images, "correct": self.correct, "accuracy": self.accuracy,
            "elapsed_s": round(self.elapsed_s, 4), "images_per_sec": round(self.images_per_sec, 2),
            "iterations": len(self.iterations),
            "images_per_iteration": self.iterations[0].images if self.iterations else 0,
            "iteration_seconds": [round(i.seconds, 3) for i in self.iterations],
            "rejected": 0, "lost": 0, "sent": None, "p50_ms": None, "p99_ms": None,
            "executors_start": self.executors_start, "executors_end": self.executors_end,
            "executors_lost": lost_between(self.executors_start, self.executors_end),
        }


class BigDLMax:
    """BigDL engine of the max path."""

    name = "bigdl"
    runtime, precision = "bigdl", "fp32"

    def __init__(self, classifier: BigDLClassifier):
        self.classifier = classifier
        self.model = classifier.model_name
        self.batch = classifier.batch_per_thread
        self.bigdl_engine = classifier.bigdl_engine
        self.labels: np.ndarray | None = None
        self.jrdd = None

    def prepare(self, sc, images: np.ndarray, labels: np.ndarray, partitions: int) -> None:
        self.classifier.load(sc)
        blocks = [(images[i:i + BLOCK], labels[i:i + BLOCK], True) for i in range(0, len(labels), BLOCK)]
        self.jrdd = self.classifier.to_jvm(sc.parallelize(blocks, partitions), cache=True)
        self.labels = np.asarray(labels, np.int64)

    def iterate(self) -> tuple[int, int]:
        """(images, correct) of one pass over the data."""
        predicted = self.classifier.predict_jvm(self.jrdd)
        return len(predicted), int(np.count_nonzero(predicted == self.labels))

    def release(self) -> None:
        if self.jrdd is not None:
            self.jrdd.unpersist()
            self.jrdd = None


class NativeMax:
    """Spark-native engine of the max path: ``predict_batch_udf`` over a cached DataFrame."""

    name = "native"

    def __init__(self, classifier: KerasUDFClassifier):
        self.classifier = classifier
        self.model = classifier.model_name
        self.batch = classifier.batch
        self.runtime, self.precision = classifier.runtime, classifier.precision
        self.df = None

    def prepare(self, sc, images: np.ndarray, labels: np.ndarray, partitions: int) -> None:
        from iotbench.spark import sql_session

        self.classifier.load(sc)
        self.df = images_dataframe(sql_session(sc), images, labels, partitions).cache()
        self.df.count()  # materialise the cache before anything is timed

    def iterate(self) -> tuple[int, int]:
        from pyspark.sql import functions as F

        scored = self.classifier.predicted(self.df)
        row = scored.agg(F.count("*").alias("n"),
                         F.sum((F.col("predicted") == F.col("label")).cast("int")).alias("ok")).first()
        return int(row["n"]), int(row["ok"] or 0)

    def release(self) -> None:
        if self.df is not None:
            self.df.unpersist()
            self.df = None


def run_max(engine, sc, images: np.ndarray, labels: np.ndarray, duration: float, *, dataset: str = "test",
            partitions: int | None = None, warmup: int = 1,
            on_start: Callable[[], None] | None = None,
            on_iteration: Callable[[Iteration], None] | None = None) -> MaxResult:
    """Prepare ``engine`` on ``sc``, warm it up, then iterate over the data until ``duration`` s have passed."""
    partitions = partitions or max(sc.defaultParallelism, 1)
    engine.prepare(sc, images, labels, partitions)
    result = MaxResult(engine.name, engine.model, dataset, sc.master, partitions, engine.batch,
                       runtime=getattr(engine, "runtime", None), precision=getattr(engine, "precision", None),
                       bigdl_engine=getattr(engine, "bigdl_engine", None))
    try:
        for _ in range(warmup):
            engine.iterate()
        result.executors_start = executor_count(sc)
        if on_start:
            on_start()
        start = time.perf_counter()
        while True:
            t0 = time.perf_counter()
            n, correct = engine.iterate()
            it = Iteration(len(result.iterations) + 1, n, correct, time.perf_counter() - t0)
            result.iterations.append(it)
            if on_iteration:
                on_iteration(it)
            if time.perf_counter() - start > duration:
                break
        result.elapsed_s = time.perf_counter() - start
        result.executors_end = executor_count(sc)
    finally:
        engine.release()
    return result


def keras_ceiling(model_path, images: np.ndarray, labels: np.ndarray, duration: float, batch: int = 256,
                  transform: str | None = None) -> dict:
    """Single-process Keras batched throughput on the same images (the native engine's reference).

    Runs in the calling process with TensorFlow's default threading (all cores), one untimed
    warm-up batch, then whole passes over the data until ``duration`` s have passed.
    """
    import keras

    from iotbench.engines.spark_models import model_transform

    model = keras.models.load_model(model_path, compile=False)
    x = to_model_input(images, True, transform or model_transform(model_path))
    model.predict(x[:batch], batch_size=batch, verbose=0)
    figures = _passes(lambda: np.asarray(model.predict(x, batch_size=batch, verbose=0)).argmax(1), labels, duration)
    return {"engine": "keras", **figures, "batch": batch}


def runtime_ceiling(runtime: str, model_path, images: np.ndarray, labels: np.ndarray, duration: float, *,
                    batch: int = 256, precision: str = "fp32", transform: str | None = None) -> dict:
    """The in-process ceiling of the runtime the native engine runs in its workers: the edge engine of
    ``runtime`` / ``precision`` (the same converted file, from the cache) on model-ready images, in this process
    with its default threading (all cores), warmed up, whole passes until ``duration`` s have passed."""
    from iotbench.engines.edge_runtime import make_edge_engine

    engine = make_edge_engine(runtime, model_path, batch=batch, precision=precision, input_transform=transform)
    engine.warmup()
    x = to_model_input(images, True, engine.transform)
    figures = _passes(lambda: engine.classify(x), labels, duration)
    return {"engine": runtime, "precision": precision, **figures, "batch": batch}


def _passes(classify: Callable[[], np.ndarray], labels: np.ndarray, duration: float) -> dict:
    """Whole passes of ``classify()`` (the classes of every image) until ``duration`` s have passed (at least one)."""
    labels = np.asarray(labels, np.int64)
    n = correct = 0
    start = time.perf_counter()
    while True:
        predicted = classify()
        n += len(predicted)
        correct += int(np.count_nonzero(predicted == labels))
        if time.perf_counter() - start > duration:
            break
    elapsed = time.perf_counter() - start
    return {"images": n, "correct": correct, "accuracy": correct / n, "elapsed_s": round(elapsed, 4),
            "images_per_sec": round(n / elapsed, 2)}
