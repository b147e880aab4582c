"""The highest rate a streaming path sustains: step the sender's rate until a backlog builds up.

"Max rate" for a streaming classifier is not what an unthrottled sender pushes through (that
measures how fast a backlog drains, with latencies growing all the while), but the highest
offered rate at which the receiver keeps up.  :func:`search` finds it by running the stream at
a sequence of rates: it multiplies the rate by ``factor`` while the path keeps up, then bisects
between the last rate that kept up and the first that did not.

A run *kept up* (:func:`kept_up`) when every image is accounted for with none lost and the
latency of the last quarter of images is within ``tolerance_s`` of the first quarter's
(:func:`iotbench.metrics.latency_growth_ms`): a backlog makes later images wait longer, by
about ``(rate / capacity - 1) × run length``.

Pure logic: the caller supplies ``run_at(rate) -> summary`` (it starts the sender and the stream).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Step:
    rate: float
    summary: dict
    kept_up: bool

    def brief(self) -> dict:
        s = self.summary
        return {"rate": self.rate, "kept_up": self.kept_up, "images_per_sec": s.get("images_per_sec"),
                "latency_growth_ms": s.get("latency_growth_ms"), "p99_ms": s.get("p99_ms"),
                "classified": s.get("classified"), "lost": s.get("lost")}


def kept_up(summary: dict, tolerance_s: float) -> bool:
    """All images accounted for, none lost, and latency not growing by more than ``tolerance_s`` over the run.

    A run whose sender could not finish (``sender_finished`` False) did not keep up either, nor did
    one whose loss could not be measured (``lost`` None: a stream without sequence numbers).
    """
    if summary.get("sender_finished") is False:
        return False
    growth, sent, lost = summary.get("latency_growth_ms"), summary.get("sent"), summary.get("lost")
    if sent is None or lost is None or growth is None:
        return False
    accounted = sent == summary["classified"] + summary["rejected"] + lost
    return bool(accounted and lost == 0 and growth <= tolerance_s * 1000)


def search(run_at: Callable[[float], dict], start: float, tolerance_s: float, factor: float = 1.5,
           max_rate: float = 50_000, refine: int = 2,
           on_step: Callable[[Step], None] | None = None) -> list[Step]:
    """Steps of the rate search, in the order run; see :func:`sustained_rate` for the answer."""
    steps: list[Step] = []

    def run(rate: float) -> Step:
        summary = run_at(rate)
        step = Step(rate, summary, kept_up(summary, tolerance_s))
        steps.append(step)
        if on_step:
            on_step(step)
        return step

    rate = start
    while run(rate).kept_up and rate * factor <= max_rate:
        rate = rate * factor
    good = sustained_rate(steps)
    bad = min((s.rate for s in steps if not s.kept_up), default=None)
    for _ in range(refine):
        if good is None or bad is None:
            break
        middle = round((good + bad) / 2)
        if run(middle).kept_up:
            good = middle
        else:
            bad = middle
    return steps


def sustained_rate(steps: list[Step]) -> float | None:
    """The highest rate that kept up below the lowest rate that did not (None when even the first failed)."""
    failed = [s.rate for s in steps if not s.kept_up]
    ceiling = min(failed) if failed else float("inf")
    passed = [s.rate for s in steps if s.kept_up and s.rate < ceiling]
    return max(passed) if passed else None


def result(steps: list[Step]) -> dict:
    """The search's answer as one summary: the measured figures of the step at the sustained rate.

    ``images_per_sec`` stays what the receiver measured at that step (first image received to last
    classified, so it includes the last images' latency and reads below the offered rate);
    ``offered_images_per_sec`` is the rate the sender was asked for, and ``sustained_rate`` the
    search's answer (None when even the first rate was too fast; the summary is then the first step's).
    """
    if not steps:
        raise ValueError("no steps: the rate search did not run")
    best = sustained_rate(steps)
    step = next((s for s in steps if s.kept_up and s.rate == best), steps[0])
    return {**step.summary, "offered_images_per_sec": step.rate, "sustained_rate": best}
