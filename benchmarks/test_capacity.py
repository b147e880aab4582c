"""Capacity at a p99 bound for every streaming path (issue 15): "capacity = R images/s at p99 ≤ B ms".

Each case runs :func:`iotbench.capacity.search`: the real sender subprocess streams Poisson arrivals
at an offered rate, the path classifies them, and the step kept up when the books close with nothing
lost, the measured rate is ≥ 0.8 × the offered one and p99 ≤ the bound.  The rate doubles while it
keeps up, then bisects to the stated resolution.  Bounds: 100 ms on the edge path (Keras ResNet20
of the original, binary frames, micro-batches of 64 closed after 20 ms), five trigger intervals on
the Spark paths (Structured Streaming, 1 s trigger, ``local[2]``) and on the Scala stream (Spark
Streaming, 1 s batches, our BigDL ResNet20 twin; every step is one spark-submit, whose start-up is
outside the latencies: they run from the sender's stamp to classification).  Every step (offered and measured
rate, p50/p99, accounting, verdict) is in ``extra_info["steps"]``, with the load average and CPU so
that a figure measured beside other people's jobs says so.
"""

from __future__ import annotations

import pytest

from fixtures.data import SHARED_MODELS
from fixtures.sender import start_sender
from iotbench import capacity, receiver
from iotbench.report import extra_info, machine_load

EDGE_MODEL = SHARED_MODELS / "cifar10_ResNet20v1_model_91470.h5"
EDGE_BATCH, EDGE_MAX_WAIT_MS, EDGE_SECONDS, EDGE_MIN_IMAGES = 64, 20.0, 4.0, 300
EDGE_RESOLUTION, SPARK_RESOLUTION = 0.1, 0.2
SPARK_SECONDS, SPARK_MIN_IMAGES = 10.0, 2500
SPARK_WARMUP_IMAGES = 1000
#: The Spark searches' first offered rate (images/s); a failed first step halves it down to an eighth.
SPARK_START = 250
#: Each step starts a streaming query whose first micro-batch loads the model in the Python workers
#: (seconds): a step needs enough images that those few are under 1% of them, or p99 is start-up.
#: The runtimes of the edge path (id, runtime, precision): TensorFlow fp32, the original's figure; ONNX Runtime
#: fp32, the fastest fp32 runtime on an AVX2-only CPU; OpenVINO int8 (NNCF), the fastest of all there.
EDGE_RUNTIMES = [("tf", "tf", "fp32"), ("onnxruntime", "onnxruntime", "fp32"),
                 ("openvino-int8", "openvino", "int8")]


def images_at(rate: float, seconds: float, least: int = 0) -> int:
    return max(least, int(rate * seconds))


def progress(capsys, label: str):
    def show(step: capacity.Step) -> None:  # minutes per search: one line per step, even under capture
        with capsys.disabled():
            print(f"\n  {label} at {step.offered:g} img/s: {step.verdict.reason}, measured "
                  f"{step.summary.get('images_per_sec')} img/s, p99 {step.summary.get('p99_ms')} ms", flush=True)
    return show


def record(benchmark, steps, bound_ms: float, resolution: float, **identity) -> dict:
    res = capacity.result(steps, bound_ms, resolution)
    benchmark.extra_info.update(extra_info(
        res, **identity, offered_images_per_sec=res["offered_images_per_sec"],
        capacity_images_per_sec=res["capacity_images_per_sec"], p99_bound_ms=bound_ms, resolution=resolution,
        arrival="poisson", steps=res["steps"], headline=capacity.headline(res), **machine_load()))
    return res


def check(steps, res) -> None:
    for step in steps:  # a step whose sender finished accounts for every image it sent
        if step.summary.get("sender_finished") is not False and step.summary.get("sent") is not None:
            s = step.summary
            assert s["sent"] == s["classified"] + s["rejected"] + s["lost"], step.brief()
    assert res["capacity_images_per_sec"] is not None, [s.brief() for s in steps]
    assert res["p99_ms"] <= res["p99_bound_ms"]


#: The Scala stream (BigDL ResNet20, ~170 images/s on 2 cores): its first offer, a step's length and batch.
SCALA_START, SCALA_SECONDS, SCALA_MIN_IMAGES, SCALA_BATCH, SCALA_INTERVAL_S = 40, 10.0, 400, 64, 1

CASES = [pytest.param("edge", (rt, precision), id=f"edge-{name}", marks=pytest.mark.keras)
         for name, rt, precision in EDGE_RUNTIMES] + [
    pytest.param("spark", kind, id=f"spark-{kind}", marks=[pytest.mark.spark, pytest.mark.slow])
    for kind in ("native", "bigdl")] + [
    pytest.param("scala", "bigdl_resnet20", id="scala-stream", marks=[pytest.mark.scala, pytest.mark.slow])]


@pytest.mark.parametrize(("path", "kind"), CASES)
def test_capacity(benchmark, capsys, request, path, kind):
    """capacity = R images/s at p99 ≤ B ms for one path (see the module docstring)."""
    if path == "edge":
        edge_capacity(benchmark, capsys, *kind)
    elif path == "scala":
        scala_capacity(benchmark, capsys, request.getfixturevalue("scala_jar"), request.getfixturevalue(kind),
                       request.getfixturevalue("tmp_path"))
    else:
        spark_capacity(benchmark, request.getfixturevalue("spark_on"), request.getfixturevalue("keras_cnn_model"),
                       request, capsys, kind)


