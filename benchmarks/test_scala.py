"""Scala path: the Spark Streaming + BigDL ResNet20 classifier (fed by the Python and the JVM sender, at max rate,
local[2]) and the ImageNet max-throughput program.

A round is one whole spark-submit run, Spark's start-up included, so the round time is not the throughput:
the program's own figure (images classified / time from the first image received to the last classified)
goes into ``extra_info["images_per_sec"]``.  The accuracy floor is the converted model's own accuracy on
exactly the images sent (from the per-image bitmap in its card), within half a point; on the full test set
that is the card's test accuracy.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from fixtures.data import MODELS
from fixtures.scala import run_scala_stream, start_scala_sender
from fixtures.sender import start_sender
from iotbench import metrics, scala_build
from iotbench.report import extra_info

pytestmark = pytest.mark.scala

TOLERANCE = 0.005  # half a point
#: The Keras model each BigDL model was converted from (BigDL ÷ TensorFlow on the same model: of_keras_ceiling);
#: the original's BigDL 0.8 model has no Keras twin.
KERAS_TWINS = {"bigdl_resnet20": MODELS / "resnet20.keras"}
#: Images of the Keras ceiling pass beside each Scala stream (enough for a steady figure at ~1,000 images/s).
CEILING_IMAGES = 2_000

STREAMS = [  # sender, wire, images (None: --images, 2,000 by default), model fixture, BigDL engine
    pytest.param("python", "v2%d", None, "bigdl_resnet20", "mklblas", id="python-v2"),
    pytest.param("scala", "comma", None, "bigdl_resnet20", "mklblas", id="scala-comma"),
    # MKL-DNN runs our twin unfused (BigDLEngine.forInference, docs/bigdl.md)
    pytest.param("python", "v2%d", None, "bigdl_resnet20", "mkldnn", id="python-v2-mkldnn"),
    pytest.param("python", "v2%d", 10_000, "bigdl_resnet20", "mklblas", id="python-v2-full", marks=pytest.mark.slow),
    pytest.param("scala", "comma", 10_000, "bigdl_resnet20", "mklblas", id="scala-comma-full", marks=pytest.mark.slow),
    pytest.param("python", "v2%d", 10_000, "bigdl_resnet20", "mkldnn", id="python-v2-mkldnn-full",
                 marks=pytest.mark.slow),
    pytest.param("scala", "comma", 10_000, "bigdl_resnet20", "mkldnn", id="scala-comma-mkldnn-full",
                 marks=pytest.mark.slow),
    # the original's set-up: its JVM line format and its BigDL 0.8 model (imported), on the full test set
    pytest.param("scala", "bigdl08", 10_000, "bigdl_resnet887", "mklblas", id="original-887-full",
                 marks=pytest.mark.slow),
]


def _start(kind: str, wire: str, jar, n: int):
    if kind == "python":
        return start_sender("-t", str(n), "--arrival", "max", "--format", "%d", "--v2")
    return start_scala_sender(jar, "-t", str(n), "-i", "0", "--format", wire)


@pytest.mark.parametrize(("sender", "wire", "count", "model", "bigdl_engine"), STREAMS)
def test_scala_stream(benchmark, request, scala_jar, sizes, tmp_path, cifar_test, sender, wire, count, model,
                      bigdl_engine):
    """The Scala classifier at max rate, beside TensorFlow's in-memory ceiling on its Keras twin (same
    cores, batch 64, just before): ``of_keras_ceiling`` is BigDL ÷ TensorFlow on the same model."""
    from iotbench.engines.spark_max import keras_ceiling

    bigdl_model = request.getfixturevalue(model)
    n = count or sizes.images
    runs, senders = [], []
    twin = KERAS_TWINS.get(model)
    ceiling = None
    if twin is not None and twin.exists():
        m = min(n, CEILING_IMAGES)
        ceiling = keras_ceiling(twin, cifar_test.images[:m], cifar_test.labels[:m], 2.0, batch=64)["images_per_sec"]

    def setup():
        senders.append(_start(sender, wire, scala_jar, n))
        return (), {}

    def one_round():
        s = senders[-1]
        try:
            run = run_scala_stream(scala_jar, s.wait_listening(), bigdl_model.path, tmp_path, batch=64,
                                   bigdl_engine=bigdl_engine)
            sent = s.wait()["sent"]
        finally:
            s.stop()
        runs.append((run, sent))

    benchmark.pedantic(one_round, setup=setup, rounds=1, iterations=1)
    run, sent = runs[-1]
    # the original's JVM line format has no end marker (its sender sent none), so its stream always reads as cut
    ending = (metrics.EXIT_TRUNCATED, "cut before its end marker") if wire == "bigdl08" else (metrics.EXIT_OK, None)
    assert run.returncode == ending[0], run.errors()
    s = run.summary
    # Without sequence numbers (the original's comma format) loss is not measurable: the program reports None.
    benchmark.extra_info.update(extra_info(s, engine="bigdl-scala-stream", model=bigdl_model.path.name, batch=64,
                                           wire=wire, sender=sender, master="local[2]", lost=s["lost"],
                                           sender_sent=sent, arrival="max",
                                           bigdl_engine=s["bigdl_engine"],  # what the JVM ran
                                           keras_ceiling_images_per_sec=None if ceiling is None else round(ceiling, 1),
                                           of_keras_ceiling=None if ceiling is None or s["images_per_sec"] is None
                                           else round(s["images_per_sec"] / ceiling, 3)))
    assert s["bigdl_engine"] == bigdl_engine
    assert sent == n and s["classified"] == n and s["rejected"] == 0
    assert s["lost"] == (0 if s["sequenced"] else None)
    # every image accounted for, by the rule every receiver's exit status follows (metrics.exit_status)
    status, why = metrics.exit_status(s)
    assert status == s["exit_status"] == ending[0]
    assert why is None if ending[1] is None else ending[1] in (why or ""), why
    expected = bigdl_model.expected_accuracy(n)
    if n == 10_000:
        expected = bigdl_model.card["test_accuracy"]
    assert expected is not None
    assert abs(s["accuracy"] - expected) <= TOLERANCE


ITERATION = re.compile(r"Z: Iteration \d+: (\d+) images inferred(?: \(of \d+: -d reached\))?\. ")
COMPLETION = re.compile(r"Z: Test completion: (\d+) images inferred in ([\d.]+) sec or ([\d.]+) images/second")


def test_scala_imagenet_max(benchmark, scala_jar, imagenet_sample, sizes, tmp_path):
    """ResNet-50 (random weights: no pretrained ImageNet weights offline) for a given duration on the sample."""
    images = 0 if sizes.full else 8
    duration = int(sizes.duration)
    out = tmp_path / "imagenet.json"
    args = ["-f", str(imagenet_sample), "-d", str(duration), "--repeat", "1",  # ResNet-50: ~8 images/s on 2 cores
            "--images", str(images), "--json", str(out)]
    cmd = scala_build.submit_command(scala_jar, scala_build.IMAGENET_CLASS, args, driver_memory="3g")
    result = {}

    def one_round():
        result["proc"] = subprocess.run(cmd, env=scala_build.submit_env(), capture_output=True, text=True,
                                        timeout=600 + duration)

    benchmark.pedantic(one_round, rounds=1, iterations=1)
    proc = result["proc"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    iterations = ITERATION.findall(proc.stdout)
    done = COMPLETION.search(proc.stdout)
    assert iterations and done, proc.stdout
    assert int(done.group(1)) == sum(map(int, iterations))
    assert float(done.group(2)) >= duration  # the loop runs until the duration has passed
    import json

    summary = json.loads(out.read_text())
    benchmark.extra_info.update(extra_info(summary, engine="bigdl-scala-imagenet", model=summary["model"],
                                           batch=summary["batch"], wire="memory", duration_s=duration))
    assert summary["accuracy"] is None  # no weights file: accuracy is not scored
