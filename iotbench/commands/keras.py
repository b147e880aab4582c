"""Keras edge classifier: a CIFAR-10 Keras model (.keras, the original's .h5, SavedModel) on a stream.

    iotbench send -s -t 10000 -i 2000 --listen 10000 &
    iotbench infer keras -m models/resnet20.keras --connect 127.0.0.1:10000
    iotbench send -s -t 10000 --arrival max | infer_cifar -m cifar10_ResNet20v1_model_91470.h5   # the original's usage

With --batch 1 it behaves as the original did (one model.predict per image, the baseline);
the default micro-batches up to 64 images, closing a batch after --max-wait-ms so that
latency stays bounded when the stream is slow.  infer_cifar keeps the original's flags
and reads stdin as the original did, with the same micro-batching default: its final line
is the original's, only reached an order of magnitude sooner (--batch 1 restores the
original's speed exactly).  ResNet models expect the sender's -s (mean subtracted); a %f
stream on the other scale is warned about (an error with --strict-input).

--runtime onnxruntime|openvino runs the same model converted once (cached by its sha256),
--precision int8 a version calibrated on training images, bf16 where the CPU has native
bf16 (refused in one line elsewhere); the default stays TensorFlow fp32, the original's figures.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile

from iotbench.commands.receive import add_receiver_arguments, run_stream_classifier
from iotbench.cpu import PRECISIONS
from iotbench.engines.edge_runtime import RUNTIMES, check_precision
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
    parser.add_argument("--runtime", choices=RUNTIMES, default="tf",
                        help="what runs the model: TensorFlow (default, the original's), or the model converted "
                             "to ONNX once (cached under $IOTBENCH_CACHE or ~/.cache/iotbench) for ONNX Runtime "
                             "or OpenVINO")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="fp32 (default); int8: post-training quantization calibrated on training images "
                             "(onnxruntime, openvino); bf16: needs a CPU with avx512_bf16 or amx_bf16")


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
    from iotbench.engines.edge_runtime import make_edge_engine
    from iotbench.engines.keras_edge import use_bf16_math

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not os.path.exists(args.model):  # fail before the slow TensorFlow import
        raise FileNotFoundError(f"model file not found: {args.model}")
    check_precision(args.runtime, args.precision)  # a refused precision is one line, before any import
    if args.runtime == "tf" and args.precision == "bf16":
        use_bf16_math(args.precision)  # oneDNN reads it when TensorFlow loads
    if args.runtime == "tf" or not _cached_conversion(args.model):
        with _quiet_native_stderr():  # TensorFlow runs the model, or converts it once
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
    engine = make_edge_engine(args.runtime, args.model, batch=args.batch, precision=args.precision,
                              input_transform=args.input_transform, jit_compile=args.jit)
    engine.warmup()
    print(f"Loaded trained model {engine.model}", flush=True)
    log(engine.describe())
    return run_stream_classifier(args, engine, extra={"input_transform": engine.transform, "runtime": args.runtime,
                                                      "precision": args.precision})


def _cached_conversion(model: str) -> bool:
    """Whether the model's ONNX file is in the cache already (then TensorFlow need not even be imported)."""
    from pathlib import Path

    from iotbench.engines import edge_convert

    return edge_convert.cached_onnx_file(Path(model)) is not None