def edge_capacity(benchmark, capsys, runtime: str, precision: str) -> None:
    from iotbench.engines.edge_runtime import make_edge_engine

    if not EDGE_MODEL.exists():
        pytest.skip(f"model file {EDGE_MODEL} is not there")
    try:
        engine = make_edge_engine(runtime, EDGE_MODEL, batch=EDGE_BATCH, precision=precision)
        engine.warmup()
    except (ImportError, ValueError) as err:
        pytest.skip(f"runtime {runtime} {precision}: {err}")
    config = receiver.ReceiveConfig(batch=EDGE_BATCH, max_wait_ms=EDGE_MAX_WAIT_MS, progress_every=10**9)

    def run_at(rate: float) -> dict:
        sender = start_sender("-t", str(images_at(rate, EDGE_SECONDS, EDGE_MIN_IMAGES)), "-i", f"{rate:g}",
                              "--arrival", "poisson", "--format", "binary")
        try:
            summary = receiver.receive(receiver.connect_input("127.0.0.1", sender.wait_listening()), engine,
                                       config).summary()
            summary["sender"] = sender.wait(60)
        finally:
            sender.stop()
        return summary

    bound = capacity.EDGE_P99_BOUND_MS
    steps: list[capacity.Step] = []
    benchmark.pedantic(lambda: steps.extend(capacity.search(
        run_at, 20, capacity.p99_judge(bound), factor=2, resolution=EDGE_RESOLUTION,
        on_step=progress(capsys, f"edge {runtime} {precision}"))), rounds=1, iterations=1)
    res = record(benchmark, steps, bound, EDGE_RESOLUTION, engine=engine.name, model=engine.model,
                 batch=EDGE_BATCH, wire="binary", path="edge", runtime=runtime, precision=precision,
                 max_wait_ms=EDGE_MAX_WAIT_MS)
    check(steps, res)


def spark_capacity(benchmark, spark_on, keras_cnn_model, request, capsys, engine_kind: str) -> None:
    from test_spark import BIGDL_ENGINE, STREAM_INTERVAL_S, make_engine, stream_from

    sc, _ = spark_on("local")
    engine, _ = make_engine(engine_kind, "stream", keras_cnn_model, request)

    def run_at(rate: float) -> dict:
        images = images_at(rate, SPARK_SECONDS, SPARK_MIN_IMAGES)
        sender = start_sender("-t", str(images), "-i", f"{rate:g}", "--arrival", "poisson", "--format", "%d", "--v2")
        summary, sent = stream_from(sender, sender.wait_listening(), engine, sc)
        summary["sender"] = sent  # the offer is judged on the sender's own rate (iotbench.capacity.verdict)
        return summary

    # One unrecorded stream first: the first query of a session starts the Python workers and loads the
    # model in them (seconds), which would be the first step's p99 instead of the path's.
    warm = start_sender("-t", str(SPARK_WARMUP_IMAGES), "--arrival", "max", "--format", "%d", "--v2")
    stream_from(warm, warm.wait_listening(), engine, sc)
    bound = capacity.SPARK_BOUND_INTERVALS * STREAM_INTERVAL_S * 1000
    steps: list[capacity.Step] = []
    benchmark.pedantic(lambda: steps.extend(capacity.search(
        run_at, SPARK_START, capacity.p99_judge(bound), factor=2, resolution=SPARK_RESOLUTION,
        min_rate=SPARK_START / 8, on_step=progress(capsys, f"spark {engine_kind}"))), rounds=1, iterations=1)
    res = record(benchmark, steps, bound, SPARK_RESOLUTION, engine=engine.name, model=engine.model,
                 batch=engine.batch, wire="v2%d", path="spark-stream", master=sc.master, api="structured",
                 interval_s=STREAM_INTERVAL_S, **({"bigdl_engine": BIGDL_ENGINE} if engine_kind == "bigdl" else {}))
    check(steps, res)


def scala_capacity(benchmark, capsys, scala_jar, bigdl_model, tmp_path) -> None:
    """The Scala Spark Streaming classifier (infer_cifar_stream, ``local[2]``) fed Poisson arrivals by our sender."""
    from fixtures.scala import run_scala_stream

    def run_at(rate: float) -> dict:
        sender = start_sender("-t", str(images_at(rate, SCALA_SECONDS, SCALA_MIN_IMAGES)), "-i", f"{rate:g}",
                              "--arrival", "poisson", "--format", "%d", "--v2")
        try:
            run = run_scala_stream(scala_jar, sender.wait_listening(), bigdl_model.path, tmp_path, batch=SCALA_BATCH,
                                   interval=SCALA_INTERVAL_S)
            if not run.summary:  # the program failed before its books: an error, not a step that fell behind
                raise AssertionError(f"scala stream at {rate:g} images/s wrote no summary (exit {run.returncode}): "
                                     f"{run.errors()}")
            summary = {**run.summary, "sender": sender.wait(60)}
        finally:
            sender.stop()
        return summary

    bound = capacity.SPARK_BOUND_INTERVALS * SCALA_INTERVAL_S * 1000
    steps: list[capacity.Step] = []
    benchmark.pedantic(lambda: steps.extend(capacity.search(
        run_at, SCALA_START, capacity.p99_judge(bound), factor=2, resolution=SPARK_RESOLUTION,
        min_rate=SCALA_START / 8, on_step=progress(capsys, "scala stream"))), rounds=1, iterations=1)
    res = record(benchmark, steps, bound, SPARK_RESOLUTION, engine="bigdl-scala-stream", model=bigdl_model.path.name,
                 batch=SCALA_BATCH, wire="v2%d", path="scala-stream", master="local[2]", api="dstream",
                 interval_s=SCALA_INTERVAL_S, bigdl_engine=steps[0].summary.get("bigdl_engine"))  # what the JVM ran
    check(steps, res)
