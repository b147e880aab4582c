"""Deprecated alias of :mod:`iotbench.capacity`, to be deleted: nothing new may import it.

Its one remaining user is ``test_spark_sustained_rate`` in benchmarks/test_spark.py; once that calls
:func:`iotbench.capacity.search` with the growth rule (``capacity.verdict(summary, offered, None,
growth_tolerance_ms=..., min_achieved=0)``, as tests/test_capacity.py does) and :func:`iotbench.capacity.result`,
this file goes.  The rule judged a step on accounting and latency *growth* (within ``tolerance_s``) with no
bound on p99; :mod:`iotbench.capacity` judges every other path on a p99 bound.
"""

from __future__ import annotations

from collections.abc import Callable

from iotbench import capacity
from iotbench.capacity import Step

__all__ = ["Step", "kept_up", "result", "search", "sustained_rate"]


def _judge(tolerance_s: float) -> Callable[[dict, float], capacity.Verdict]:
    return lambda summary, offered: capacity.verdict(summary, offered, None, growth_tolerance_ms=tolerance_s * 1000,
                                                     min_achieved=0)


def kept_up(summary: dict, tolerance_s: float) -> bool:
    """All images accounted for, none lost, and latency not growing by more than ``tolerance_s``."""
    return _judge(tolerance_s)(summary, 0).kept_up


def search(run_at: Callable[[float], dict], start: float, tolerance_s: float, factor: float = 1.5,
           max_rate: float = 50_000, refine: int = 2, on_step: Callable[[Step], None] | None = None) -> list[Step]:
    """Ramp by ``factor`` while kept up, then ``refine`` bisections (see :func:`iotbench.capacity.search`)."""
    return capacity.search(run_at, start, _judge(tolerance_s), factor=factor, resolution=0, max_rate=max_rate,
                           max_steps=10**6, max_bisections=refine, on_step=on_step)


def sustained_rate(steps: list[Step]) -> float | None:
    return capacity.capacity(steps)


def result(steps: list[Step]) -> dict:
    return {k: v for k, v in capacity.result(steps, None).items() if k != "steps"}
