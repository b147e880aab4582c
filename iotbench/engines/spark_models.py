"""The two classifiers the Spark paths distribute: a BigDL model on an RDD, a Keras model in ``predict_batch_udf``.

Both take the same input — blocks of CIFAR-10 images as sent (``raw`` 0-255 integers or
``%f`` floats) with their labels — and give 0-based classes, so the max and streaming paths
(and their tests) treat them alike.

BigDL: every RDD element must be a BigDL ``Sample`` (one per image).  Samples are created per
partition from numpy blocks (never one Python object per image shipped from the driver); the
images are transposed to NCHW, the layout of our BigDL twin of the Keras CNN (see
``iotbench.models.bigdl_convert``).  ``predict_class`` / ``zooPredictClasses`` run in the JVM.

Native: ``pyspark.ml.functions.predict_batch_udf`` over a DataFrame column ``image`` (binary:
the float32 model input, already transformed, see :func:`to_binary`) moved by Arrow; each
Python worker loads the ``.keras`` file once (shipped with ``SparkContext.addFile``, so it also works on a cluster).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from iotbench.models import preprocess

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIGDL_DEFS = ROOT / "models" / "bigdl_cnn.bigdl"
DEFAULT_BIGDL_WEIGHTS = ROOT / "models" / "bigdl_cnn.bin"
DEFAULT_KERAS_MODEL = ROOT / "models" / "cnn.keras"


def model_transform(model_path: Path | str) -> str:
    """The input transform a model expects, from its JSON sidecar (``unit`` when there is none)."""
    path = Path(model_path)
    for sidecar in (path.with_suffix(".json"), path.with_name(path.name.split(".")[0] + ".json")):
        if sidecar.is_file():
            return json.loads(sidecar.read_text()).get("input_transform", "unit")
    return "unit"


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

    def warmup(self, sc) -> None:
        """One small prediction per core, so that the first timed batch does not pay for the model's broadcast."""
        n = max(sc.defaultParallelism, 1)
        blank = [(np.zeros((4, 32, 32, 3), np.uint8), np.zeros(4, np.int64), True) for _ in range(n)]
        self.predict_blocks(sc.parallelize(blank, n))

    def predict_blocks(self, blocks_rdd) -> np.ndarray:
        return self.predict_jvm(self.to_jvm(blocks_rdd))


# --------------------------------------------------------------------------- Spark-native (Keras in predict_batch_udf)


def _make_predict_fn(file_name: str, threads: int):
    """Runs in each Python worker: load the Keras model once, return ``predict(model inputs) -> classes``."""

    def make():
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

        def predict(images: np.ndarray) -> np.ndarray:
            return classify(from_binary(images)).numpy()

        return predict

    return make


class KerasUDFClassifier:
    """Our ``.keras`` model in ``predict_batch_udf`` over a column of model inputs (see :func:`images_dataframe`)."""

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
        self.udf = predict_batch_udf(_make_predict_fn(self.path.name, self.threads),
                                     return_type=IntegerType(), batch_size=self.batch)

    def warmup(self, sc) -> None:
        """Load the model into the Python workers (one tiny partition per core) before anything is timed."""
        from pyspark.sql import functions as F

        from iotbench.engines.spark_context import sql_session

        n = max(sc.defaultParallelism, 1)
        blank = np.zeros((n, 32, 32, 3), np.uint8)
        df = images_dataframe(sql_session(sc), blank, np.zeros(n, np.int32), n, self.transform)
        self.predicted(df).agg(F.sum("predicted")).first()

    def predicted(self, df, image_col: str = "image"):
        """``df`` plus a column ``predicted`` (0-based class)."""
        if self.udf is None:
            raise RuntimeError("KerasUDFClassifier.load(sc) first")
        return df.withColumn("predicted", self.udf(image_col))


def to_binary(model_input: np.ndarray) -> list[bytes]:
    """One ``image`` cell per image: its float32 model input (HWC) as 12,288 bytes.

    A binary cell is one value for Arrow and the JVM, an ``array<float>`` cell 3,072 values converted
    one by one (a no-op ``predict_batch_udf`` pass over 2,000 cached images: best of 8, 1.38 s binary
    vs 1.60 s array<float>, on a loaded 2-core machine).
    """
    x = np.ascontiguousarray(model_input, np.float32).reshape(len(model_input), -1)
    return [row.tobytes() for row in x]


def from_binary(cells) -> np.ndarray:
    """The inverse of :func:`to_binary` for a batch of cells: float32 (N, 32, 32, 3)."""
    return np.frombuffer(b"".join(cells), np.float32).reshape(-1, 32, 32, 3)


def images_dataframe(spark, images: np.ndarray, labels: np.ndarray, partitions: int, transform: str = "unit"):
    """A DataFrame ``(label int, image binary)`` of model inputs (see :func:`to_binary`), built through Arrow."""
    import pandas as pd

    cells = to_binary(to_model_input(images, True, transform))
    pdf = pd.DataFrame({"label": np.asarray(labels, np.int32), "image": cells})
    df = spark.createDataFrame(pdf, schema="label int, image binary")
    return df.repartition(partitions)
