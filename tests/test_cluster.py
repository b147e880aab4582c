"""The Spark paths on a remote cluster: the driver's address, and workers in network namespaces of their own.

The pure tests check the address choice (loopback for local masters, the routing source for remote ones, the
``--driver-host`` override) and ``--conf`` parsing.  The ``cluster`` tests (also ``slow``) start a standalone
master on the host side of veth pairs and workers inside namespaces (fixtures/netns.py), run the driver outside,
and compare accuracy with Keras's on the same images; one kills a worker mid-run.  They skip where namespaces
cannot be made.  Traffic goes only to loopback and to the addresses the fixture put on its veth pairs.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from iotbench import metrics, sender
from iotbench.spark.address import (
    LOOPBACK,
    driver_address,
    is_loopback_host,
    master_hosts,
    parse_conf,
    route_source,
)

IMAGES = 1_000  # CI size: enough that the accuracy comparison with Keras is meaningful
#: figures the cluster tests measured; written to $IOTBENCH_CLUSTER_JSON when set (benchmarks/results/)
FIGURES: dict = {}


@pytest.fixture(scope="module", autouse=True)
def cluster_figures():
    yield FIGURES
    out = os.environ.get("IOTBENCH_CLUSTER_JSON")
    if out and FIGURES:
        from iotbench import report

        report.write_json(out, {"figures": FIGURES, "images": IMAGES, "machine": report.machine()})


# --------------------------------------------------------------------------- pure: the address choice


def _no_route(host: str) -> str:
    raise AssertionError(f"a loopback master must not look up a route (asked for {host})")


@pytest.mark.parametrize("master", ["local", "local[2]", "local[*]", "local[4,3]", "spark://127.0.0.1:7077",
                                    "spark://localhost:7077", "spark://127.0.1.1:7077,127.0.0.1:7078"])
def test_local_and_loopback_masters_advertise_loopback(master):
    assert driver_address(master, route=_no_route) == LOOPBACK


def test_remote_master_advertises_the_address_that_routes_to_it():
    asked = []
    assert driver_address("spark://10.9.8.7:7077", route=lambda h: asked.append(h) or "10.9.8.1") == "10.9.8.1"
    assert asked == ["10.9.8.7"]
    # the first non-loopback host of a multi-master URL decides
    assert driver_address("spark://127.0.0.1:7077,node2:7077", route=lambda h: f"via-{h}") == "via-node2"


def test_driver_host_overrides_the_choice_for_every_master():
    for master in ("local[2]", "spark://127.0.0.1:7077", "spark://10.9.8.7:7077"):
        assert driver_address(master, override="192.0.2.55", route=_no_route) == "192.0.2.55"


def test_no_route_to_the_master_is_one_line_naming_the_flag():
    def unreachable(host):
        raise OSError(101, "Network is unreachable")

    with pytest.raises(ConnectionError, match="--driver-host") as err:
        driver_address("spark://10.9.8.7:7077", route=unreachable)
    assert "\n" not in str(err.value) and "10.9.8.7" in str(err.value)


def test_route_source_of_loopback_is_loopback_and_sends_nothing():
    # a UDP connect() only consults the routing table
    assert route_source("127.0.0.1") == "127.0.0.1"


def test_master_hosts_and_loopback_names():
    assert master_hosts("local[2]") == []
    assert master_hosts("spark://a:1,b:2") == ["a", "b"]
    assert is_loopback_host("localhost") and is_loopback_host("127.0.0.53") and is_loopback_host("::1")
    assert not is_loopback_host("10.0.0.1") and not is_loopback_host("node1")


def test_conf_pairs_split_at_the_first_equals_sign_as_spark_submit():
    assert parse_conf(["spark.a=1", "spark.b=x=y", "spark.c="]) == {"spark.a": "1", "spark.b": "x=y", "spark.c": ""}
    assert parse_conf(None) == {}
    for bad in ("spark.a", "=1"):
        with pytest.raises(ValueError, match="KEY=VALUE"):
            parse_conf([bad])


@pytest.mark.parametrize("path", ["spark-max", "spark-stream"])
def test_cli_paths_take_conf_driver_host(path):
    proc = subprocess.run([sys.executable, "-m", "iotbench", "infer", path, "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0
    for flag in ("--conf", "--driver-host"):
        assert flag in proc.stdout, proc.stdout


@pytest.mark.parametrize("path", ["spark-max", "spark-stream"])
def test_malformed_conf_is_one_line(path):
    proc = subprocess.run([sys.executable, "-m", "iotbench", "infer", path, "--conf", "spark.executor.memory"],
                          capture_output=True, text=True, timeout=60)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "KEY=VALUE" in lines[0], proc.stderr


# --------------------------------------------------------------------------- workers in network namespaces


def keras_accuracy(model_path, images: np.ndarray, labels: np.ndarray) -> float:
    """Keras's own accuracy on ``images``: what every engine on every cluster must reproduce."""
    import keras

    from iotbench.engines.spark_models import model_transform, to_model_input

    model = keras.models.load_model(model_path, compile=False)
    x = to_model_input(images, True, model_transform(model_path))
    return float((np.asarray(model.predict(x, batch_size=250, verbose=0)).argmax(1) == labels).mean())


