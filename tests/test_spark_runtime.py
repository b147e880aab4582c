"""The Spark-native engine with ``--runtime`` / ``--precision``: the model converted on the driver, run in the workers.

``iotbench infer spark-max --engine native --runtime onnxruntime`` classifies a few hundred test images at the
model card's accuracy (the same predictions as TensorFlow's, within the card's floor), the converted file is
shipped to the executors when asked (as for a cluster) and found there, and a precision this CPU cannot run,
or a runtime given to the BigDL engine, is refused in one line before Spark starts.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from iotbench import cpu

pytestmark = pytest.mark.spark

IMAGES = 400


def card_floor(card: float, images: int) -> float:
    """The card's accuracy minus 1 point and three binomial standard deviations on ``images`` images."""
    return card - 0.01 - 3 * math.sqrt(card * (1 - card) / images)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    return lines[0]


def test_spark_max_native_onnxruntime_classifies_at_the_cards_accuracy(keras_cnn_model, tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("pyspark")
    out = tmp_path / "run.json"
    proc = subprocess.run([sys.executable, "-m", "iotbench", "infer", "spark-max", "--engine", "native",
                           "--runtime", "onnxruntime", "-m", str(keras_cnn_model), "--images", str(IMAGES),
                           "-d", "0", "--json", str(out)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = json.loads(out.read_text())
    assert (s["engine"], s["runtime"], s["precision"]) == ("native", "onnxruntime", "fp32")
    assert s["classified"] == IMAGES and s["iterations"] >= 1
    card = json.loads(keras_cnn_model.with_suffix(".json").read_text())["test_accuracy"]
    assert s["accuracy"] >= card_floor(card, IMAGES), (s["accuracy"], card)
    assert "(onnxruntime fp32)" in proc.stdout  # the summary line says what ran the model


def test_converted_files_shipped_to_the_executors_give_the_same_classes(spark, keras_cnn_model, cifar_test):
    """``ship_files``: the converted file travels with addFile and each executor lays out a cache of its own
    (what a cluster needs), with the same predictions as the workers reading the driver's cache."""
    pytest.importorskip("onnxruntime")
    from iotbench.engines.spark_max import NativeMax, run_max
    from iotbench.engines.spark_models import KerasUDFClassifier

    images, labels = cifar_test.images[:IMAGES], cifar_test.labels[:IMAGES]
    correct = {}
    for ship in (False, True):
        classifier = KerasUDFClassifier(keras_cnn_model, runtime="onnxruntime", ship_files=ship)
        result = run_max(NativeMax(classifier), spark, images, labels, duration=0, warmup=0)
        assert result.images == IMAGES and result.summary()["runtime"] == "onnxruntime"
        assert bool(classifier.worker.shipped) == ship and (classifier.worker.cache is None) == ship
        correct[ship] = result.correct
    assert correct[True] == correct[False]


@pytest.mark.skipif(cpu.supports_bf16(cpu.cpu_flags()), reason="this CPU runs bf16 natively")
@pytest.mark.parametrize("path", ["spark-max", "spark-stream"])
def test_bf16_is_refused_in_one_line_on_a_cpu_without_native_bf16(path):
    proc = subprocess.run([sys.executable, "-m", "iotbench", "infer", path, "--engine", "native",
                           "--runtime", "openvino", "--precision", "bf16"], capture_output=True, text=True,
                          timeout=120)
    line = one_line_error(proc)
    assert "bf16" in line and "avx512_bf16" in line


@pytest.mark.parametrize("argv,says", [
    (["--runtime", "onnxruntime"], "--engine native"),  # BigDL runs its own model
    (["--engine", "native", "--runtime", "onnxruntime", "--precision", "bf16"], "bf16"),
    (["--engine", "native", "--runtime", "tf", "--precision", "int8"], "--runtime tf offers"),
])
def test_runtime_options_that_cannot_apply_are_refused_before_spark_starts(argv, says):
    if "bf16" in argv and cpu.supports_bf16(cpu.cpu_flags()):
        says = "--runtime onnxruntime offers"  # a bf16 CPU: ONNX Runtime still has no bf16 here
    proc = subprocess.run([sys.executable, "-m", "iotbench", "infer", "spark-max", *argv], capture_output=True,
                          text=True, timeout=120)
    assert says in one_line_error(proc)
