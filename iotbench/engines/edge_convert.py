"""Model conversion for the edge runtimes, done once and cached: Keras → ONNX, and int8 by calibration.

Converting a model costs seconds to a minute (TensorFlow import, tracing, tf2onnx's graph
rewrites; calibrating an int8 model runs hundreds of images through it), far more than a
short stream, so each artefact is made once and kept in a cache folder
(``$IOTBENCH_CACHE`` or ``~/.cache/iotbench``, under ``edge/``).  The key is the model file's
sha256 plus the converter's version and settings: the same bytes converted by the same tool
give the same file, and a new tf2onnx / ONNX Runtime / NNCF release converts afresh instead of
reusing a file it did not make.

Conversion: Keras 3's ``model.export(format="onnx")`` fails on the original's h5 (inside
autograph); what works is ``tf2onnx.convert.from_function`` on a ``tf.function`` wrapping the
loaded model (defined here, in a module file, because autograph wants its source), opset 17.

int8: post-training static quantization with the runtimes' own maintained tools — ONNX
Runtime's ``quantize_static`` (QDQ, per-channel weights) and NNCF for OpenVINO — calibrated on
CIFAR-10 **training** images only (a seeded sample), so the test set that scores the model never
tunes its scales.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from iotbench.report import log
from iotbench.wire import IMAGE_SHAPE

OPSET = 17
#: Training images the int8 scales are calibrated on (MLPerf's calibration sets are 500-1,000 images).
CALIBRATION_IMAGES = 500
CALIBRATION_SEED = 0
CALIBRATION_BATCH = 50


def cache_root() -> Path:
    """``$IOTBENCH_CACHE/edge`` or ``~/.cache/iotbench/edge``."""
    base = os.environ.get("IOTBENCH_CACHE") or Path.home() / ".cache" / "iotbench"
    return Path(base) / "edge"


def model_sha256(path: Path) -> str:
    """sha256 of a model file (of every file, in sorted order, for a SavedModel folder)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def model_dir(path: Path, cache: Path | None = None) -> Path:
    """The cache folder of one model's artefacts: ``<sha256[:16]>-<file name>``."""
    return (cache or cache_root()) / f"{model_sha256(path)[:16]}-{re.sub(r'[^A-Za-z0-9._-]', '_', path.name)}"


