"""The one result type: each path's constructor, None for what was not measured, stored runs read back as stored."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from iotbench.metrics import RunMetrics
from iotbench.receiver import ReceiveResult
from iotbench.summary import FIXED_KEYS, Summary

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results"


def v2_metrics(sent: int | None = 5) -> RunMetrics:
    """Four of five images classified (three right), one rejected with a readable sequence number."""
    m = RunMetrics(sent=sent)
    m.mark_received(5, at_ns=1_000_000)
    stamps = np.array([1_000_000, 1_000_000, 0, 0])  # two stamped (latency measured), two not
    m.record(np.array([1, 2, 3, 4]), np.array([1, 2, 3, 0]), np.array([0, 1, 2, 3]), stamps, at_ns=11_000_000)
    m.reject([("values", b"bad")], seqs=np.array([4]))
    return m


def test_from_metrics_keeps_measured_zeros_and_the_fixed_keys_first():
    s = Summary.from_metrics(v2_metrics(), engine="null", model="-", batch=8, wire="v2 %d")
    info = s.extra_info()
    assert tuple(info) == FIXED_KEYS
    assert (s.images, s.rejected, s.lost) == (4, 1, 0)  # lost measured: 0 is a figure here
    assert s.accuracy == pytest.approx(0.75)
    assert s.p99_ms == pytest.approx(10.0)  # the two stamped images waited 10 ms
    assert s.images_per_sec == pytest.approx(4 / 0.01)


def test_from_metrics_of_a_v1_stream_has_no_loss_figure():
    m = RunMetrics()  # no sender count, no sequence numbers
    m.mark_received(2, at_ns=1)
    m.record(np.array([1, 2]), np.array([1, 2]), np.array([-1, -1]), np.zeros(2, np.int64), at_ns=5)
    s = Summary.from_metrics(m, engine="null", model="-", batch=8, wire="v1 %f")
    assert s.lost is None and s.p50_ms is None and s.p99_ms is None  # not measured: None, never 0
    assert s.rejected == 0


def test_from_receive_unscored_has_no_accuracy():
    scored = Summary.from_receive(ReceiveResult(v2_metrics(), ended_cleanly=True, scored=True), engine="keras",
                                  model="cnn", batch=64, wire="binary")
    unscored = Summary.from_receive(ReceiveResult(v2_metrics(), ended_cleanly=True, scored=False), engine="keras",
                                    model="cnn", batch=64, wire="binary")
    assert scored.accuracy == pytest.approx(0.75) and unscored.accuracy is None
    assert unscored.images == 4 and unscored.lost == 0


def test_from_receive_at_max_rate_reports_the_backlog_not_a_p99():
    result = ReceiveResult(v2_metrics(), ended_cleanly=True, scored=True)
    info = Summary.from_receive(result, engine="null", model="-", batch=8, wire="v2 %d", arrival="max").extra_info()
    assert info["p99_ms"] is None and info["backlog_p99_ms"] == pytest.approx(10.0) and info["at_max_rate"] is True
    assert Summary.from_extra_info(info).extra_info() == info  # read back as stored, not relabelled twice


def test_from_spark_max_is_in_memory_whatever_its_summary_says():
    from iotbench.engines.spark_max import Iteration, MaxResult

    result = MaxResult("bigdl", "cnn.bigdl", "cifar10-test", "local[2]", 2, 64,
                       iterations=[Iteration(0, 100, 80, 0.5), Iteration(1, 100, 82, 0.5)], elapsed_s=1.0)
    assert result.summary()["rejected"] == 0 and result.summary()["lost"] == 0  # the engine's own dict says 0
    s = Summary.from_spark_max(result, bigdl_engine="mkl")
    assert s.rejected is None and s.lost is None and s.p50_ms is None and s.p99_ms is None
    assert (s.images, s.accuracy, s.images_per_sec) == (200, pytest.approx(0.81), 200.0)
    assert (s.engine, s.model, s.batch, s.wire) == ("bigdl", "cnn.bigdl", 64, "memory")
    info = s.extra_info()
    assert info["path"] == "max" and info["master"] == "local[2]" and info["bigdl_engine"] == "mkl"


def test_from_spark_stream_keeps_the_stream_accounting():
    from iotbench.engines.spark_stream import StreamResult

    result = StreamResult("native", "cnn.keras", "structured", "local[2]", 1.0, v2_metrics())
    s = Summary.from_spark_stream(result, batch=64, wire="v2%d", sent=5)
    assert (s.images, s.rejected, s.lost, s.batch) == (4, 1, 0, 64)
    info = s.extra_info()
    assert (info["path"], info["api"], info["master"], info["sent"]) == ("stream", "structured", "local[2]", 5)


def test_from_torch_is_in_memory_and_random_init_has_no_accuracy():
    pytest.importorskip("torch")
    from iotbench.engines.torch_imagenet import RunResult, TorchOptions

    options = TorchOptions(arch="resnet18", batch=8, device="cpu").resolved(cuda_available=False)
    result = RunResult(images=80, iterations=10, elapsed_s=2.0, acc1=None, acc5=None, warmup_s=0.1,
                       options=options, device_name="cpu", peak_memory_mb=None, peak_memory_kind="rss",
                       weights=None)
    s = Summary.from_torch(result, variant="fp32-eager")
    assert (s.images, s.images_per_sec, s.model, s.batch, s.wire) == (80, 40.0, "resnet18", 8, "in-memory")
    assert s.engine == "torch-imagenet"  # the name stored runs carry
    assert s.accuracy is None and s.rejected is None and s.lost is None and s.p99_ms is None
    assert s.get("variant") == "fp32-eager"


def test_from_extra_info_of_an_older_run_has_none_for_missing_keys():
    s = Summary.from_extra_info({"images_per_sec": 12.5, "engine": "null", "gates": {"g": {"value": 1, "floor": 1}}})
    assert s.images is None and s.lost is None and s.get("images_per_sec") == 12.5
    assert "lost" in s and "gates" in s and "steps" not in s and s.get("steps") is None
    assert s.get("gates") == {"g": {"value": 1, "floor": 1}} and s.get("nothing", "x") == "x"


def test_every_committed_run_reads_back_as_stored():
    """What the report reads is exactly what the benchmarks stored (plus None for fixed keys an old run lacks)."""
    files = sorted(RESULTS.glob("*.json"))
    if not files:
        pytest.skip("no committed runs under benchmarks/results/")
    for f in files:
        for bench in json.loads(f.read_text()).get("benchmarks", []):
            info = bench.get("extra_info") or {}
            back = Summary.from_extra_info(info).extra_info()
            assert back == {**{k: None for k in FIXED_KEYS}, **info}, (f.name, bench.get("name"))
