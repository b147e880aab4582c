"""Keras edge classifier: a CIFAR-10 Keras model (.keras, the original's .h5, SavedModel) on a stream.

    nc -lk 10000 | iotbench infer keras -m models/resnet20.keras -r 1000
    iotbench infer keras -m ../shared/models/cifar10_ResNet20v1_model_91470.h5 --listen 10000
    nc -lk 10000 | infer_cifar -m cifar10_ResNet20v1_model_91470.h5 -r 1000      # the original's usage

``--batch 1`` is the original's behaviour (one ``model.predict`` per image, the baseline);
the default micro-batches up to 64 images, closing a batch after ``--max-wait-ms`` so that
latency stays bounded when the stream is slow.  ``infer_cifar`` keeps the original's flags
and reads stdin as the original did, with the same micro-batching default: its final line
is the original's, only reached an order of magnitude sooner (``--batch 1`` restores the
original's speed exactly).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile

from iotbench.commands.receive import add_receiver_arguments, run_stream_classifier
from iotbench.models import TRANSFORMS
from iotbench.report import log

DEFAULT_BATCH = 64


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--modelPath", "--model", dest="model", required=True,
                        help="trained model: .keras, Keras 2 .h5 (the original's files) or a SavedModel folder")
    add_receiver_arguments(parser, batch=DEFAULT_BATCH)
    parser.add_argument("--input-transform", choices=TRANSFORMS, default=None,
                        help="what raw 0-255 inputs (%%d text, binary) become: [0,1] or [0,1] minus the "
                             "training mean (default: the model's sidecar JSON, else known legacy files, else unit); "
                             "%%f values are always used as sent")
    parser.add_argument("--jit", action="store_true", help="compile the model with XLA (jit_compile=True)")


def configure_compat(parser: argparse.ArgumentParser) -> None:
    """``infer_cifar -m/--modelPath MODEL -r/--reportingInterval N``, reading stdin (plus our options)."""
    configure(parser)


@contextlib.contextmanager
def _quiet_native_stderr():
    """Hide what TensorFlow's C++ side prints while it loads (oneDNN/absl notices that
    ``TF_CPP_MIN_LOG_LEVEL`` no longer silences), so a user sees our lines only; replayed on failure."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def run(args: argparse.Namespace) -> int:
    from iotbench.engines.keras_edge import KerasEdgeEngine

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not os.path.exists(args.model):  # fail before the slow TensorFlow import
        raise FileNotFoundError(f"model file not found: {args.model}")
    with _quiet_native_stderr():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    engine = KerasEdgeEngine(args.model, batch=args.batch, input_transform=args.input_transform,
                             jit_compile=args.jit)
    engine.warmup()
    print(f"Loaded trained model {engine.model}", flush=True)
    log(engine.describe())
    return run_stream_classifier(args, engine, extra={"input_transform": engine.transform})