@pytest.fixture(scope="module")
def subset(keras_cnn_model, cifar_test):
    images, labels = cifar_test.images[:IMAGES], cifar_test.labels[:IMAGES].astype(np.int64)
    return images, labels, keras_accuracy(keras_cnn_model, images, labels)


def _engine(kind: str, path: str, keras_cnn_model, request):
    from iotbench.engines.spark_max import BigDLMax, NativeMax
    from iotbench.engines.spark_models import BigDLClassifier, KerasUDFClassifier
    from iotbench.engines.spark_stream import BigDLStream, NativeStream

    if kind == "bigdl":
        defs, weights = request.getfixturevalue("bigdl_cnn_model")
        return (BigDLMax if path == "max" else BigDLStream)(BigDLClassifier(defs, weights))
    return (NativeMax if path == "max" else NativeStream)(KerasUDFClassifier(keras_cnn_model))


def wait_for_executors(sc, n: int, timeout_s: float = 120.0) -> list[str]:
    from iotbench.spark.executors import executor_hosts

    deadline = time.monotonic() + timeout_s
    while len(executor_hosts(sc)) < n and time.monotonic() < deadline:
        time.sleep(0.5)
    return executor_hosts(sc)


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.spark
@pytest.mark.parametrize("kind", ["bigdl", "native"])
def test_max_path_on_workers_in_their_own_network_namespaces(kind, netns_spark, keras_cnn_model, subset, request):
    from iotbench.engines.spark_max import run_max
    sc, cluster = netns_spark
    images, labels, keras_acc = subset
    assert sc.getConf().get("spark.driver.host") == cluster.master_host  # chosen from the route, not 127.0.0.1
    assert wait_for_executors(sc, cluster.workers) == sorted(cluster.worker_address(i) for i in range(cluster.workers))
    result = run_max(_engine(kind, "max", keras_cnn_model, request), sc, images, labels, duration=0, warmup=1)
    s = result.summary()
    assert s["classified"] == IMAGES and s["accuracy"] == pytest.approx(keras_acc, abs=0.005)
    assert s["executors_lost"] == 0
    FIGURES[f"{kind}_max"] = {"images_per_sec": s["images_per_sec"], "accuracy": s["accuracy"],
                              "keras_accuracy": keras_acc, "workers": cluster.workers}


def serve_in_thread(config: sender.SendConfig) -> tuple[threading.Thread, dict]:
    """Our sender, in-process, listening on a free loopback port; returns once it listens."""
    ready = threading.Event()
    out: dict = {}

    def target():
        out["result"] = sender.serve(config, 0, ready=lambda port: (out.__setitem__("port", port), ready.set()))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert ready.wait(60), "sender did not start listening"
    return thread, out


def run_native_stream(sc, keras_cnn_model, cifar_test, images: int, rate: float | None, during=None) -> dict:
    """Native engine, Structured Streaming (socket read on the driver, classified on the executors)."""
    from iotbench.engines.spark_models import KerasUDFClassifier
    from iotbench.engines.spark_stream import NativeStream, StreamConfig, run_stream

    config = sender.SendConfig(total=images, arrival="max" if rate is None else "constant", rate=rate or 0.0,
                               fmt="%d", v2=True)
    thread, out = serve_in_thread(config)
    # ``during``: (seconds after the stream started, what to do): after the engine's warm-up, which counts executors
    timer = threading.Timer(during[0], during[1]) if during else None
    try:
        result = run_stream(NativeStream(KerasUDFClassifier(keras_cnn_model)), sc,
                            StreamConfig(port=out["port"], interval=2.0, api="structured", empty_intervals=2,
                                         first_data_timeout=180), on_start=timer.start if timer else None)
    finally:
        if timer:
            timer.cancel()
    thread.join(60)
    s = result.summary()
    assert s["sent"] == images == out["result"].sent
    return s


