"""Edge runtimes (issue 14): conversion cache, precision refusals from CPU flags, calibration on
training images, ONNX Runtime / OpenVINO predictions agreeing with TensorFlow's, and the CLI flags."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fixtures.data import MODELS as OUR_MODELS
from iotbench import cpu
from iotbench.engines.edge_runtime import check_precision

# find_spec, not importorskip: importing tf2onnx loads TensorFlow at collection, and a process that has
# TensorFlow loaded crashes (SIGSEGV in triton's native library) when another test module imports torchvision.
for _module in ("onnxruntime", "openvino", "tf2onnx"):
    if importlib.util.find_spec(_module) is None:
        pytest.skip(f"{_module} is not installed (pip install -e '.[edge]')", allow_module_level=True)

pytestmark = pytest.mark.keras

AVX2_EPYC = frozenset({"sse4_2", "avx", "avx2", "fma", "f16c"})
SAPPHIRE_RAPIDS = AVX2_EPYC | {"avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16",
                               "amx_int8"}
#: Test images compared between runtimes (a few hundred: fast, and 1% is 3 images).
AGREEMENT_IMAGES = 300


# --------------------------------------------------------------------------- CPU flags, precision, gate floor


def test_cpu_flags_are_read_from_the_cpuinfo_text():
    text = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx2 fma\n\nprocessor\t: 1\nflags\t: x\n"
    assert cpu.cpu_flags.__wrapped__(text) == {"fpu", "sse", "avx2", "fma"}
    assert cpu.cpu_flags.__wrapped__("no flags here") == frozenset()


def test_bf16_is_refused_on_a_cpu_without_the_flag_with_one_line_naming_the_flags():
    reason = cpu.precision_refusal("bf16", AVX2_EPYC)
    assert reason is not None and "\n" not in reason
    assert "avx512_bf16" in reason and "amx_bf16" in reason and "fp32 or int8" in reason
    with pytest.raises(ValueError, match="bf16 needs a CPU with native bf16"):
        check_precision("openvino", "bf16", AVX2_EPYC)
    with pytest.raises(ValueError, match=r"use --precision fp32$"):
        check_precision("tf", "bf16", AVX2_EPYC)  # TensorFlow offers no int8, so the advice does not name it
    check_precision("openvino", "bf16", SAPPHIRE_RAPIDS)  # allowed where the CPU has it
    assert cpu.precision_refusal("int8", AVX2_EPYC) is None
    assert cpu.precision_refusal("fp32", frozenset()) is None


def test_a_precision_the_runtime_does_not_offer_is_refused_with_the_runtimes_that_do():
    with pytest.raises(ValueError, match="--runtime tf offers fp32, bf16, not int8; int8 runs with --runtime "
                                         "onnxruntime or openvino"):
        check_precision("tf", "int8", SAPPHIRE_RAPIDS)
    with pytest.raises(ValueError, match="onnxruntime offers fp32, int8, not bf16"):
        check_precision("onnxruntime", "bf16", SAPPHIRE_RAPIDS)


def test_the_gate_floor_follows_the_bf16_flags():
    assert cpu.gate_floor(AVX2_EPYC)[0] == cpu.FLOOR_ELSEWHERE == 1.3
    floor, why = cpu.gate_floor(SAPPHIRE_RAPIDS)
    assert floor == cpu.FLOOR_BF16_CPU == 2.5 and "amx_bf16" in why
    assert cpu.gate_floor({"avx512_bf16"})[0] == 2.5
    assert cpu.relevant_flags(SAPPHIRE_RAPIDS)[:2] == ["avx2", "fma"]


# --------------------------------------------------------------------------- conversion and its cache


@pytest.fixture(scope="module")
def edge_cache(tmp_path_factory) -> Path:
    """A private cache folder (the user's ~/.cache stays untouched), shared by this module's tests."""
    return tmp_path_factory.mktemp("iotbench-cache") / "edge"


@pytest.fixture(scope="module")
def cnn_copy(tmp_path_factory) -> Path:
    source = OUR_MODELS / "cnn.keras"
    if not source.is_file():
        pytest.skip(f"{source} is not there (yet)")
    target = tmp_path_factory.mktemp("models") / "cnn.keras"
    shutil.copy(source, target)
    shutil.copy(source.with_suffix(".json"), target.with_suffix(".json"))
    return target


def test_conversion_is_cached_by_the_models_sha256_and_the_converters_version(edge_cache, cnn_copy, capsys,
                                                                               monkeypatch, tmp_path):
    from iotbench.engines import edge_convert

    assert edge_convert.cached_onnx_file(cnn_copy, edge_cache) is None  # miss before the first use
    first = edge_convert.onnx_file(cnn_copy, edge_cache)
    assert "Converting cnn.keras to ONNX once" in capsys.readouterr().err
    assert first.parent.name.startswith(edge_convert.model_sha256(cnn_copy)[:16])
    stamp = first.stat().st_mtime_ns
    again = edge_convert.onnx_file(cnn_copy, edge_cache)  # hit: same file, not rewritten, said so
    assert again == first and again.stat().st_mtime_ns == stamp
    assert "from the cache" in capsys.readouterr().err
    other = tmp_path / "cnn.keras"  # other bytes under the same name: a miss
    other.write_bytes(cnn_copy.read_bytes() + b"\0")
    assert edge_convert.cached_onnx_file(other, edge_cache) is None
    monkeypatch.setattr(edge_convert, "tf2onnx_version", lambda: "9.9.9")  # another converter release: a miss
    assert edge_convert.cached_onnx_file(cnn_copy, edge_cache) is None


def test_a_graph_with_an_op_onnx_lacks_is_one_line_naming_the_op(tmp_path):
    import tensorflow as tf

    from iotbench.engines import edge_convert

    class Unconvertible(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, 32, 32, 3), tf.float32)])
        def serve(self, x):
            pooled = tf.nn.fractional_max_pool(x, [1.0, 1.44, 1.44, 1.0], seed=1)[0]
            return tf.reduce_mean(pooled, axis=[1, 2]) @ tf.ones((3, 10))

    module = Unconvertible()
    tf.saved_model.save(module, str(tmp_path / "sm"), signatures={"serving_default": module.serve})
    with pytest.raises(ValueError) as caught:
        edge_convert.onnx_file(tmp_path / "sm", tmp_path / "cache")
    assert str(caught.value) == "cannot convert sm to ONNX: TensorFlow ops with no ONNX conversion: FractionalMaxPool"
    assert not list((tmp_path / "cache").rglob("*.onnx")) and not list((tmp_path / "cache").rglob("*.tmp"))


# --------------------------------------------------------------------------- int8 calibration


def test_int8_calibration_reads_training_images_only(edge_cache, cnn_copy, monkeypatch):
    from iotbench.data import cifar10
    from iotbench.engines import edge_convert
    from iotbench.models import preprocess

    real_load, splits = cifar10.load, []

    def recording_load(split="test", source=None):  # the real loader, recording which split was read
        splits.append(split)
        return real_load(split, source)

    monkeypatch.setattr(cifar10, "load", recording_load)
    x, indices = edge_convert.calibration_images("unit", 300)
    assert splits == ["train"] and len(x) == 300 == len(set(indices.tolist()))
    train = real_load("train")
    np.testing.assert_array_equal(x, preprocess(train.images[indices], "unit"))
    splits.clear()
    quantized = edge_convert.ort_int8_file(edge_convert.onnx_file(cnn_copy, edge_cache), "unit", n=300)
    assert quantized.is_file() and set(splits) == {"train"}
    assert "cal300" in quantized.name  # the calibration set is part of the cache key


# --------------------------------------------------------------------------- predictions agree with TensorFlow


def agreement(runtime: str, model: Path, cache: Path, images: np.ndarray) -> float:
    from iotbench.engines.edge_runtime import make_edge_engine
    from iotbench.engines.keras_edge import KerasEdgeEngine
    from iotbench.models import preprocess

    tf_engine = KerasEdgeEngine(model, batch=64)
    engine = make_edge_engine(runtime, model, batch=64, cache=cache.parent)
    x = preprocess(images, tf_engine.transform)
    assert engine.transform == tf_engine.transform
    return float(np.mean(engine.classify(x) == tf_engine.classify(x)))


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("model", ["legacy-h5", "cnn"])
def test_fp32_predictions_match_tensorflows(runtime, model, request, edge_cache, cifar_test):
    path = request.getfixturevalue("legacy_resnet_h5" if model == "legacy-h5" else "cnn_copy")
    assert agreement(runtime, path, edge_cache, cifar_test.images[:AGREEMENT_IMAGES]) >= 0.99


def test_streamed_raw_and_float_blocks_classify_alike(legacy_resnet_h5, edge_cache, cifar_test):
    """The engine's predict() (a receiver's block: raw 0-255 or %f values) gives what classify() gives."""
    from iotbench import wire
    from iotbench.engines.openvino_edge import OpenVinoEdgeEngine
    from iotbench.models import preprocess

    engine = OpenVinoEdgeEngine(legacy_resnet_h5, batch=64, cache=edge_cache.parent)
    images, n = cifar_test.images[:100], 100
    raw = wire.Decoded(cifar_test.labels[:n].astype(np.int64), images.astype(np.float32), np.full(n, -1),
                       np.zeros(n, int), raw=True)
    x = preprocess(images, engine.transform)
    floats = wire.Decoded(raw.labels, x, raw.seq, raw.sent_ns, raw=False)
    expected = engine.classify(x)
    np.testing.assert_array_equal(engine.predict(raw), expected)
    np.testing.assert_array_equal(engine.predict(floats), expected)
    assert "openvino fp32" in engine.describe()


# --------------------------------------------------------------------------- CLI


def test_cli_takes_runtime_and_precision_with_tf_fp32_as_default():
    import argparse

    from iotbench.commands import keras

    parser = argparse.ArgumentParser()
    keras.configure_compat(parser)
    defaults = parser.parse_args(["-m", "x.h5"])
    assert (defaults.runtime, defaults.precision) == ("tf", "fp32")
    chosen = parser.parse_args(["-m", "x.h5", "--runtime", "openvino", "--precision", "int8"])
    assert (chosen.runtime, chosen.precision) == ("openvino", "int8")
    with pytest.raises(SystemExit):
        parser.parse_args(["-m", "x.h5", "--runtime", "tensorrt"])


@pytest.mark.skipif(cpu.supports_bf16(cpu.cpu_flags()), reason="this CPU has native bf16")
def test_infer_cifar_refuses_bf16_here_in_one_line(legacy_resnet_h5):
    done = subprocess.run([str(Path(sys.executable).parent / "infer_cifar"), "-m", str(legacy_resnet_h5),
                           "--runtime", "openvino", "--precision", "bf16"], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("error: bf16 needs a CPU with native bf16") and done.stderr.count("\n") == 1


def test_int8_on_tf_and_jit_on_other_runtimes_are_refused(legacy_resnet_h5):
    from iotbench.engines.edge_runtime import make_edge_engine

    with pytest.raises(ValueError, match="int8 runs with --runtime onnxruntime or openvino"):
        make_edge_engine("tf", legacy_resnet_h5, precision="int8")
    with pytest.raises(ValueError, match="--jit is TensorFlow's XLA compiler"):
        make_edge_engine("onnxruntime", legacy_resnet_h5, jit_compile=True)


def test_a_tensorflow_fp32_engine_refuses_to_run_under_bf16_math(monkeypatch):
    """``ONEDNN_DEFAULT_FPMATH_MODE=BF16`` makes TensorFlow compute in bf16: an "fp32" figure taken so would be
    mislabelled, so the engine says so in one line instead of running."""
    from iotbench.engines.keras_edge import KerasEdgeEngine

    monkeypatch.setenv("ONEDNN_DEFAULT_FPMATH_MODE", "BF16")
    with pytest.raises(ValueError, match="ONEDNN_DEFAULT_FPMATH_MODE=BF16 is set"):
        KerasEdgeEngine(OUR_MODELS / "cnn.keras", precision="fp32")
