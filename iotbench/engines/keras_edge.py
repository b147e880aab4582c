"""The Keras edge engine: a CIFAR-10 Keras model classifying streamed images on one machine.

Two modes, chosen by ``batch``:

* ``batch == 1`` — **the original's behaviour, kept as the baseline**: one ``model.predict``
  call per image, exactly what ``infer_cifar.py`` did.  ``model.predict`` builds a data
  adapter and runs Keras' predict loop on every call, which costs far more than the
  ResNet20's arithmetic on one image; that overhead is what the original measured, so the
  baseline keeps it rather than flattering the comparison with a faster per-image call.
* ``batch > 1`` — **micro-batched**: the receiver hands over blocks of up to ``batch``
  images; each block is padded to the next of a few fixed *bucket* sizes and run through a
  ``tf.function`` traced once per bucket during :meth:`KerasEdgeEngine.warmup` (argmax
  included, so only class ids leave the graph).  Fixed shapes mean no retracing in the
  timed part however the stream's blocks happen to fill, and padding costs at most 2× on
  a partial block (which only happens when the stream is slower than the engine anyway).

Input transform: a model expects pixels in [0, 1] (``"unit"``) or in [0, 1] minus the
CIFAR-10 per-pixel training mean (``"unit_minus_mean"``).  ``%f`` text arrives already
transformed by the sender (its ``-s`` flag did the mean subtraction), so those values are
passed as sent, as the original did.  Raw 0-255 values (``%d`` text, binary frames) get the
model's transform applied here.  The transform is the caller's when given, else the model
card's: the sidecar JSON next to the model (``models/NAME.json``, written by ``iotbench
train``) or, for the original benchmark's files, its published card; else ``"unit"``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from iotbench.models import preprocess
from iotbench.models.cards import LEGACY_CARDS, model_card, read_sidecar, resolve_transform, sidecar_path  # noqa: F401
from iotbench.wire import IMAGE_SHAPE, Decoded

#: Smallest bucket a micro-batch is padded to (tiny batches are latency-bound anyway).
MIN_BUCKET = 8


def buckets_for(batch: int) -> tuple[int, ...]:
    """Padded batch shapes for a maximum block of ``batch``: powers of two from MIN_BUCKET, then ``batch``."""
    if batch <= 1:
        return (1,)
    sizes = {batch}
    size = MIN_BUCKET
    while size < batch:
        sizes.add(size)
        size *= 2
    return tuple(sorted(sizes))


def _first_line(err: BaseException) -> str:
    """The line of an error worth printing (a traced call's error ends with the real message)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(err))  # Keras colours its messages
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    return lines[-1] if lines[0].startswith("in user code") else lines[0]


def load_model(path: Path):
    """Load a ``.keras``/``.h5`` file or a SavedModel folder; any failure is one line naming the file.

    Returns ``(keras model or None, callable images -> scores)``: a SavedModel has no Keras
    model, only its serving signature.
    """
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        if path.is_dir():
            import tensorflow as tf

            if not (path / "saved_model.pb").is_file():
                raise ValueError("not a SavedModel folder (no saved_model.pb)")
            loaded = tf.saved_model.load(str(path))  # must stay referenced: it owns the variables
            signature = loaded.signatures["serving_default"]
            arg = next(iter(signature.structured_input_signature[1]))  # signatures take keyword arguments only

            def call(x, _owner=loaded):
                return next(iter(signature(**{arg: tf.convert_to_tensor(x, tf.float32)}).values()))

            return None, call
        import keras

        model = keras.models.load_model(path, compile=False)
    except Exception as err:  # h5py OSError, zipfile errors, Keras ValueError...: all mean "cannot use this file"
        raise ValueError(f"cannot load Keras model {path}: {_first_line(err)}") from None
    return model, lambda x: model(x, training=False)


def bf16_math_on() -> bool:
    """Whether oneDNN computes in bf16 in this process (so a TensorFlow "fp32" figure would not be one)."""
    import os

    return os.environ.get("ONEDNN_DEFAULT_FPMATH_MODE", "").upper() == "BF16"


def use_bf16_math(precision: str) -> None:
    """TensorFlow's bf16: oneDNN's ``ONEDNN_DEFAULT_FPMATH_MODE=BF16`` (fp32 weights, bf16 arithmetic).

    oneDNN reads the variable when TensorFlow loads it, so it is set here before the import; a
    process that already imported TensorFlow in fp32 cannot switch and is told so.
    """
    import os
    import sys

    from iotbench.engines.edge_runtime import check_precision

    check_precision("tf", precision)
    if bf16_math_on():
        return
    if "tensorflow" in sys.modules:
        raise ValueError("--runtime tf --precision bf16 needs ONEDNN_DEFAULT_FPMATH_MODE=BF16 before TensorFlow "
                         "is imported; this process already imported it")
    os.environ["ONEDNN_DEFAULT_FPMATH_MODE"] = "BF16"


class KerasEdgeEngine:
    """Classifies decoded CIFAR-10 batches with a Keras model (see the module docstring for the modes)."""

    name = "keras"
    runtime = "tf"

    def __init__(self, model_path: str | Path, batch: int = 64, input_transform: str | None = None,
                 jit_compile: bool = False, precision: str = "fp32"):
        self.path = Path(model_path)
        if not self.path.exists():
            raise FileNotFoundError(f"model file not found: {self.path}")
        self.precision = precision
        if precision != "fp32":
            use_bf16_math(precision)
        elif bf16_math_on():
            raise ValueError("--runtime tf --precision fp32 asked for, but ONEDNN_DEFAULT_FPMATH_MODE=BF16 is set: "
                             "TensorFlow would compute in bf16; unset it for fp32 figures")
        self.model = self.path.name
        self.batch = max(int(batch), 1)
        self.transform, self.transform_source = resolve_transform(self.path, input_transform)
        self.jit_compile = jit_compile
        self.buckets = buckets_for(self.batch)
        self._keras_model = None
        self._call = None
        self._compiled: dict[int, object] = {}
        self._warm = False

    @property
    def loaded(self) -> bool:
        return self._call is not None

    def load(self) -> None:
        if not self.loaded:
            self._keras_model, self._call = load_model(self.path)

    def warmup(self) -> None:
        """Load the model and trace (compile) every bucket, so that no timed batch pays for it (once)."""
        if self._warm:
            return
        self.load()
        shape = getattr(self._keras_model, "input_shape", None)
        if isinstance(shape, tuple) and tuple(shape[1:]) != IMAGE_SHAPE:
            raise ValueError(f"model {self.path} takes inputs of shape {tuple(shape[1:])}, "
                             f"not CIFAR-10's {IMAGE_SHAPE}")
        if self.per_image:
            try:
                self._predict_per_image(np.zeros((2, *IMAGE_SHAPE), np.float32))
            except Exception as err:
                raise ValueError(f"model {self.path} cannot classify {IMAGE_SHAPE} images: "
                                 f"{_first_line(err)}") from None
            self._warm = True
            return
        import tensorflow as tf

        fn = tf.function(lambda x: tf.argmax(self._call(x), axis=-1, output_type=tf.int32),
                         jit_compile=self.jit_compile, autograph=False)
        for size in self.buckets:
            try:
                concrete = fn.get_concrete_function(tf.TensorSpec((size, *IMAGE_SHAPE), tf.float32))
                concrete(tf.zeros((size, *IMAGE_SHAPE), tf.float32))  # first run: oneDNN/XLA kernels
            except Exception as err:  # e.g. a model for other input shapes: one line naming the file
                raise ValueError(f"model {self.path} cannot classify {IMAGE_SHAPE} images: "
                                 f"{_first_line(err)}") from None
            self._compiled[size] = concrete
        self._warm = True

    @property
    def per_image(self) -> bool:
        return self.batch == 1

    def inputs(self, batch: Decoded) -> np.ndarray:
        """The model's float32 input: raw 0-255 values transformed, ``%f`` values as sent."""
        if batch.raw:
            return preprocess(batch.images, self.transform)
        return np.asarray(batch.images, np.float32)

    def predict(self, batch: Decoded) -> np.ndarray:
        if not len(batch):
            return np.empty(0, np.int64)
        return self.classify(self.inputs(batch))

    def classify(self, x: np.ndarray) -> np.ndarray:
        """Class ids of model-ready images (also the in-memory ceiling's call): one ``model.predict``
        per image at batch 1, else through the compiled buckets."""
        if self.per_image:
            self.load()
            return self._predict_per_image(x)
        if not self._compiled:
            self.warmup()
        largest = self.buckets[-1]
        out = [self._classify_block(x[start:start + largest]) for start in range(0, len(x), largest)]
        return np.concatenate(out).astype(np.int64)

    def _classify_block(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        size = next(b for b in self.buckets if b >= n)
        if size != n:
            x = np.concatenate([x, np.zeros((size - n, *IMAGE_SHAPE), np.float32)])
        return self._compiled[size](x).numpy()[:n]

    def _predict_per_image(self, x: np.ndarray) -> np.ndarray:
        """The original's loop: one ``model.predict`` per image."""
        if self._keras_model is None:  # a SavedModel: no predict loop, call the signature per image
            return np.array([int(np.argmax(self._call(x[i:i + 1]))) for i in range(len(x))], np.int64)
        return np.array([int(np.argmax(self._keras_model.predict(x[i:i + 1], verbose=0))) for i in range(len(x))],
                        np.int64)

    def describe(self) -> str:
        mode = "one model.predict per image" if self.per_image else f"micro-batches of up to {self.batch}"
        return (f"{self.model}: TensorFlow {self.precision}, {mode}; "
                f"raw inputs transformed '{self.transform}' ({self.transform_source})")