def ensure_two_executors(sc, cluster) -> None:
    """Both workers up, with an executor each (an earlier test may have killed one)."""
    for i in range(cluster.workers):
        if not cluster.worker_alive(i):
            cluster.start_worker(i)
    assert len(wait_for_executors(sc, cluster.workers)) == cluster.workers


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.spark
def test_native_stream_on_workers_in_their_own_network_namespaces(netns_spark, keras_cnn_model, cifar_test, subset):
    sc, _ = netns_spark
    _, _, keras_acc = subset
    s = run_native_stream(sc, keras_cnn_model, cifar_test, IMAGES, rate=None)
    assert (s["classified"], s["rejected"], s["lost"]) == (IMAGES, 0, 0)
    assert metrics.exit_status(s) == (metrics.EXIT_OK, None)
    assert s["accuracy"] == pytest.approx(keras_acc, abs=0.005)  # the stream sends the test set from image 0
    FIGURES["native_stream"] = {"images_per_sec": s["images_per_sec"], "accuracy": s["accuracy"],
                                "keras_accuracy": keras_acc, "sent": s["sent"], "lost": s["lost"]}


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.spark
def test_max_path_completes_on_the_survivor_when_a_worker_dies(netns_spark, keras_cnn_model, subset, request):
    """Kill worker 1 (daemon and executor) during an iteration: Spark retries its tasks on worker 0; the figures
    are the same, the summary names the loss, and the iteration is slower (printed: the slowdown)."""
    from iotbench.engines.spark_max import run_max

    sc, cluster = netns_spark
    images, labels, keras_acc = subset
    ensure_two_executors(sc, cluster)
    engine = _engine("native", "max", keras_cnn_model, request)
    healthy = run_max(engine, sc, images, labels, duration=0, warmup=1).summary()
    assert healthy["executors_lost"] == 0
    kill_after = healthy["iteration_seconds"][0] / 3

    def kill_soon():
        threading.Timer(kill_after, cluster.kill_worker, args=(1,)).start()

    hurt = run_max(engine, sc, images, labels, duration=0, warmup=0, on_start=kill_soon).summary()
    assert not cluster.worker_alive(1)
    assert (hurt["classified"], hurt["correct"]) == (healthy["classified"], healthy["correct"]) == (
        IMAGES, round(keras_acc * IMAGES))
    assert (hurt["executors_start"], hurt["executors_end"], hurt["executors_lost"]) == (2, 1, 1)
    slowdown = hurt["iteration_seconds"][0] / healthy["iteration_seconds"][0]
    print(f"\nlost worker: iteration {healthy['iteration_seconds'][0]:.2f} s -> {hurt['iteration_seconds'][0]:.2f} s "
          f"({slowdown:.2f}x)")
    FIGURES["native_max_lost_worker"] = {
        "healthy_iteration_s": healthy["iteration_seconds"][0], "lost_worker_iteration_s": hurt["iteration_seconds"][0],
        "slowdown": slowdown, "accuracy": hurt["accuracy"], "executors": [hurt["executors_start"],
                                                                          hurt["executors_end"]]}


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.spark
def test_stream_path_loses_no_image_when_a_worker_dies(netns_spark, keras_cnn_model, cifar_test, subset):
    """A paced stream; worker 1 is killed a few seconds in: the micro-batch's tasks are retried on worker 0,
    every image is classified once (nothing lost, nothing rejected), and the summary names the lost executor."""
    sc, cluster = netns_spark
    _, _, keras_acc = subset
    ensure_two_executors(sc, cluster)
    s = run_native_stream(sc, keras_cnn_model, cifar_test, IMAGES, rate=100.0,
                          during=(4.0, lambda: cluster.kill_worker(1)))
    assert not cluster.worker_alive(1)
    assert s["sent"] == s["classified"] + s["rejected"] + s["lost"]
    assert (s["classified"], s["rejected"], s["lost"], s["duplicated"]) == (IMAGES, 0, 0, 0)
    assert metrics.exit_status(s) == (metrics.EXIT_OK, None)
    assert s["accuracy"] == pytest.approx(keras_acc, abs=0.005)
    assert (s["executors_start"], s["executors_end"], s["executors_lost"]) == (2, 1, 1)
    FIGURES["native_stream_lost_worker"] = {"sent": s["sent"], "classified": s["classified"], "lost": s["lost"],
                                            "rejected": s["rejected"], "accuracy": s["accuracy"],
                                            "images_per_sec": s["images_per_sec"], "offered_rate": 100.0}


def test_spark_properties_follow_the_address_choice_and_conf_comes_last():
    from iotbench.spark import SparkSettings, spark_conf_items

    local = spark_conf_items(SparkSettings(master="local[2]", bigdl=False))
    assert (local["spark.driver.host"], local["spark.driver.bindAddress"]) == (LOOPBACK, LOOPBACK)
    pinned = spark_conf_items(SparkSettings(master="spark://127.0.0.1:7077", bigdl=False, driver_host="192.0.2.9",
                                            conf={"spark.task.maxFailures": "8", "spark.executor.memory": "5g"}))
    assert (pinned["spark.driver.host"], pinned["spark.driver.bindAddress"]) == ("192.0.2.9", "192.0.2.9")
    assert (pinned["spark.task.maxFailures"], pinned["spark.executor.memory"]) == ("8", "5g")