def _first_line(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__


def _publish(tmp: Path, final: Path) -> Path:
    """Move a finished artefact into place atomically (a killed conversion leaves no half file)."""
    os.replace(tmp, final)
    return final


# --------------------------------------------------------------------------- Keras -> ONNX


def tf2onnx_version() -> str:
    """Read from the package metadata: importing tf2onnx imports TensorFlow (seconds), not needed on a cache hit."""
    from importlib.metadata import version

    return version("tf2onnx")


def onnx_target(path: Path, cache: Path | None = None) -> Path:
    """Where the model's ONNX file lives in the cache: its sha256, tf2onnx's version, the opset."""
    return model_dir(path, cache) / f"tf2onnx-{tf2onnx_version()}-opset{OPSET}.onnx"


def cached_onnx_file(path: Path, cache: Path | None = None) -> Path | None:
    """The cached ONNX file of ``path``, or None when it has not been converted yet (a cache miss)."""
    target = onnx_target(Path(path), cache)
    return target if target.is_file() else None


def onnx_file(path: Path, cache: Path | None = None) -> Path:
    """The model as ONNX (fp32), converted on first use; later calls return the cached file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"model file not found: {path}")
    target = onnx_target(path, cache)
    if target.is_file():
        log(f"ONNX model of {path.name} from the cache: {target}")
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"Converting {path.name} to ONNX once (tf2onnx {tf2onnx_version()}, opset {OPSET}) into {target.parent}")
    start = time.perf_counter()
    tmp = target.with_suffix(".tmp")
    try:
        _convert_keras_to_onnx(path, tmp)
    except (FileNotFoundError, ValueError):
        tmp.unlink(missing_ok=True)
        raise
    except Exception as err:  # tf2onnx raises many kinds: all mean "this graph cannot be converted"
        tmp.unlink(missing_ok=True)
        raise ValueError(f"cannot convert {path.name} to ONNX: {_first_line(err)}") from None
    log(f"Converted {path.name} to ONNX in {time.perf_counter() - start:.1f} s ({tmp.stat().st_size / 1e6:.1f} MB)")
    return _publish(tmp, target)


def _convert_keras_to_onnx(path: Path, output: Path) -> None:
    import logging

    import onnx
    import tensorflow as tf
    import tf2onnx

    from iotbench.engines.keras_edge import load_model

    logging.getLogger("tf2onnx").setLevel(logging.CRITICAL)  # its errors become our one line
    _, call = load_model(path)
    spec = (tf.TensorSpec((None, *IMAGE_SHAPE), tf.float32, name="images"),)

    @tf.function(input_signature=spec)
    def scores(images):
        return call(images)

    model_proto, _ = tf2onnx.convert.from_function(scores, input_signature=spec, opset=OPSET)
    # tf2onnx only logs an op it cannot convert and leaves it in the graph under its TensorFlow name
    unsupported = sorted({node.op_type for node in model_proto.graph.node
                          if node.domain != "com.microsoft" and not onnx.defs.has(node.op_type, node.domain)})
    if unsupported:
        raise ValueError(f"cannot convert {path.name} to ONNX: TensorFlow ops with no ONNX conversion: "
                         f"{', '.join(unsupported)}")
    output.write_bytes(model_proto.SerializeToString())


# --------------------------------------------------------------------------- calibration (training images)


def calibration_images(transform: str, n: int = CALIBRATION_IMAGES, seed: int = CALIBRATION_SEED,
                       train=None) -> tuple[np.ndarray, np.ndarray]:
    """``(model-ready images, their indices in the training split)``: a seeded sample of ``n`` training images.

    Only the training split is read: scales tuned on test images would flatter the accuracy
    that the test set then measures.
    """
    from iotbench.data import cifar10
    from iotbench.models import preprocess

    train = train if train is not None else cifar10.load("train")
    indices = np.sort(np.random.default_rng(seed).choice(len(train), size=min(n, len(train)), replace=False))
    return preprocess(train.images[indices], transform), indices


def _calibration_batches(x: np.ndarray) -> list[np.ndarray]:
    return [x[i:i + CALIBRATION_BATCH] for i in range(0, len(x), CALIBRATION_BATCH)]


def ort_int8_file(fp32: Path, transform: str, n: int = CALIBRATION_IMAGES, reduce_range: bool | None = None) -> Path:
    """ONNX Runtime static int8 (QDQ, per-channel int8 weights, uint8 activations) of ``fp32``, cached beside it.

    ``reduce_range`` (7-bit weights) defaults to on for CPUs without VNNI: ONNX Runtime's AVX2
    u8×s8 kernel (``VPMADDUBSW``) saturates its 16-bit sums with full-range weights, which cost
    the original's ResNet20 1.3 points here (89.9% vs 91.15% on 2,000 images; 91.4% with it).
    """
    import onnxruntime
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from iotbench import cpu

    if reduce_range is None:
        reduce_range = not any(flag in cpu.cpu_flags() for flag in cpu.INT8_FLAGS)
    suffix = "-rr" if reduce_range else ""
    target = fp32.with_name(f"{fp32.stem}-ort{onnxruntime.__version__}-int8{suffix}-cal{n}s{CALIBRATION_SEED}.onnx")
    if target.is_file():
        log(f"int8 ONNX model from the cache: {target}")
        return target
    x, _ = calibration_images(transform, n)
    log(f"Quantizing to int8 with ONNX Runtime {onnxruntime.__version__} (static, calibrated on {len(x)} "
        f"training images), once")
    start = time.perf_counter()

    class Reader(CalibrationDataReader):
        def __init__(self):
            self._batches = iter(_calibration_batches(x))

        def get_next(self):
            batch = next(self._batches, None)
            return None if batch is None else {"images": batch}

    tmp = target.with_suffix(".tmp")
    try:
        quantize_static(fp32, tmp, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        reduce_range=reduce_range, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    except Exception as err:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"cannot quantize {fp32.name} to int8: {_first_line(err)}") from None
    log(f"Quantized in {time.perf_counter() - start:.1f} s")
    return _publish(tmp, target)


def openvino_int8_file(fp32: Path, transform: str, n: int = CALIBRATION_IMAGES) -> Path:
    """OpenVINO IR (.xml + .bin) quantized to int8 by NNCF from ``fp32`` (ONNX), cached beside it."""
    import nncf
    import openvino as ov

    ov_version = ov.get_version().split("-")[0]
    target = fp32.with_name(f"{fp32.stem}-ov{ov_version}-nncf{nncf.__version__}-int8-cal{n}s{CALIBRATION_SEED}.xml")
    if target.is_file() and target.with_suffix(".bin").is_file():
        log(f"int8 OpenVINO model from the cache: {target}")
        return target
    x, _ = calibration_images(transform, n)
    log(f"Quantizing to int8 with NNCF {nncf.__version__} (calibrated on {len(x)} training images), once")
    start = time.perf_counter()
    tmp = target.with_name(target.stem + ".tmp.xml")
    try:
        model = ov.Core().read_model(fp32)
        batches = _calibration_batches(x)
        with contextlib.redirect_stdout(sys.stderr):  # NNCF's progress bars: stdout may be the results
            quantized = nncf.quantize(model, nncf.Dataset(batches), subset_size=len(batches))
        ov.save_model(quantized, tmp, compress_to_fp16=False)
    except Exception as err:
        tmp.unlink(missing_ok=True)
        tmp.with_suffix(".bin").unlink(missing_ok=True)
        raise ValueError(f"cannot quantize {fp32.name} to int8 with NNCF: {_first_line(err)}") from None
    log(f"Quantized in {time.perf_counter() - start:.1f} s")
    os.replace(tmp.with_suffix(".bin"), target.with_suffix(".bin"))
    return _publish(tmp, target)
