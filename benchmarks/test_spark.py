"""Spark paths: engine (bigdl, native) × path (max, stream) × master (local[2], local standalone cluster).

- ``max``: the in-memory CIFAR-10 test subset classified over and over for ``--duration`` seconds
  (as ``infer_cifar_max``); the round is one whole run (prepare + warm-up + timed loop), the
  steady-state figure is ``extra_info["images_per_sec"]``.
- ``stream``: the real sender subprocess (``iotbench send --listen 0 --format %d --v2 --arrival
  max``) → socket → Spark Structured Streaming (1 s trigger) → per-interval accounting;
  ``extra_info`` has per-interval counts, sent/rejected/lost.  Both engines use Structured
  Streaming here: its socket source reads on the driver, while a DStream receiver holds one of
  local[2]'s two task slots for the whole run (BigDL, 10,000 images: ≈630 img/s on DStreams,
  ≈800 on Structured Streaming).  ``test_spark_dstream`` runs the original's API (slow).

Gates, all on figures from the same run:
- accuracy ≥ the model card's (the JSON sidecar) minus 0.5 point, minus three binomial standard
  deviations on a subset;
- native max ≥ 0.8 × the single-process Keras batched ceiling on the same model, images and cores
  (measured in the same test, just before); asserted with ``--full`` (at CI sizes it is recorded only);
- ``test_spark_native_runtime[MODEL-RUNTIME-PRECISION]``: the native engine with the model in ONNX Runtime or
  OpenVINO (``--runtime``), native max ≥ 0.8 × the same runtime's in-process ceiling on all test images
  (``of_runtime_ceiling``, same run; asserted with ``--full`` only, as above); accuracy at the model card's
  floor for fp32, ≥ 99% of the same runtime's fp32 accuracy on the same images for int8 (MLPerf's rule);
- BigDL max vs the issue's 870 img/s baseline: an absolute figure on a shared machine, so it is
  recorded (``target_images_per_sec``, ``meets_target``), not asserted;
- stream: ``sent = classified + rejected + lost`` with lost = 0; the issue's 1,000 img/s in local[2]
  is recorded (``target_images_per_sec``, ``meets_target``), as BigDL's max target is.

CI runs the two local max cases at small sizes (2,000 images, 5 s); the stream cases (whose accounting
``tests/test_spark.py`` checks in CI) and the standalone cluster cases are ``slow``.
``--full`` runs the whole test set for 60 s.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.bench import assert_ratio
from fixtures.sender import start_sender
from fixtures.spark import models_dir
from iotbench import metrics
from iotbench.report import extra_info
from iotbench.summary import Summary

pytestmark = pytest.mark.spark

BIGDL_BASELINE = 870.0  # img/s, issue 4: a Keras-API CNN, 10,000 images, local[2], per-image Samples
BIGDL_TARGET = 1.5 * BIGDL_BASELINE
#: BigDL's engine type in the in-process BigDL cases: its default MKL-BLAS engine (the engine is fixed per JVM, and
#: this session's JVM is shared).  ``test_spark_bigdl_max_engine`` runs the max path under MKL-DNN in a JVM of its own;
#: MKL-DNN does not run the ResNet20 twin (its stride-2 "same" convolutions, docs/bigdl.md).
BIGDL_ENGINE = "mklblas"
#: BigDL ÷ TensorFlow on the same CNN, images and cores (issue 16's goal for the max path), asserted with --full.
MIN_BIGDL_MAX_OF_KERAS = 0.7
#: BigDL's twin predicts what the Keras model predicts (100% agreement, models/MODELS.md): any engine's accuracy is
#: the Keras call's on the same images within this (the issue's "identical within 0.1 point").
ENGINE_ACCURACY_TOLERANCE = 0.001
MIN_NATIVE_OF_CEILING = 0.8
MIN_NATIVE_OF_RUNTIME_CEILING = 0.8
KEEP_OF_FP32 = 0.99  # MLPerf's accuracy rule for a reduced precision
RUNTIME_CEILING_S = 10.0  # whole passes over the test set for at least this long (one pass at least)
STREAM_TARGET = 1000.0  # img/s, issue 4: %d text at max rate, local[2]
STREAM_INTERVAL_S = 1.0  # the first batch waits up to one trigger interval, which counts against throughput


def card_accuracy(model_file: Path) -> float | None:
    """``test_accuracy`` from the model's JSON sidecar (its card), if any."""
    path = Path(model_file)
    sidecar = path.with_name(path.name.split(".")[0] + ".json")
    return json.loads(sidecar.read_text()).get("test_accuracy") if sidecar.is_file() else None


