"""Capacity at a latency bound: the highest offered rate a streaming path serves with p99 ≤ B.

An unthrottled sender measures how fast a backlog drains, with latencies growing all the while;
what a deployment is sized with is the highest rate at which the path keeps up *and* its p99
latency stays under a bound (MLPerf's Server scenario).  :func:`search` finds it by running the
stream at a sequence of offered rates (the caller's ``run_at(rate)`` streams Poisson arrivals at
that rate and returns the receiver's summary): it multiplies the rate by ``factor`` while the path
keeps up, then bisects between the highest rate that kept up and the lowest that did not until
they are within ``resolution`` (relative) of each other.

A step *kept up* (:func:`verdict`) when every image is accounted for with none lost, the sender
finished, the rate the sender achieved is at least ``min_achieved`` (0.8) of the offered one and
p99 ≤ the bound; the reason of a failed step is recorded beside it.  The sender's own rate is the
one that says whether the offer was made (a receiver that falls behind holds the sender back through
TCP, and latencies stamped at sending then look fine); the receiver's measured rate runs from the
first image sent to the last one classified, so a path with a latency floor of seconds (Spark's
trigger) reads below the offer by that floor over the step's length even when it kept up, and it
is only the fallback where the sender's rate is unknown.  The answer (:func:`result`) reads
"capacity = R images/s at p99 ≤ B ms", with ``offered_images_per_sec`` (R, what the sender was
asked for), ``images_per_sec`` (what the receiver measured at that step) and every step.

Pure logic: no sockets here, so the bisection and the verdict have unit tests of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

#: Default p99 bound of the edge paths (ms); the Spark paths use a few trigger intervals.
EDGE_P99_BOUND_MS = 100.0
#: Trigger intervals a Spark micro-batch may wait and run within: ingest, the batch, the next trigger.
#: Five: on 2 cores a Structured Streaming micro-batch of the native engine at a low rate (250 images/s,
#: 1 s trigger, warm workers) measured p99 1.6 s, and 2.1 s at 1,000 images/s with no growth, while
#: BigDL's sat at 2.4 s at 250 images/s; three intervals left BigDL no margin above its own floor.
SPARK_BOUND_INTERVALS = 5
#: A step whose measured rate is below this fraction of the offered one fell behind (the sender's
#: own measured rate varies by ~1/sqrt(images) with Poisson gaps; 0.8 leaves room for that and
#: for the receiver's clock, which starts at the first image and ends at the last classified).
MIN_ACHIEVED = 0.8


@dataclass(frozen=True)
class Verdict:
    kept_up: bool
    reason: str  # "ok" or why not


@dataclass
class Step:
    offered: float
    summary: dict
    verdict: Verdict = field(default_factory=lambda: Verdict(False, "not judged"))

    @property
    def kept_up(self) -> bool:
        return self.verdict.kept_up

    @property
    def rate(self) -> float:  # the sustained-rate search's name for it
        return self.offered

    def brief(self) -> dict:
        """The step as committed: offered and measured rate, latency, accounting, verdict."""
        s = self.summary
        return {"offered_images_per_sec": self.offered, "rate": self.offered,
                "images_per_sec": s.get("images_per_sec"), "sender_images_per_sec": sender_images_per_sec(s),
                "p50_ms": s.get("p50_ms"), "p99_ms": s.get("p99_ms"),
                "kept_up": self.kept_up, "reason": self.verdict.reason, "sent": s.get("sent"),
                "classified": s.get("classified"), "rejected": s.get("rejected"), "lost": s.get("lost"),
                "latency_growth_ms": s.get("latency_growth_ms"), "sender_finished": s.get("sender_finished")}


def accounting_problem(summary: dict) -> str | None:
    """Why the step's books do not close with nothing lost, or None when they do."""
    if summary.get("sender_finished") is False:
        return "sender did not finish"
    sent, lost = summary.get("sent"), summary.get("lost")
    if sent is None or lost is None:
        return "accounting not measurable (no sequence numbers or no trailer)"
    if sent != summary.get("classified", 0) + summary.get("rejected", 0) + lost:
        return "accounting does not close"
    if lost:
        return f"{lost} lost"
    return None


def verdict(summary: dict, offered: float, p99_bound_ms: float | None,
            growth_tolerance_ms: float | None = None, min_achieved: float = MIN_ACHIEVED) -> Verdict:
    """Did the path keep up at ``offered`` images/s?  (See the module docstring for the rule.)

    ``p99_bound_ms`` None judges on latency growth alone (``growth_tolerance_ms``), the older rule
    of the sustained-rate search; a figure the rule needs that was not measured fails the step.
    """
    if problem := accounting_problem(summary):
        return Verdict(False, problem)
    if p99_bound_ms is not None:
        p99 = summary.get("p99_ms")
        if p99 is None:
            return Verdict(False, "p99 not measured")
        if p99 > p99_bound_ms:
            return Verdict(False, f"p99 {p99:.1f} ms > {p99_bound_ms:g} ms")
    if growth_tolerance_ms is not None:
        growth = summary.get("latency_growth_ms")
        if growth is None:
            return Verdict(False, "latency growth not measured")
        if growth > growth_tolerance_ms:
            return Verdict(False, f"latency grew {growth:.0f} ms > {growth_tolerance_ms:g} ms")
    if min_achieved and offered > 0:
        sender_rate = sender_images_per_sec(summary)
        achieved = sender_rate if sender_rate is not None else summary.get("images_per_sec")
        if achieved is None:
            return Verdict(False, "rate not measured")
        if achieved < min_achieved * offered:
            who = "sender achieved" if sender_rate is not None else "measured"
            return Verdict(False, f"{who} {achieved:.0f} < {min_achieved:g} × offered {offered:g}")
    return Verdict(True, "ok")


