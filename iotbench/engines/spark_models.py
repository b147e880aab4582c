"""The two classifiers the Spark paths distribute: a BigDL model on an RDD, a Keras model in ``predict_batch_udf``.

Both take the same input — blocks of CIFAR-10 images as sent (``raw`` 0-255 integers or
``%f`` floats) with their labels — and give 0-based classes, so the max and streaming paths
(and their tests) treat them alike.

BigDL: every RDD element must be a BigDL ``Sample`` (one per image).  Samples are created per
partition from numpy blocks (never one Python object per image shipped from the driver); the
images are transposed to NCHW, the layout of our BigDL twin of the Keras CNN (see
``iotbench.convert.bigdl_cnn``).  ``predict_class`` / ``zooPredictClasses`` run in the JVM.

Native: ``pyspark.ml.functions.predict_batch_udf`` over a DataFrame column ``image`` (binary: the
image as sent, 3,072 uint8 bytes for 0-255 values, see :func:`to_cells`) moved by Arrow; each Python
worker loads the model once (the ``.keras`` file shipped with ``SparkContext.addFile``, so it also works
on a cluster; for ONNX Runtime or OpenVINO the file converted on the driver, see :mod:`spark_runtime`)
and applies the model's input transform to each batch itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

from iotbench.engines import spark_runtime
from iotbench.engines.spark_runtime import WorkerModel
from iotbench.models import preprocess
from iotbench.models.cards import model_transform  # noqa: F401  (the engines and converters ask the card)

ROOT = Path(__file__).resolve().parents[2]
PIXEL_BYTES = 32 * 32 * 3
DEFAULT_BIGDL_DEFS = ROOT / "models" / "bigdl_cnn.bigdl"
DEFAULT_BIGDL_WEIGHTS = ROOT / "models" / "bigdl_cnn.bin"
DEFAULT_KERAS_MODEL = ROOT / "models" / "cnn.keras"


def to_model_input(images: np.ndarray, raw: bool, transform: str) -> np.ndarray:
    """Images as sent -> float32 model input (NHWC): raw 0-255 values are transformed, %f values used as they are."""
    images = np.asarray(images, np.float32).reshape(-1, 32, 32, 3)
    return preprocess(images, transform) if raw else images


def require_file(path: Path | str, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


# --------------------------------------------------------------------------- BigDL


def samples_from_blocks(blocks: Iterable[tuple[np.ndarray, np.ndarray, bool]], transform: str) -> Iterator:
    """BigDL Samples (NCHW features, 1-based label) for every image of every ``(images, labels, raw)`` block."""
    from bigdl.dllib.utils.common import Sample

    for images, labels, raw in blocks:
        x = np.ascontiguousarray(to_model_input(images, raw, transform).transpose(0, 3, 1, 2))
        for image, label in zip(x, np.asarray(labels)):
            yield Sample.from_ndarray(image, np.float32(label + 1))


class BigDLClassifier:
    """A BigDL Keras-API model (definition + weights files, as the original's ``-md``/``-mw``).

    ``bigdl_engine`` is the engine the JVMs were started with (``SparkSettings.bigdl_engine``): under mklblas
    BigDL's own ``predictClass`` classifies; under mkldnn our ``EngineMax`` does, on the model converted for
    MKL-DNN inference once per executor (BigDL's predictClass would run its BLAS layers on MKL-DNN's one-thread
    pools, slower than mklblas).
    """

    name = "bigdl"

    def __init__(self, defs: Path | str = DEFAULT_BIGDL_DEFS, weights: Path | str = DEFAULT_BIGDL_WEIGHTS,
                 batch_per_thread: int = 64, transform: str | None = None, bigdl_engine: str = "mklblas"):
        self.defs = require_file(defs, "BigDL model definition")
        self.weights = require_file(weights, "BigDL model weights")
        self.batch_per_thread = batch_per_thread
        self.transform = transform or model_transform(self.defs)
        self.model_name = self.defs.name
        self.bigdl_engine = bigdl_engine
        self.model = None
        self.engine_max = self.broadcast = self.sc = None  # the JVM helper; the model broadcast once (mkldnn)

    def load(self, sc) -> None:
        """Load the model into the JVM of the running context (BigDL's engine must be up), refusing in one line a
        context whose JVM runs another engine than ours (the engine is fixed when a JVM starts)."""
        from bigdl.dllib.net.net_load import Net

        self.engine_max = sc._jvm.com.intel.analytics.bigdl.dllib.iotbench.EngineMax
        running = self.engine_max.engine()
        if running != self.bigdl_engine:
            raise RuntimeError(f"BigDL engine {self.bigdl_engine} asked for, but this Spark context's JVM runs "
                               f"{running} (BigDL fixes it when the JVM starts: start Spark with that engine)")
        self.model = Net.load(str(self.defs), str(self.weights))
        self.sc, self.broadcast = sc, None

    def to_jvm(self, blocks_rdd, cache: bool = False):
        """A JVM RDD of Samples from an RDD of ``(images, labels, raw)`` blocks.

        ``cache`` materialises it in the executors and cuts its lineage (``localCheckpoint``), so
        repeated predictions neither recompute the Samples in Python nor ship the driver's
        parallelized data with every task.
        """
        from bigdl.dllib.utils.common import _py2java

        transform = self.transform
        samples = blocks_rdd.mapPartitions(lambda it: samples_from_blocks(it, transform))
        jrdd = _py2java(blocks_rdd.ctx._gateway, samples)
        if cache:
            jrdd.rdd().localCheckpoint()
            jrdd.count()
        return jrdd

    def predict_jvm(self, jrdd) -> np.ndarray:
        """0-based classes of a JVM Sample RDD, in its order."""
        from bigdl.dllib.utils.file_utils import callZooFunc

        if self.model is None:
            raise RuntimeError("BigDLClassifier.load(sc) first")
        if self.bigdl_engine != "mklblas":
            if self.broadcast is None:  # once, on first use: the BigDL stream broadcasts its own (JvmLines)
                self.broadcast = self.sc._jvm.iotbench.JvmLines.broadcast(self.sc._jsc, self.model.value)
            classes = self.engine_max.classes(jrdd, self.broadcast, self.batch_per_thread)
            return np.asarray(classes.collect(), np.int64)
        classes = callZooFunc("float", "zooPredictClasses", self.model.value, jrdd, self.batch_per_thread, True)
        return np.asarray(classes.collect(), np.int64)

    def predict_blocks(self, blocks_rdd) -> np.ndarray:
        return self.predict_jvm(self.to_jvm(blocks_rdd))


# --------------------------------------------------------------------------- Spark-native (predict_batch_udf)


def _make_predict_fn(spec: WorkerModel, transform: str):
    """``predict_batch_udf``'s factory: each worker loads the model once and classifies image cells."""

    def make():
        classify = spec.classifier()
        return lambda cells: classify(from_cells(cells, transform))

    return make


class KerasUDFClassifier:
    """Our Keras model in ``predict_batch_udf`` over a column of image cells (see :func:`to_cells`).

    ``runtime`` / ``precision`` choose what runs it in the workers (the edge runtimes' choices, refused
    in one line where this CPU or runtime cannot): TensorFlow fp32 by default, or the model converted
    on the driver for ONNX Runtime or OpenVINO (see :mod:`iotbench.engines.spark_runtime`).
    ``ship_files`` sends the converted files with ``addFile`` (default: only to a cluster's workers).
    """

    name = "native"

    def __init__(self, model: Path | str = DEFAULT_KERAS_MODEL, batch: int = 256, transform: str | None = None,
                 threads_per_task: int = 1, runtime: str = "tf", precision: str = "fp32",
                 ship_files: bool | None = None):
        from iotbench.engines.edge_runtime import check_precision

        self.path = require_file(model, "Keras model")
        check_precision(runtime, precision)
        self.batch = batch
        self.transform = transform or model_transform(self.path)
        self.threads = threads_per_task
        self.runtime, self.precision = runtime, precision
        self.ship_files = ship_files
        self.model_name = self.path.name
        self.converted: tuple[Path, list[Path]] | None = None
        self.worker: WorkerModel | None = None
        self.udf = None

    def convert(self) -> list[Path]:
        """Convert the model for its runtime on the driver (cached; nothing for TensorFlow): the files the
        workers will read.  Called by :meth:`load`, or earlier to fail before Spark starts."""
        if self.runtime == "tf":
            return []
        if self.converted is None:
            self.converted = spark_runtime.convert(self.runtime, self.precision, self.path, self.transform,
                                                   self.batch)
        return self.converted[1]

    def load(self, sc) -> None:
        """Convert (driver), ship the model file(s) to the executors and build the UDF."""
        from pyspark.ml.functions import predict_batch_udf
        from pyspark.sql.types import IntegerType

        sc.addFile(str(self.path))
        cache, shipped = None, ()
        if self.convert():
            base, files = self.converted
            ship = not spark_runtime.same_machine(sc.master) if self.ship_files is None else self.ship_files
            if ship:
                shipped = spark_runtime.ship(sc, base, files)
            else:
                cache = str(base)
        self.worker = WorkerModel(self.path.name, self.transform, self.runtime, self.precision, self.threads,
                                  self.batch, cache, shipped)
        self.udf = predict_batch_udf(_make_predict_fn(self.worker, self.transform), return_type=IntegerType(),
                                     batch_size=self.batch)

    def image_classifier(self) -> Callable:
        """A picklable ``classify(images as decoded, raw) -> classes`` for use inside a worker.

        The model file is shipped by :meth:`load`; images are transformed and classified in
        batches of ``batch``, straight from the decoded block (no cells in between).
        """
        if self.worker is None:
            raise RuntimeError("KerasUDFClassifier.load(sc) first")
        spec, transform, batch = self.worker, self.transform, self.batch

        def classify(images: np.ndarray, raw: bool) -> np.ndarray:
            model = spec.classifier()
            x = to_model_input(images, raw, transform)
            parts = [model(x[i:i + batch]) for i in range(0, len(x), batch)]
            return np.concatenate(parts) if parts else np.empty(0, np.int32)

        return classify

    def describe(self) -> str:
        return f"{self.model_name}: {self.runtime} {self.precision} in the Python workers, batches of {self.batch}"

    def predicted(self, df, image_col: str = "image"):
        """``df`` plus a column ``predicted`` (0-based class)."""
        if self.udf is None:
            raise RuntimeError("KerasUDFClassifier.load(sc) first")
        return df.withColumn("predicted", self.udf(image_col))


def to_cells(images: np.ndarray, raw: bool) -> list[bytes]:
    """One ``image`` cell per image, as sent: 3,072 uint8 bytes for raw 0-255 values, else 12,288 float32 bytes.

    Raw images travel as bytes and are transformed in the worker, just before the model: a quarter
    of the float32 model input's size through Arrow, the JVM and the cache.
    """
    dtype = np.uint8 if raw else np.float32
    x = np.ascontiguousarray(np.asarray(images).reshape(len(images), -1), dtype)
    return [row.tobytes() for row in x]


def from_cells(cells, transform: str) -> np.ndarray:
    """The model input for a batch of :func:`to_cells` cells: float32 (N, 32, 32, 3)."""
    cells = list(cells)
    if all(len(c) == PIXEL_BYTES for c in cells):
        raw = np.frombuffer(b"".join(cells), np.uint8).reshape(-1, 32, 32, 3)
        return preprocess(raw, transform)
    if all(len(c) == 4 * PIXEL_BYTES for c in cells):
        return np.frombuffer(b"".join(cells), np.float32).reshape(-1, 32, 32, 3)
    if not cells:
        return np.empty((0, 32, 32, 3), np.float32)
    return np.concatenate([from_cells([c], transform) for c in cells])  # a batch mixing both kinds


def images_dataframe(spark, images: np.ndarray, labels: np.ndarray, partitions: int):
    """A DataFrame ``(label int, image binary)`` of raw image cells (see :func:`to_cells`), built through Arrow."""
    import pandas as pd

    cells = to_cells(images, raw=True)
    pdf = pd.DataFrame({"label": np.asarray(labels, np.int32), "image": cells})
    df = spark.createDataFrame(pdf, schema="label int, image binary")
    return df.repartition(partitions)