def accuracy_floor(card: float, images: int) -> float:
    floor = card - 0.005
    if images < 10_000:
        floor -= 3 * math.sqrt(card * (1 - card) / images)
    return floor


def assert_card_accuracy(model_file: Path, accuracy: float, images: int) -> None:
    """Accuracy within the model card's floor (no assertion for a model without a card)."""
    card = card_accuracy(model_file)
    if card is not None:
        assert accuracy >= accuracy_floor(card, images), (accuracy, card, images)


def make_engine(kind: str, path: str, keras_model: Path, request):
    from iotbench.engines.registry import create
    from iotbench.engines.spark_models import BigDLClassifier, KerasUDFClassifier

    if kind == "bigdl":
        defs, weights = request.getfixturevalue("bigdl_cnn_model")
        classifier = BigDLClassifier(defs, weights)
        model_file = defs
    else:
        classifier = KerasUDFClassifier(keras_model)
        model_file = keras_model
    return create(f"spark-{kind}-{path}", classifier), model_file


def run_max_case(benchmark, engine, sc, images, labels, sizes, keras_model) -> dict:
    from iotbench.engines.spark_max import keras_ceiling, run_max

    # Both engines run the same CNN (BigDL's is converted from the Keras file): the Keras call on the same
    # images and cores, just before, is what each is compared with (BigDL ÷ TensorFlow: of_keras_ceiling).
    ceiling = keras_ceiling(keras_model, images, labels, sizes.duration)
    more: dict = {"keras_ceiling_images_per_sec": ceiling["images_per_sec"]}
    results = []
    benchmark.pedantic(lambda: results.append(run_max(engine, sc, images, labels, sizes.duration)),
                       rounds=1, iterations=1)
    summary = results[-1].summary()
    if engine.name == "native":
        more["of_ceiling"] = round(summary["images_per_sec"] / more["keras_ceiling_images_per_sec"], 3)
    else:
        more["of_keras_ceiling"] = round(summary["images_per_sec"] / more["keras_ceiling_images_per_sec"], 3)
        more["bigdl_engine"] = BIGDL_ENGINE
        more["target_images_per_sec"] = BIGDL_TARGET
        more["meets_target"] = summary["images_per_sec"] >= BIGDL_TARGET
    more.update(iterations=summary["iterations"], images_per_iteration=summary["images_per_iteration"])
    benchmark.extra_info.update(Summary.from_spark_max(results[-1], runtime=engine.runtime,
                                                       precision=engine.precision, **more).extra_info())
    return summary


def stream_from(sender, port: int, engine, sc, api: str = "structured") -> tuple[dict, dict | None]:
    """Run the stream path against a started sender: (summary, the sender's result, None if it could not finish).

    A sender that could not finish (the stream ended while it was still blocked sending) is marked in the
    summary as ``sender_finished = False``.
    """
    from iotbench.engines.spark_stream import StreamConfig, run_stream

    config = StreamConfig(port=port, interval=STREAM_INTERVAL_S, api=api, empty_intervals=2, first_data_timeout=180)
    sent = None
    try:
        summary = run_stream(engine, sc, config).summary()
        try:
            sent = sender.wait(60)
        except subprocess.TimeoutExpired:
            summary["sender_finished"] = False
    finally:
        sender.stop()
    return summary, sent


def run_stream_case(benchmark, engine, sc, images: int, api: str = "structured") -> dict:
    state: dict = {}

    def setup():
        state["sender"] = start_sender("-t", str(images), "--format", "%d", "--v2", "--arrival", "max")
        state["port"] = state["sender"].wait_listening()
        return (), {}

    def one_round():
        state["summary"], state["sent"] = stream_from(state["sender"], state["port"], engine, sc, api)

    benchmark.pedantic(one_round, setup=setup, rounds=1, iterations=1)
    s = state["summary"]
    benchmark.extra_info.update(extra_info(
        s, engine=engine.name, model=engine.model, batch=engine.batch, wire="v2%d", path="stream",
        master=sc.master, runtime=engine.runtime, precision=engine.precision, api=s["api"], sent=s["sent"],
        interval_s=s["interval_s"], intervals=s["intervals"],
        per_interval_received=s["per_interval_received"], per_interval_correct=s["per_interval_correct"],
        empty_tail_s=s["empty_tail_s"], sender_rate=(state["sent"] or {}).get("rate"),
        target_images_per_sec=STREAM_TARGET, meets_target=s["images_per_sec"] >= STREAM_TARGET,
        **({"bigdl_engine": BIGDL_ENGINE} if engine.name == "bigdl" else {}),
    ))
    return s