def sender_images_per_sec(summary: dict) -> float | None:
    """The rate the sender reported having sent at (``summary["sender"]["rate"]``), None when unknown."""
    rate = (summary.get("sender") or {}).get("rate")
    return None if rate is None else float(rate)


def bracket(steps: list[Step]) -> tuple[float | None, float | None]:
    """(highest rate that kept up below the lowest that failed, lowest that failed); None where none."""
    failed = [s.offered for s in steps if not s.kept_up]
    bad = min(failed) if failed else None
    passed = [s.offered for s in steps if s.kept_up and (bad is None or s.offered < bad)]
    return (max(passed) if passed else None), bad


def next_rate(good: float | None, bad: float | None, *, start: float, factor: float, resolution: float,
              max_rate: float, min_rate: float | None = None) -> float | None:
    """The next offered rate to try, or None when the search is done.

    Ramp (no failure yet): ``good × factor`` up to ``max_rate``.  Bracketed: the midpoint, rounded to
    whole images/s, until ``bad / good - 1 ≤ resolution``.  When nothing kept up yet, ``bad / factor``
    down to ``min_rate``; without a ``min_rate`` a first step that failed ends the search.
    """
    if good is None:
        if bad is None:
            return start
        lower = bad / factor
        return lower if min_rate is not None and lower >= min_rate else None
    if bad is None:
        nxt = good * factor
        return nxt if nxt <= max_rate else None
    if bad / good - 1 <= resolution:
        return None
    middle = float(round((good + bad) / 2))
    return middle if good < middle < bad else None


def search(run_at: Callable[[float], dict], start: float, judge: Callable[[dict, float], Verdict], *,
           factor: float = 2.0, resolution: float = 0.1, max_rate: float = 50_000, max_steps: int = 12,
           max_bisections: int | None = None, on_step: Callable[[Step], None] | None = None,
           min_rate: float | None = None) -> list[Step]:
    """Steps of the search, in the order run (``judge(summary, offered)`` gives each its verdict);
    ``min_rate``: step down from a failed ``start`` to this rate before giving up."""
    steps: list[Step] = []
    bisections = 0
    while len(steps) < max_steps:
        good, bad = bracket(steps)
        rate = next_rate(good, bad, start=start, factor=factor, resolution=resolution, max_rate=max_rate,
                         min_rate=min_rate)
        if rate is None:
            break
        if bad is not None:
            if max_bisections is not None and bisections >= max_bisections:
                break
            bisections += 1
        summary = run_at(rate)
        step = Step(rate, summary, judge(summary, rate))
        steps.append(step)
        if on_step:
            on_step(step)
    return steps


def p99_judge(p99_bound_ms: float, min_achieved: float = MIN_ACHIEVED) -> Callable[[dict, float], Verdict]:
    return lambda summary, offered: verdict(summary, offered, p99_bound_ms, min_achieved=min_achieved)


def capacity(steps: list[Step]) -> float | None:
    """The offered rate of the answer: the highest that kept up below the lowest that failed."""
    return bracket(steps)[0]


def result(steps: list[Step], p99_bound_ms: float | None, resolution: float | None = None) -> dict:
    """The search's answer as one summary: the figures measured at the capacity step, plus every step.

    When even the first rate failed, capacity is None and the figures are the first step's.
    """
    if not steps:
        raise ValueError("no steps: the capacity search did not run")
    best = capacity(steps)
    step = next((s for s in steps if s.kept_up and s.offered == best), steps[0])
    return {**step.summary, "offered_images_per_sec": step.offered, "capacity_images_per_sec": best,
            "sustained_rate": best, "p99_bound_ms": p99_bound_ms, "resolution": resolution,
            "steps": [s.brief() for s in steps]}


def headline(res: dict) -> str:
    """``capacity = R images/s at p99 ≤ B ms (measured M images/s, p99 P ms)``, n/a where not measured."""
    best, bound = res.get("capacity_images_per_sec"), res.get("p99_bound_ms")
    bound_text = "n/a" if bound is None else f"{bound:g}"
    if best is None:
        first = res.get("offered_images_per_sec")
        return f"capacity = n/a at p99 ≤ {bound_text} ms (even the first rate, {first:g}/s, failed)"
    rate, p99 = res.get("images_per_sec"), res.get("p99_ms")
    return (f"capacity = {best:g} images/s at p99 ≤ {bound_text} ms (measured "
            f"{'n/a' if rate is None else f'{rate:.0f}'} images/s, p99 {'n/a' if p99 is None else f'{p99:.1f}'} ms)")
