"""The capacity search at a p99 bound: pure logic over run summaries (real streams: benchmarks/test_capacity.py)."""

from __future__ import annotations

import numpy as np
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


def test_the_offer_is_judged_on_the_senders_own_rate_where_it_is_known():
    """A receiver's rate runs from the first image sent to the last classified: with a latency floor of
    3 s over a 10 s step it reads 0.77 × the offer although the path kept up; a sender held back by
    TCP (the receiver behind) reports its low rate itself."""
    floor = {**summary(250, 1000, base_ms=3000), "p99_ms": 3200.0, "images_per_sec": 192.0}
    assert not capacity.verdict(floor, 250, 5000).kept_up
    assert capacity.verdict({**floor, "sender": {"rate": 249.0}}, 250, 5000).kept_up
    held = capacity.verdict({**floor, "images_per_sec": 250.0, "sender": {"rate": 150.0}}, 250, 5000)
    assert held.reason == "sender achieved 150 < 0.8 × offered 250"
    step = capacity.Step(250, {**floor, "sender": {"rate": 249.0}})
    assert step.brief()["sender_images_per_sec"] == 249.0


def test_next_rate_ramps_then_bisects_to_the_resolution_and_stops():
    kw = {"start": 100.0, "factor": 2.0, "resolution": 0.1, "max_rate": 10_000.0}
    assert capacity.next_rate(None, None, **kw) == 100
    assert capacity.next_rate(None, 100, **kw) is None  # the first rate failed
    assert capacity.next_rate(400, None, **kw) == 800
    assert capacity.next_rate(8000, None, **kw) is None  # beyond max_rate
    assert capacity.next_rate(400, 800, **kw) == 600
    assert capacity.next_rate(1000, 1090, **kw) is None  # within 10%
    assert capacity.next_rate(None, 100, **kw, min_rate=20) == 50  # the first rate failed: step down
    assert capacity.next_rate(None, 25, **kw, min_rate=20) is None  # ...but not below min_rate


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


# --------------------------------------------------------------------------- the latency-growth rule
# The older Spark rate search (benchmarks/test_spark.py's sustained rate) judges a step on accounting and latency
# *growth* with no p99 bound: ``verdict(..., None, growth_tolerance_ms=...)``, ramping by 1.5 with a few bisections.


def growth_summary(rate: float, cap: float, seconds: float = 10.0, lost: int = 0) -> dict:
    """What a run at ``rate`` reports when the receiver drains ``cap`` images/s (backlog model)."""
    images = int(rate * seconds)
    growth_s = max(0.0, rate / cap - 1.0) * seconds
    return {"sent": images, "classified": images - lost, "rejected": 0, "lost": lost,
            "latency_growth_ms": 50.0 + growth_s * 1000, "images_per_sec": min(rate, cap)}


def growth_judge(tolerance_s: float = 1.0):
    return lambda s, offered: capacity.verdict(s, offered, None, growth_tolerance_ms=tolerance_s * 1000,
                                               min_achieved=0)


def growth_search(run_at, start: float, bisections: int = 3) -> list[capacity.Step]:
    return capacity.search(run_at, start, growth_judge(), factor=1.5, resolution=0, max_rate=50_000,
                           max_steps=10**6, max_bisections=bisections)


def test_latency_growth_is_flat_when_keeping_up_and_grows_with_a_backlog():
    from iotbench.metrics import latency_growth_ms

    steady = np.full(400, 300e6)  # 300 ms each
    backlog = np.linspace(300e6, 5_300e6, 400)  # waits 5 s longer by the end
    assert latency_growth_ms(steady) == 0
    assert latency_growth_ms(backlog) > 3_000
    assert latency_growth_ms(np.ones(3)) is None


def test_growth_rule_needs_full_accounting_no_loss_and_flat_latency():
    judge = growth_judge()
    assert judge(growth_summary(800, 1000), 0).kept_up
    assert not judge(growth_summary(1500, 1000), 0).kept_up  # latency grows 5 s
    assert not judge(growth_summary(800, 1000, lost=3), 0).kept_up
    assert not judge({**growth_summary(800, 1000), "sent": None}, 0).kept_up
    assert not judge({**growth_summary(800, 1000), "lost": None}, 0).kept_up  # loss not measured: not kept up
    assert not judge({**growth_summary(800, 1000), "sender_finished": False}, 0).kept_up
    assert not judge({**growth_summary(800, 1000), "latency_growth_ms": None}, 0).kept_up


def test_growth_search_brackets_the_capacity_and_refines_it():
    cap = 1234.0
    rates: list[float] = []

    def run_at(rate):
        rates.append(rate)
        return growth_summary(rate, cap)

    steps = growth_search(run_at, 250)
    best = capacity.capacity(steps)
    # kept up below capacity × (1 + tolerance / run length) = 1,357; failed above it
    assert best is not None and 0.85 * cap <= best <= 1.1 * cap, [s.brief() for s in steps]
    assert rates[:4] == [250, 375, 562.5, 843.75]
    assert len(steps) == len(rates) <= 10


def test_growth_result_keeps_the_measured_rate_beside_the_offered_one():
    def run_at(rate):
        s = growth_summary(rate, 1234.0)
        s["images_per_sec"] = round(0.8 * rate, 1)  # measured: below the offered rate (latency of the last images)
        return s

    steps = growth_search(run_at, 250)
    result = capacity.result(steps, None)
    best = capacity.capacity(steps)
    assert result["sustained_rate"] == result["offered_images_per_sec"] == best
    assert result["images_per_sec"] == round(0.8 * best, 1)  # never overwritten with the offered rate
    assert result["classified"] == int(best * 10)
    assert [s["rate"] for s in result["steps"]] == [s.offered for s in steps]


def test_growth_result_when_even_the_first_rate_is_too_fast():
    steps = growth_search(lambda rate: growth_summary(rate, 100), 1000)
    assert len(steps) == 1 and capacity.capacity(steps) is None
    result = capacity.result(steps, None)
    assert result["sustained_rate"] is None
    assert result["offered_images_per_sec"] == 1000 and result["images_per_sec"] == 100


def test_a_search_whose_first_rate_fails_steps_down_to_min_rate():
    steps = capacity.search(lambda rate: summary(rate, 100), 400, capacity.p99_judge(100), factor=2,
                            resolution=0.2, min_rate=50)
    assert [s.offered for s in steps][:3] == [400, 200, 100]
    assert capacity.capacity(steps) is not None and 100 <= capacity.capacity(steps) < 200
    assert not capacity.search(lambda rate: summary(rate, 10), 400, capacity.p99_judge(100), min_rate=50)[-1].kept_up