@pytest.mark.parametrize("master", ["local", pytest.param("standalone", marks=pytest.mark.slow)])
@pytest.mark.parametrize("path", ["max", pytest.param("stream", marks=pytest.mark.slow)])
@pytest.mark.parametrize("engine_kind", ["bigdl", "native"])
def test_spark(benchmark, spark_on, sizes, cifar_test, keras_cnn_model, request, engine_kind, path, master):
    sc, _ = spark_on(master)
    engine, model_file = make_engine(engine_kind, path, keras_cnn_model, request)
    images = min(sizes.images, len(cifar_test))
    if path == "max":
        summary = run_max_case(benchmark, engine, sc, cifar_test.images[:images], cifar_test.labels[:images], sizes,
                               keras_cnn_model)
    else:
        summary = run_stream_case(benchmark, engine, sc, sizes.images)
        assert_stream_accounting(summary, sizes.images)
    assert_card_accuracy(model_file, summary["accuracy"], summary["classified"] if path == "stream" else images)
    if path == "max" and engine_kind == "native" and sizes.full:
        # At CI sizes (2,000 images, 5 s: one or two iterations) start-up noise dominates: recorded, not gated.
        assert benchmark.extra_info["of_ceiling"] >= MIN_NATIVE_OF_CEILING, benchmark.extra_info


@pytest.mark.parametrize("bigdl_engine", ["mkldnn"])
def test_spark_bigdl_max_engine(benchmark, sizes, cifar_test, keras_cnn_model, bigdl_cnn_model, tmp_path,
                                bigdl_engine):
    """BigDL max under another engine than the session's (fixed per JVM): ``iotbench infer spark-max --bigdl-engine``
    in a process and JVM of its own, local[2], against the Keras ceiling on the same CNN, images and cores, measured
    in this process just before (``of_keras_ceiling``); the engine recorded is the one the JVM reported running."""
    from iotbench.engines.spark_max import keras_ceiling

    defs, weights = bigdl_cnn_model
    n = min(sizes.images, len(cifar_test))
    ceiling = keras_ceiling(keras_cnn_model, cifar_test.images[:n], cifar_test.labels[:n], sizes.duration)
    out = tmp_path / "max.json"
    cmd = [sys.executable, "-m", "iotbench", "infer", "spark-max", "--engine", "bigdl", "--bigdl-engine", bigdl_engine,
           "-md", str(defs), "-mw", str(weights), "--images", str(n), "--duration", str(sizes.duration),
           "--json", str(out)]
    runs = []
    benchmark.pedantic(lambda: runs.append(subprocess.run(cmd, capture_output=True, text=True, timeout=900)),
                       rounds=1, iterations=1)
    proc = runs[-1]
    assert proc.returncode == 0, (proc.stdout[-2000:], proc.stderr[-2000:])
    s = json.loads(out.read_text())
    assert s["bigdl_engine"] == bigdl_engine and s["classified"] > 0
    ratio = s["images_per_sec"] / ceiling["images_per_sec"]
    benchmark.extra_info.update(extra_info(
        s, engine="bigdl", model=s["model"], batch=s["batch"], wire="memory", path="max", master=s["master"],
        runtime="bigdl", precision="fp32", bigdl_engine=s["bigdl_engine"],
        keras_ceiling_images_per_sec=ceiling["images_per_sec"], keras_ceiling_accuracy=round(ceiling["accuracy"], 4),
        of_keras_ceiling=round(ratio, 3), iterations=s["iterations"], images_per_iteration=s["images_per_iteration"],
        target_images_per_sec=BIGDL_TARGET, meets_target=s["images_per_sec"] >= BIGDL_TARGET))
    assert abs(s["accuracy"] - ceiling["accuracy"]) <= ENGINE_ACCURACY_TOLERANCE, (s["accuracy"], ceiling["accuracy"])
    if sizes.full:  # at CI sizes start-up noise dominates (one or two iterations): recorded, not gated
        assert_ratio(benchmark, "of_keras_ceiling", ratio, MIN_BIGDL_MAX_OF_KERAS)


