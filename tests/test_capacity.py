"""The capacity search at a p99 bound: pure logic over run summaries (real streams: benchmarks/test_capacity.py)."""

from __future__ import annotations

import pytest

from iotbench import capacity


def summary(rate: float, cap: float, *, base_ms: float = 30.0, seconds: float = 5.0, lost: int = 0) -> dict:
    """A queue model: p99 stays near ``base_ms`` below ``cap`` and grows with the backlog above it."""
    images = int(rate * seconds)
    backlog_s = max(0.0, rate / cap - 1.0) * seconds
    return {"sent": images, "classified": images - lost, "rejected": 0, "lost": lost,
            "images_per_sec": min(rate, cap), "p50_ms": base_ms / 2 + backlog_s * 500,
            "p99_ms": base_ms * (1 + rate / cap) + backlog_s * 1000, "latency_growth_ms": backlog_s * 1000}


def test_verdict_needs_closed_books_the_bound_and_the_offered_rate():
    ok = capacity.verdict(summary(500, 1000), 500, 100)
    assert ok == capacity.Verdict(True, "ok")
    assert "p99" in capacity.verdict(summary(1500, 1000), 1500, 100).reason
    assert capacity.verdict(summary(500, 1000, lost=2), 500, 100).reason == "2 lost"
    assert not capacity.verdict({**summary(500, 1000), "sender_finished": False}, 500, 100).kept_up
    assert not capacity.verdict({**summary(500, 1000), "lost": None}, 500, 100).kept_up
    assert not capacity.verdict({**summary(500, 1000), "p99_ms": None}, 500, 100).kept_up
    assert not capacity.verdict({**summary(500, 1000), "classified": 10}, 500, 100).kept_up
    slow = {**summary(500, 1000), "images_per_sec": 300.0}  # p99 fine, but only 60% of what was offered
    assert "measured" in capacity.verdict(slow, 500, 100).reason


def test_next_rate_ramps_then_bisects_to_the_resolution_and_stops():
    kw = {"start": 100.0, "factor": 2.0, "resolution": 0.1, "max_rate": 10_000.0}
    assert capacity.next_rate(None, None, **kw) == 100
    assert capacity.next_rate(None, 100, **kw) is None  # the first rate failed
    assert capacity.next_rate(400, None, **kw) == 800
    assert capacity.next_rate(8000, None, **kw) is None  # beyond max_rate
    assert capacity.next_rate(400, 800, **kw) == 600
    assert capacity.next_rate(1000, 1090, **kw) is None  # within 10%


@pytest.mark.parametrize("cap", [333.0, 1234.0, 4000.0])
def test_search_brackets_the_capacity_within_the_resolution(cap):
    bound = 100.0
    steps = capacity.search(lambda r: summary(r, cap), 100, capacity.p99_judge(bound), resolution=0.05)
    good, bad = capacity.bracket(steps)
    # p99 = 30 ms × (1 + r / cap) ≤ 100 ms holds up to the capacity, above it the backlog breaks the bound
    assert good is not None and bad is not None and good <= cap < bad * 1.01, [s.brief() for s in steps]
    assert bad / good - 1 <= 0.05 or bad - good <= 1
    assert len(steps) <= 12
    res = capacity.result(steps, bound, 0.05)
    assert res["offered_images_per_sec"] == res["capacity_images_per_sec"] == good
    assert res["images_per_sec"] == min(good, cap) and res["p99_bound_ms"] == bound
    assert [s["offered_images_per_sec"] for s in res["steps"]] == [s.offered for s in steps]
    assert capacity.headline(res).startswith(f"capacity = {good:g} images/s at p99 ≤ 100 ms")


def test_first_rate_too_fast_gives_no_capacity():
    steps = capacity.search(lambda r: summary(r, 10), 1000, capacity.p99_judge(100))
    assert len(steps) == 1 and capacity.capacity(steps) is None
    res = capacity.result(steps, 100)
    assert res["capacity_images_per_sec"] is None and res["offered_images_per_sec"] == 1000
    assert "n/a" in capacity.headline(res)


def test_a_failure_below_a_pass_caps_the_answer():
    """Noise: a step that failed below one that passed wins (the capacity is below the lowest failure)."""
    steps = [capacity.Step(r, {}, capacity.Verdict(ok, "")) for r, ok in ((100, True), (200, True), (400, False),
                                                                          (300, False), (250, True))]
    assert capacity.bracket(steps) == (250, 300)
    noisy = steps + [capacity.Step(350, {}, capacity.Verdict(True, "ok"))]
    assert capacity.bracket(noisy) == (250, 300)


def test_runs_at_max_rate_label_their_latency_as_backlog():
    from iotbench.report import extra_info

    summary = {"classified": 100, "images_per_sec": 900.0, "p50_ms": 800.0, "p99_ms": 2500.0, "rejected": 0, "lost": 0}
    at_max = extra_info(summary, engine="keras", model="m", batch=64, wire="binary", arrival="max")
    assert at_max["p99_ms"] is None and at_max["backlog_p99_ms"] == 2500.0 and at_max["at_max_rate"] is True
    paced = extra_info(summary, engine="keras", model="m", batch=64, wire="binary", arrival="poisson")
    assert paced["p99_ms"] == 2500.0 and "backlog_p99_ms" not in paced
