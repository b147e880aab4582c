"""Accounting and latency arithmetic: the figures every path reports."""

from __future__ import annotations

import numpy as np
import pytest

from iotbench.metrics import RunMetrics, SequenceTracker, percentiles_ms


def test_sequence_tracker_counts_lost_duplicated_and_reordered():
    t = SequenceTracker()
    t.update(np.array([0, 1, 2, 5, 4, 4, 7]))
    assert t.duplicated == 1
    assert t.reordered == 1  # 4 after 5
    assert t.lost(sent_total=8) == 2  # 3 and 6 never arrived
    assert t.lost(sent_total=None) == 2  # gaps below the highest seen


def test_percentiles_in_milliseconds():
    lat = np.arange(1, 101) * 1_000_000  # 1..100 ms
    p = percentiles_ms(lat)
    assert p["p50_ms"] == pytest.approx(50.5) and p["max_ms"] == 100.0
    assert percentiles_ms(np.empty(0)) == {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}


def test_run_metrics_accounting_holds_with_rejections_and_loss():
    m = RunMetrics(sent=10)
    m.mark_received(8, at_ns=1_000_000_000)
    m.reject([("bad label", b"x")], seqs=np.array([3]))
    labels = np.array([1, 2, 3, 4, 5, 6, 7])
    m.record(labels, np.array([1, 2, 3, 0, 5, 6, 7]), seq=np.array([0, 1, 2, 4, 5, 6, 7]),
             sent_ns=np.full(7, 1_000_000_000), at_ns=2_000_000_000)
    s = m.summary()
    assert (s["classified"], s["correct"], s["rejected"], s["lost"]) == (7, 6, 1, 2)
    assert m.accounted()
    assert s["accuracy"] == pytest.approx(6 / 7)
    assert s["images_per_sec"] == pytest.approx(7.0)
    assert s["p50_ms"] == pytest.approx(1000.0)