RUNTIME_CASES = [
    pytest.param("cnn", "onnxruntime", "fp32", id="cnn-onnxruntime-fp32"),
    pytest.param("resnet20", "onnxruntime", "fp32", id="resnet20-onnxruntime-fp32", marks=pytest.mark.slow),
    pytest.param("cnn", "openvino", "fp32", id="cnn-openvino-fp32", marks=pytest.mark.slow),
    pytest.param("resnet20", "openvino", "int8", id="resnet20-openvino-int8", marks=pytest.mark.slow),
    pytest.param("resnet20", "onnxruntime", "int8", id="resnet20-onnxruntime-int8", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("model,runtime,precision", RUNTIME_CASES)
def test_spark_native_runtime(benchmark, spark_on, sizes, cifar_test, model, runtime, precision):
    """Native max with the model in ``runtime`` ÷ the same runtime's in-process ceiling, both in this run.

    The ceiling is the edge engine of the same runtime and precision (the same converted file) in this
    process on all test images, measured just before the Spark loop on the same cores.
    """
    from iotbench.engines.spark_max import NativeMax, run_max, runtime_ceiling
    from iotbench.engines.spark_models import KerasUDFClassifier

    pytest.importorskip(runtime)
    path = models_dir() / f"{model}.keras"
    if not path.is_file():
        pytest.skip(f"model file {path} is not there (yet)")
    try:
        classifier = KerasUDFClassifier(path, runtime=runtime, precision=precision)
    except ValueError as err:  # a precision this CPU cannot run: its one-line refusal
        pytest.skip(str(err))
    classifier.convert()
    sc, _ = spark_on("local")
    n = min(sizes.images, len(cifar_test))
    images, labels = cifar_test.images[:n], cifar_test.labels[:n]
    ceiling = runtime_ceiling(runtime, path, cifar_test.images, cifar_test.labels, RUNTIME_CEILING_S,
                              batch=classifier.batch, precision=precision)
    engine = NativeMax(classifier)
    results = []
    benchmark.pedantic(lambda: results.append(run_max(engine, sc, images, labels, sizes.duration)),
                       rounds=1, iterations=1)
    summary = results[-1].summary()
    ratio = summary["images_per_sec"] / ceiling["images_per_sec"]
    more = {"runtime_ceiling_images_per_sec": ceiling["images_per_sec"], "runtime_ceiling_accuracy":
            round(ceiling["accuracy"], 4), "runtime_ceiling_images": len(cifar_test),
            "of_runtime_ceiling": round(ratio, 3), "iterations": summary["iterations"],
            "images_per_iteration": summary["images_per_iteration"]}
    if precision == "fp32":
        assert_card_accuracy(path, summary["accuracy"], n)
        assert_card_accuracy(path, ceiling["accuracy"], len(cifar_test))
    else:
        # the same runtime at fp32, one pass each: on all test images (the ceiling's) and on the max path's
        fp32 = runtime_ceiling(runtime, path, cifar_test.images, cifar_test.labels, 0, batch=classifier.batch)
        subset = runtime_ceiling(runtime, path, images, labels, 0, batch=classifier.batch)
        more["fp32_accuracy"] = round(fp32["accuracy"], 4)
        assert summary["accuracy"] >= KEEP_OF_FP32 * subset["accuracy"], (summary["accuracy"], subset["accuracy"])
        assert ceiling["accuracy"] >= KEEP_OF_FP32 * fp32["accuracy"], (ceiling["accuracy"], fp32["accuracy"])
    benchmark.extra_info.update(extra_info(summary, engine=engine.name, model=engine.model, batch=engine.batch,
                                           wire="memory", path="max", master=sc.master, runtime=runtime,
                                           precision=precision, **more))
    if sizes.full:  # at CI sizes start-up noise dominates (one or two iterations): recorded, not gated
        assert_ratio(benchmark, "of_runtime_ceiling", ratio, MIN_NATIVE_OF_RUNTIME_CEILING)


def assert_stream_accounting(summary: dict, images: int) -> None:
    assert summary["sent"] == images
    assert summary["classified"] + summary["rejected"] + summary["lost"] == summary["sent"]
    assert summary["lost"] == 0
    # the identity through the function every receiver's exit status comes from
    assert metrics.exit_status(summary) == (metrics.EXIT_OK, None)


@pytest.mark.slow
@pytest.mark.parametrize("engine_kind", ["bigdl", "native"])
def test_spark_dstream(benchmark, spark_on, sizes, keras_cnn_model, request, engine_kind):
    """The original's streaming API (``socketTextStream``) in local[2]: its receiver holds one task slot."""
    sc, _ = spark_on("local")
    engine, model_file = make_engine(engine_kind, "stream", keras_cnn_model, request)
    summary = run_stream_case(benchmark, engine, sc, sizes.images, api="dstream")
    assert_stream_accounting(summary, sizes.images)
    assert_card_accuracy(model_file, summary["accuracy"], summary["classified"])


SUSTAIN_SECONDS = 10.0  # per step of the rate search


def images_at(rate: float) -> int:
    return int(rate * SUSTAIN_SECONDS)


@pytest.mark.slow
@pytest.mark.parametrize("engine_kind", ["bigdl", "native"])
def test_spark_sustained_rate(benchmark, spark_on, keras_cnn_model, request, capsys, engine_kind):
    """The highest ``%d`` rate the stream path keeps up with in local[2], found by stepping the sender's rate.

    Each step streams ``rate × 10 s`` images at a constant rate through Structured Streaming (1 s
    trigger); a step kept up when everything is accounted for, nothing is lost and latency did not
    grow by more than one trigger interval over the run (the growth rule of :func:`iotbench.capacity.verdict`).
    ``offered_images_per_sec`` (and ``sustained_rate``) is the highest rate that kept up, ``images_per_sec``
    the rate measured at that step (see :func:`iotbench.capacity.result`); every step is in
    ``extra_info["steps"]``.
    """
    from iotbench import capacity

    sc, _ = spark_on("local")
    engine, model_file = make_engine(engine_kind, "stream", keras_cnn_model, request)

    def run_at(rate: float) -> dict:
        sender = start_sender("-t", str(images_at(rate)), "-i", f"{rate:g}", "--arrival", "constant",
                              "--format", "%d", "--v2")
        return stream_from(sender, sender.wait_listening(), engine, sc)[0]

    def progress(step) -> None:  # a search runs for minutes: one line per step, even under captured output
        with capsys.disabled():
            print(f"\n  {engine.name} at {step.rate:g} img/s: {'kept up' if step.kept_up else 'fell behind'}, "
                  f"latency growth {step.summary.get('latency_growth_ms')} ms", flush=True)

    steps: list = []
    def judge(summary: dict, offered: float) -> capacity.Verdict:  # accounted, nothing lost, no growing backlog
        return capacity.verdict(summary, offered, None, growth_tolerance_ms=STREAM_INTERVAL_S * 1000, min_achieved=0)

    benchmark.pedantic(lambda: steps.extend(capacity.search(
        run_at, 250, judge, factor=1.5, resolution=0, max_rate=50_000, max_steps=10**6, max_bisections=2,
        on_step=progress)), rounds=1, iterations=1)
    summary = {k: v for k, v in capacity.result(steps, None).items() if k != "steps"}
    best = summary["sustained_rate"]
    benchmark.extra_info.update(extra_info(
        summary, engine=engine.name, model=engine.model, batch=engine.batch, wire="v2%d", path="stream",
        master=sc.master, api="structured", interval_s=STREAM_INTERVAL_S,
        offered_images_per_sec=summary["offered_images_per_sec"], sustained_rate=best,
        steps=[s.brief() for s in steps],
        target_images_per_sec=STREAM_TARGET, meets_target=best is not None and best >= STREAM_TARGET,
        **({"bigdl_engine": BIGDL_ENGINE} if engine.name == "bigdl" else {}),
    ))
    for step in steps:  # whatever the rate, a step whose sender finished accounts for every image
        if step.summary.get("sender_finished") is not False:
            assert_stream_accounting(step.summary, images_at(step.rate))
    assert best is not None, [s.brief() for s in steps]
    assert_card_accuracy(model_file, summary["accuracy"], summary["classified"])
