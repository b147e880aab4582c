"""Spark paths: weight transfer to BigDL, accuracy parity of both engines with Keras, fail-fast on a dead master,
and streaming accounting (``sent = classified + rejected + lost``) with garbage in the stream.

Sizes are small (a 500-image test subset, a 300-image stream) so the whole file runs in a few minutes on 2 cores.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from iotbench import metrics, sender, wire

pytestmark = pytest.mark.spark

SUBSET = 500
STREAM_IMAGES = 300


def test_bigdl_weight_layout_reproduces_keras_flatten_dense():
    """The first Dense after Flatten must see the same features in BigDL's CHW flatten order as in Keras's HWC one."""
    from iotbench.convert.bigdl_cnn import bigdl_weights

    rng = np.random.default_rng(0)
    h, w, c, units = 3, 4, 5, 7
    conv = rng.normal(size=(3, 3, 2, c)).astype(np.float32)
    dense = rng.normal(size=(h * w * c, units)).astype(np.float32)
    specs = [
        {"kind": "Conv2D", "weights": [conv, np.zeros(c, np.float32)], "input_shape": (h, w, 2)},
        {"kind": "Flatten", "weights": [], "input_shape": (h, w, c)},
        {"kind": "Dense", "weights": [dense, np.zeros(units, np.float32)], "input_shape": (h * w * c,)},
    ]
    bconv, _, bdense, _ = bigdl_weights(specs)
    assert bconv.shape == (1, c, 2, 3, 3)
    np.testing.assert_array_equal(bconv[0, 4, 1], conv[:, :, 1, 4])
    features = rng.normal(size=(h, w, c)).astype(np.float32)
    keras_out = features.reshape(-1) @ dense
    bigdl_out = bdense @ features.transpose(2, 0, 1).reshape(-1)
    np.testing.assert_allclose(bigdl_out, keras_out, rtol=1e-5, atol=1e-5)


@pytest.fixture(scope="module")
def keras_subset_accuracy(keras_cnn_model, cifar_test):
    """Keras's own accuracy on the subset, and the subset."""
    import keras

    from iotbench.engines.spark_models import model_transform, to_model_input

    images, labels = cifar_test.images[:SUBSET], cifar_test.labels[:SUBSET].astype(np.int64)
    model = keras.models.load_model(keras_cnn_model, compile=False)
    x = to_model_input(images, True, model_transform(keras_cnn_model))
    predicted = np.asarray(model.predict(x, batch_size=250, verbose=0)).argmax(1)
    return float((predicted == labels).mean()), images, labels


def _max_engine(kind, keras_cnn_model, request):
    from iotbench.engines.spark_max import BigDLMax, NativeMax
    from iotbench.engines.spark_models import BigDLClassifier, KerasUDFClassifier

    if kind == "bigdl":
        defs, weights = request.getfixturevalue("bigdl_cnn_model")
        return BigDLMax(BigDLClassifier(defs, weights))
    return NativeMax(KerasUDFClassifier(keras_cnn_model))


@pytest.mark.parametrize("kind", ["bigdl", "native"])
def test_engine_accuracy_equals_keras_on_the_same_subset(kind, spark, keras_cnn_model, keras_subset_accuracy, request):
    from iotbench.engines.spark_max import run_max

    keras_acc, images, labels = keras_subset_accuracy
    engine = _max_engine(kind, keras_cnn_model, request)
    result = run_max(engine, spark, images, labels, duration=0, warmup=0)
    assert result.images == SUBSET
    assert result.accuracy == pytest.approx(keras_acc, abs=0.005)


def test_bigdl_engine_other_than_the_jvms_is_one_line_not_a_silent_mklblas_run(spark, bigdl_cnn_model):
    """The engine is fixed when a JVM starts: a classifier told to expect mkldnn on this session's mklblas JVM
    refuses in one line instead of reporting an MKL-BLAS run as an MKL-DNN one."""
    from iotbench.engines.spark_models import BigDLClassifier

    with pytest.raises(RuntimeError, match="BigDL engine mkldnn asked for, but this Spark context's JVM runs mklblas"):
        BigDLClassifier(*bigdl_cnn_model, bigdl_engine="mkldnn").load(spark)


