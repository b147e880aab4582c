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
worker loads the ``.keras`` file once (shipped with ``SparkContext.addFile``, so it also works on a
cluster) and applies the model's input transform to each batch itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np

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
    """A BigDL Keras-API model (definition + weights files, as the original's ``-md``/``-mw``)."""

    name = "bigdl"

    def __init__(self, defs: Path | str = DEFAULT_BIGDL_DEFS, weights: Path | str = DEFAULT_BIGDL_WEIGHTS,
                 batch_per_thread: int = 64, transform: str | None = None):
        self.defs = require_file(defs, "BigDL model definition")
        self.weights = require_file(weights, "BigDL model weights")
        self.batch_per_thread = batch_per_thread
        self.transform = transform or model_transform(self.defs)
        self.model_name = self.defs.name
        self.model = None

    def load(self, sc) -> None:
        """Load the model into the JVM of the running context (BigDL's engine must be up)."""
        from bigdl.dllib.net.net_load import Net

        self.model = Net.load(str(self.defs), str(self.weights))

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
        classes = callZooFunc("float", "zooPredictClasses", self.model.value, jrdd, self.batch_per_thread, True)
        return np.asarray(classes.collect(), np.int64)

    def predict_blocks(self, blocks_rdd) -> np.ndarray:
        return self.predict_jvm(self.to_jvm(blocks_rdd))


# --------------------------------------------------------------------------- Spark-native (Keras in predict_batch_udf)


def _load_worker_model(file_name: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """In a Python worker: load the shipped Keras model; returns ``classify(model input) -> classes``."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from pyspark import SparkFiles

    path = SparkFiles.get(file_name)
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised in this worker
        pass
    import keras

    model = keras.models.load_model(path, compile=False)
    # One traced graph for every batch size (the last batch of a partition is shorter).
    classify = tf.function(lambda x: tf.argmax(model(x, training=False), axis=1, output_type=tf.int32),
                           input_signature=[tf.TensorSpec([None, 32, 32, 3], tf.float32)])
    return lambda x: classify(x).numpy()


def _make_predict_fn(file_name: str, threads: int, transform: str):
    """``predict_batch_udf``'s factory: each worker loads the model once and classifies image cells."""

    def make():
        classify = _load_worker_model(file_name, threads)
        return lambda cells: classify(from_cells(cells, transform))

    return make


_WORKER_MODELS: dict[tuple, Callable] = {}


def worker_model(file_name: str, threads: int) -> Callable[[np.ndarray], np.ndarray]:
    """This Python worker's ``classify(model input) -> classes``, loaded on first use and kept.

    For code that runs the model inside its own ``mapInPandas`` function (the streaming path fuses
    decoding and classification); ``predict_batch_udf`` keeps its own cache the same way.
    """
    key = (file_name, threads)
    if key not in _WORKER_MODELS:
        _WORKER_MODELS[key] = _load_worker_model(*key)
    return _WORKER_MODELS[key]


class KerasUDFClassifier:
    """Our ``.keras`` model in ``predict_batch_udf`` over a column of image cells (see :func:`to_cells`)."""

    name = "native"

    def __init__(self, model: Path | str = DEFAULT_KERAS_MODEL, batch: int = 256, transform: str | None = None,
                 threads_per_task: int = 1):
        self.path = require_file(model, "Keras model")
        self.batch = batch
        self.transform = transform or model_transform(self.path)
        self.threads = threads_per_task
        self.model_name = self.path.name
        self.udf = None

    def load(self, sc) -> None:
        """Ship the model file to the executors and build the UDF."""
        from pyspark.ml.functions import predict_batch_udf
        from pyspark.sql.types import IntegerType

        sc.addFile(str(self.path))
        self.udf = predict_batch_udf(_make_predict_fn(self.path.name, self.threads, self.transform),
                                     return_type=IntegerType(), batch_size=self.batch)

    def image_classifier(self) -> Callable:
        """A picklable ``classify(images as decoded, raw) -> classes`` for use inside a worker.

        The model file is shipped by :meth:`load`; images are transformed and classified in
        batches of ``batch``, straight from the decoded block (no cells in between).
        """
        name, threads, transform, batch = self.path.name, self.threads, self.transform, self.batch

        def classify(images: np.ndarray, raw: bool) -> np.ndarray:
            model = worker_model(name, threads)
            x = to_model_input(images, raw, transform)
            parts = [model(x[i:i + batch]) for i in range(0, len(x), batch)]
            return np.concatenate(parts) if parts else np.empty(0, np.int32)

        return classify

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
