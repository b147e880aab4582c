"""The rate search: pure logic over run summaries (the real stream runs in benchmarks/test_spark.py)."""

from __future__ import annotations

import numpy as np

from iotbench import sustain
from iotbench.metrics import latency_growth_ms


def summary(rate: float, capacity: float, seconds: float = 10.0, lost: int = 0) -> dict:
    """What a run at ``rate`` reports when the receiver drains ``capacity`` images/s (backlog model)."""
    images = int(rate * seconds)
    growth_s = max(0.0, rate / capacity - 1.0) * seconds
    return {"sent": images, "classified": images - lost, "rejected": 0, "lost": lost,
            "latency_growth_ms": 50.0 + growth_s * 1000, "images_per_sec": min(rate, capacity)}


def test_latency_growth_is_flat_when_keeping_up_and_grows_with_a_backlog():
    steady = np.full(400, 300e6)  # 300 ms each
    backlog = np.linspace(300e6, 5_300e6, 400)  # waits 5 s longer by the end
    assert latency_growth_ms(steady) == 0
    assert latency_growth_ms(backlog) > 3_000
    assert latency_growth_ms(np.ones(3)) is None


def test_kept_up_needs_full_accounting_no_loss_and_flat_latency():
    assert sustain.kept_up(summary(800, 1000), tolerance_s=1.0)
    assert not sustain.kept_up(summary(1500, 1000), tolerance_s=1.0)  # latency grows 5 s
    assert not sustain.kept_up(summary(800, 1000, lost=3), tolerance_s=1.0)
    assert not sustain.kept_up({**summary(800, 1000), "sent": None}, tolerance_s=1.0)
    assert not sustain.kept_up({**summary(800, 1000), "sender_finished": False}, tolerance_s=1.0)


def test_search_brackets_the_capacity_and_refines_it():
    capacity = 1234.0
    rates: list[float] = []

    def run_at(rate):
        rates.append(rate)
        return summary(rate, capacity)

    steps = sustain.search(run_at, start=250, tolerance_s=1.0, factor=1.5, refine=3)
    best = sustain.sustained_rate(steps)
    # kept up below capacity × (1 + tolerance / run length) = 1,357; failed above it
    assert best is not None and 0.85 * capacity <= best <= 1.1 * capacity, [s.brief() for s in steps]
    assert rates[:4] == [250, 375, 562.5, 843.75]
    assert len(steps) == len(rates) <= 10


def test_search_reports_none_when_even_the_first_rate_is_too_fast():
    steps = sustain.search(lambda rate: summary(rate, 100), start=1000, tolerance_s=1.0)
    assert sustain.sustained_rate(steps) is None and len(steps) == 1


def test_a_run_whose_loss_was_not_measured_did_not_keep_up():
    assert not sustain.kept_up({**summary(800, 1000), "lost": None}, tolerance_s=1.0)


def test_result_keeps_the_measured_rate_beside_the_offered_one():
    capacity = 1234.0

    def run_at(rate):
        s = summary(rate, capacity)
        s["images_per_sec"] = round(0.8 * rate, 1)  # measured: below the offered rate (latency of the last images)
        return s

    steps = sustain.search(run_at, start=250, tolerance_s=1.0, refine=3)
    result = sustain.result(steps)
    best = sustain.sustained_rate(steps)
    assert result["sustained_rate"] == result["offered_images_per_sec"] == best
    assert result["images_per_sec"] == round(0.8 * best, 1)  # never overwritten with the offered rate
    assert result["classified"] == int(best * 10)


def test_result_when_even_the_first_rate_is_too_fast():
    steps = sustain.search(lambda rate: summary(rate, 100), start=1000, tolerance_s=1.0)
    result = sustain.result(steps)
    assert result["sustained_rate"] is None
    assert result["offered_images_per_sec"] == 1000 and result["images_per_sec"] == 100