@pytest.mark.parametrize("path", ["spark-max", "spark-stream"])
def test_unreachable_master_fails_fast_with_one_line_naming_it(path):
    url = "spark://127.0.0.1:1"
    proc = subprocess.run([sys.executable, "-m", "iotbench", "infer", path, "--master", url],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and url in lines[0] and lines[0].startswith("error:"), proc.stderr


def test_bigdl_mkl_gets_its_avx2_kernels_on_amd_cpus_only():
    from iotbench.spark import SparkSettings, cpu_vendor, mkl_cpu_env, spark_conf_items

    assert cpu_vendor("processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\n") == "AuthenticAMD"
    assert cpu_vendor("") == ""
    assert mkl_cpu_env("AuthenticAMD") == {"MKL_DEBUG_CPU_TYPE": "5"}
    assert mkl_cpu_env("GenuineIntel") == {}
    items = spark_conf_items(SparkSettings(master="spark://127.0.0.1:7077", bigdl=False))
    # executors are launched by workers: on AMD the setting must travel in the conf, elsewhere it must not be set
    assert ("spark.executorEnv.MKL_DEBUG_CPU_TYPE" in items) == (cpu_vendor() == "AuthenticAMD")


def test_max_rate_with_structured_streaming_is_refused_not_ignored():
    proc = subprocess.run([sys.executable, "-m", "iotbench", "infer", "spark-stream", "--api", "structured",
                           "--max-rate", "100"], capture_output=True, text=True, timeout=60)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "--max-rate" in lines[0], proc.stderr


def test_missing_model_file_is_one_line_naming_it(tmp_path):
    missing = tmp_path / "nothing.bigdl"
    proc = subprocess.run([sys.executable, "-m", "iotbench", "infer", "spark-max", "-md", str(missing),
                           "-mw", str(missing)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and str(missing) in lines[0], proc.stderr


GARBAGE = {
    wire.EMPTY: b"3",
    wire.WRONG_LENGTH: b"3" + b" 1" * 100,
    wire.NOT_NUMERIC: b"3" + b" abc" * 3072,
    wire.BAD_LABEL: b"x" + b" 7" * 3072,
    wire.BAD_HEADER: b"~12:notatime:3" + b" 7" * 3072,
}


def serve_in_thread(config: sender.SendConfig) -> tuple[threading.Thread, dict]:
    """Our sender, in-process, listening on a free port (like ``nc -lk``); returns once it listens."""
    ready = threading.Event()
    out: dict = {}

    def target():
        out["result"] = sender.serve(config, 0, ready=lambda port: (out.__setitem__("port", port), ready.set()))

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    assert ready.wait(60), "sender did not start listening"
    return thread, out


@pytest.mark.parametrize("kind,api", [("bigdl", "dstream"), ("native", "structured")])
def test_stream_accounts_for_every_line_with_garbage_injected(kind, api, spark, keras_cnn_model, request):
    from iotbench.engines.spark_models import BigDLClassifier, KerasUDFClassifier
    from iotbench.engines.spark_stream import BigDLStream, NativeStream, StreamConfig, run_stream

    if kind == "bigdl":
        defs, weights = request.getfixturevalue("bigdl_cnn_model")
        engine = BigDLStream(BigDLClassifier(defs, weights))
    else:
        engine = NativeStream(KerasUDFClassifier(keras_cnn_model))
    config = sender.SendConfig(total=STREAM_IMAGES, arrival="max", fmt="%d", v2=True, garbage=tuple(GARBAGE.values()))
    thread, out = serve_in_thread(config)
    started = time.monotonic()
    result = run_stream(engine, spark, StreamConfig(port=out["port"], interval=2.0, api=api, empty_intervals=2,
                                                    first_data_timeout=180))
    thread.join(60)
    s = result.summary()
    lines_sent = out["result"].sent + len(GARBAGE)
    assert s["sent"] == STREAM_IMAGES == out["result"].sent
    # the one accounting model: garbage that carried no sequence number of a sent image is no sent image
    assert s["classified"] + s["rejected"] + s["lost"] == s["sent"]
    assert (s["lost"], s["rejected"], s["garbage_lines"], s["duplicated"]) == (0, 0, len(GARBAGE), 0)
    assert s["sequenced"] and not s["truncated"] and s["accounted"]
    assert metrics.exit_status(s) == (metrics.EXIT_OK, None)
    assert s["classified"] == STREAM_IMAGES
    assert s["rejected_by_reason"] == dict.fromkeys(GARBAGE, 1)
    assert sum(s["per_interval_received"]) == lines_sent
    assert s["accuracy"] > 0.5
    assert 0 < s["elapsed_s"] < time.monotonic() - started


class ScriptedSender:
    """Serves fixed bytes to the first client on a free loopback port, then closes (a sender cut mid-stream)."""

    def __init__(self, data: bytes):
        import socket

        self.data = data
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with self.server:
            self.server.settimeout(300)
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(self.data)


def test_cut_v2_stream_is_truncated_and_closes_the_books_as_the_python_receiver(spark, keras_cnn_model, cifar_test):
    """v2 lines 0..99 with 40..49 missing, one of them arriving with a corrupted header, and no trailer: the
    unreadable line is attributed to a missing number, the other 9 are lost, and the stream is truncated."""
    from iotbench.engines.spark_models import KerasUDFClassifier
    from iotbench.engines.spark_stream import NativeStream, StreamConfig, run_stream

    lines = []
    for i in range(100):
        body = wire.encode_v1(int(cifar_test.labels[i]), cifar_test.images[i], "%d")
        if i == 45:
            lines.append(b"~45:notatime:" + body)
        elif not 40 <= i < 50:
            lines.append(wire.v2_header(i, time.time_ns()) + body)
    server = ScriptedSender(b"".join(lines))
    result = run_stream(NativeStream(KerasUDFClassifier(keras_cnn_model)), spark,
                        StreamConfig(port=server.port, interval=2.0, api="structured", empty_intervals=2,
                                     first_data_timeout=180))
    s = result.summary()
    books = metrics.close_books(sent=None, truncated=True, received=91, classified=90, rejected_sequenced=0,
                                rejected_unsequenced=1, seen=90, highest=99, duplicated=0, reordered=0)
    assert (s["sent"], s["sent_at_least"], s["classified"], s["rejected"], s["lost"], s["garbage_lines"]) == (
        None, 100, 90, 1, 9, 0) == (books.sent, books.sent_at_least, books.classified, books.rejected, books.lost,
                                    books.garbage_lines)
    assert s["truncated"] and s["accounted"]
    assert metrics.exit_status(s)[0] == metrics.EXIT_TRUNCATED


def test_cluster_settings_retry_a_lost_executor_local_fails_fast():
    from iotbench.spark import SparkSettings, spark_conf_items

    def max_failures(master: str) -> str:
        return spark_conf_items(SparkSettings(master=master, bigdl=False))["spark.task.maxFailures"]

    assert max_failures("spark://127.0.0.1:7077") != "1"
    assert max_failures("local[2]") == "1"


CLUSTER_CHILD = """
import sys, time
from iotbench.spark import StandaloneCluster
cluster = StandaloneCluster(workers=1, cores=1, memory="1g", log_dir=sys.argv[1]).start()
print(" ".join(map(str, cluster.groups)), flush=True)
time.sleep(600)
"""


def test_standalone_cluster_leaves_no_jvm_when_its_starter_is_killed(tmp_path):
    """SIGKILL the process that started a cluster (as a killed pytest): its watchdog stops every JVM group."""
    import signal

    pytest.importorskip("pyspark")
    from iotbench.spark import process_groups_alive

    child = subprocess.Popen([sys.executable, "-c", CLUSTER_CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        groups = [int(g) for g in child.stdout.readline().split()]
        assert len(groups) == 2, "the cluster did not start"
        assert process_groups_alive(groups)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    deadline = time.monotonic() + 30
    while process_groups_alive(groups) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert process_groups_alive(groups) == []


def test_what_the_jvm_half_of_the_bigdl_stream_returns_becomes_one_outcome():
    """``iotbench.JvmLines`` packs label, class, sequence number and send time per image, and a
    ``reason TAB seq TAB sample`` line per rejected line; a rejection without a readable header (-1)
    is counted but carries no sequence number into the accounting."""
    import numpy as np

    from iotbench.engines.spark_stream import JVM_RECORD, outcome_from_jvm

    records = np.array([(3, 3, 0, 10), (8, 1, 1, 11), (5, 5, -1, 0)], JVM_RECORD).tobytes()
    out = outcome_from_jvm(records, "bad label\t2\t~2:5:x\nbad v2 header\t-1\t~oops\tstill the sample", 3, True)
    assert out.labels.tolist() == [3, 8, 5] and out.predicted.tolist() == [3, 1, 5] and out.correct == 2
    assert out.seq.tolist() == [0, 1, -1] and out.sent_ns.tolist() == [10, 11, 0]
    assert out.rejected == [("bad label", b"~2:5:x"), ("bad v2 header", b"~oops\tstill the sample")]
    assert out.rejected_seq.tolist() == [2]
    assert (out.sent_total, out.ended, out.received) == (3, True, 5)
    empty = outcome_from_jvm(b"", "", -1, False)
    assert (empty.received, empty.sent_total, empty.rejected) == (0, None, [])


def test_an_ordered_stream_dealt_round_robin_to_partitions_is_not_counted_reordered():
    """Structured Streaming's socket source hands an interval's lines to partitions in turn, and their
    results come back partition after partition; only an image arriving after a later one, across
    intervals, is a reorder."""
    from iotbench.engines.spark_stream import Outcome

    def interval(seq, rejected=()):
        seq = np.asarray(seq, np.int64)
        return Outcome(received=len(seq) + len(rejected), labels=seq % 10, predicted=seq % 10, seq=seq,
                       sent_ns=seq + 1, rejected_seq=np.asarray(rejected, np.int64)).in_sequence_order()

    tracker = metrics.SequenceTracker()
    first = interval([0, 2, 4, 6, 1, 3, 7])  # partition 0 then partition 1; 5 is late
    assert first.seq.tolist() == [0, 1, 2, 3, 4, 6, 7] and first.labels.tolist() == [0, 1, 2, 3, 4, 6, 7]
    assert first.sent_ns.tolist() == [s + 1 for s in first.seq.tolist()]
    tracker.update(first.seq)
    tracker.update(interval([9, 5, 8], rejected=[11, 10]).seq)
    assert tracker.reordered == 1  # 5, after 7 of the interval before