# --------------------------------------------------------------------------- --ship-env


def test_pack_excludes_what_executors_do_not_import_and_keeps_what_they_do():
    from fnmatch import fnmatch

    from iotbench.spark.ship import EXCLUDE, SITE

    def excluded(path):
        return any(fnmatch(path, pattern) for pattern in EXCLUDE)

    for gone in ("torch/__init__.py", "nvidia/cublas/lib/libcublas.so.12", "triton/__init__.py",
                 "torchvision/io/image.py", "torch-2.9.0.dist-info/RECORD", "pyspark/jars/spark-core_2.12-3.5.9.jar",
                 "__editable___iotbench_0_1_0_finder.py"):
        assert excluded(f"{SITE}/{gone}"), gone
    for kept in ("numpy/__init__.py", "tensorflow/__init__.py", "keras/__init__.py", "pyarrow/__init__.py",
                 "pandas/__init__.py", "pyspark/__init__.py", "bigdl/dllib/nncontext.py", "torchmetrics/x.py"):
        assert not excluded(f"{SITE}/{kept}"), kept


def test_environment_hash_is_stable_and_the_package_zip_holds_our_sources(tmp_path):
    from iotbench.spark.ship import Pack, environment_hash, package_zip

    assert environment_hash() == environment_hash() and len(environment_hash()) == 16
    z = package_zip(tmp_path)
    assert package_zip(tmp_path) == z  # named by content: built once
    names = zipfile.ZipFile(z).namelist()
    assert "iotbench/__init__.py" in names and "iotbench/spark/ship.py" in names
    conf = Pack(tmp_path / "env.tar.gz", z, 1, 0.5, False).conf()
    assert conf["spark.archives"].endswith("env.tar.gz#environment")
    assert conf["spark.pyspark.python"] == "./environment/bin/python"


@pytest.mark.parametrize("path", ["spark-max", "spark-stream"])
def test_cli_paths_take_ship_env(path):
    proc = subprocess.run([sys.executable, "-m", "iotbench", "infer", path, "--help"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and "--ship-env" in proc.stdout


@pytest.mark.cluster
@pytest.mark.slow
@pytest.mark.spark
def test_ship_env_runs_on_a_worker_that_cannot_see_the_venv(spark_contexts, keras_cnn_model, subset, request,
                                                            tmp_path):
    """A worker whose mount namespace hides this .venv: without --ship-env the first job fails in one line naming
    the flag; with it the native max path classifies at Keras's accuracy from the shipped pack."""
    from fixtures.netns import netns_cluster_running
    from iotbench.engines.spark_max import run_max
    from iotbench.spark import SparkSettings
    from iotbench.spark import context as spark_context

    spark_contexts.stop()  # one SparkContext per JVM
    images, labels, keras_acc = subset
    venv = Path(sys.prefix)
    with netns_cluster_running(workers=1, cores=1, memory="2g", log_dir=tmp_path, hide=(venv,), first=4) as cluster:
        plain = SparkSettings(master=cluster.url, app_name="iotbench-pytest-ship", cores_max=1, bigdl=False)
        started = time.monotonic()
        with pytest.raises(RuntimeError) as err:
            spark_context.start(plain)
        refused_s = time.monotonic() - started
        assert "--ship-env" in str(err.value) and str(venv) in str(err.value) and "\n" not in str(err.value)
        started = time.monotonic()
        sc = spark_context.start(replace(plain, ship_env=True))
        try:
            ready_s = time.monotonic() - started
            assert sc.getConf().get("spark.pyspark.python") == "./environment/bin/python"
            s = run_max(_engine("native", "max", keras_cnn_model, request), sc, images, labels, duration=0,
                        warmup=1).summary()
        finally:
            spark_context.stop()
    assert s["classified"] == IMAGES and s["accuracy"] == pytest.approx(keras_acc, abs=0.005)
    from iotbench.spark.ship import environment_pack

    pack = environment_pack(log=lambda line: None)
    print(f"\nship-env: refused without it in {refused_s:.1f} s; {pack.line()}; context + check job {ready_s:.1f} s; "
          f"{s['images_per_sec']:.1f} images/s, accuracy {s['accuracy']:.4f}")
    FIGURES["ship_env_native_max"] = {
        "images_per_sec": s["images_per_sec"], "accuracy": s["accuracy"], "keras_accuracy": keras_acc,
        "pack_bytes": pack.size_bytes, "pack_build_s": pack.build_s, "refused_without_ship_env_s": refused_s,
        "context_and_first_job_s": ready_s, "workers": 1, "hidden": str(venv)}
