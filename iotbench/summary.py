"""One result type: the figures every path reports, under the fixed keys of pytest-benchmark's ``extra_info``.

Each path keeps its own counters (``RunMetrics`` for streams, the max paths' iterations, torch's timed run) and
its own summary dict with whatever else it knows; what a benchmark stores and the report reads is a
:class:`Summary`: the fixed keys, ``None`` for anything not measured (``null`` in the JSON, ``n/a`` in the
tables, never a 0 that would read as "measured, none"), the optional keys of the paths they apply to, and the
path's own extras.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: The keys every benchmark puts in ``extra_info``.
FIXED_KEYS = ("images", "images_per_sec", "accuracy", "p50_ms", "p99_ms", "rejected", "lost",
              "engine", "model", "batch", "wire")
#: Keys where they apply: the sender's requested rate, capacity searches, edge runtimes, BigDL, stream faults.
OPTIONAL_KEYS = ("offered_images_per_sec", "p99_bound_ms", "steps", "runtime", "precision", "bigdl_engine",
                 "of_keras_ceiling", "truncated", "duplicated", "reordered")
#: ``wire`` of the paths that classify preloaded arrays: nothing is streamed, so nothing can be
#: rejected or lost, and a 0 there would read as "measured, none".
IN_MEMORY_WIRES = ("in-memory", "memory")


@dataclass
class Summary:
    """A run's figures as a benchmark stores them; every figure not measured is None."""

    images: int | None = None
    images_per_sec: float | None = None
    accuracy: float | None = None
    p50_ms: float | None = None
    p99_ms: float | None = None
    rejected: int | None = None
    lost: int | None = None
    engine: str | None = None
    model: str | None = None
    batch: int | None = None
    wire: str | None = None
    offered_images_per_sec: float | None = None
    p99_bound_ms: float | None = None
    steps: Any = None
    runtime: str | None = None
    precision: str | None = None
    bigdl_engine: str | None = None
    of_keras_ceiling: float | None = None
    truncated: bool | None = None
    duplicated: int | None = None
    reordered: int | None = None
    #: the path's own keys, in the order given
    extra: dict[str, Any] = field(default_factory=dict)
    #: optional keys given (even as None), so that they are stored as given
    given: tuple[str, ...] = ()

    @classmethod
    def from_run(cls, summary: dict[str, Any], *, engine: str, model: str, batch: int, wire: str,
                 **more: Any) -> Summary:
        """A path's summary dict reduced to the fixed keys, plus ``more`` (optional and path-specific keys).

        A key the summary does not have is None, and an in-memory path's ``rejected`` / ``lost`` are None
        whatever its summary says.  A fixed key in ``more`` overrides the summary's.
        """
        in_memory = wire in IN_MEMORY_WIRES
        s = cls(images=summary.get("classified", summary.get("images")),
                images_per_sec=summary.get("images_per_sec"), accuracy=summary.get("accuracy"),
                p50_ms=summary.get("p50_ms"), p99_ms=summary.get("p99_ms"),
                rejected=None if in_memory else summary.get("rejected"),
                lost=None if in_memory else summary.get("lost"),
                engine=engine, model=model, batch=batch, wire=wire)
        return s.with_keys(**more)

    @classmethod
    def from_extra_info(cls, info: dict[str, Any]) -> Summary:
        """A stored ``extra_info`` (a saved benchmark run) read back."""
        fixed = {k: info.get(k) for k in FIXED_KEYS}
        return cls(**fixed).with_keys(**{k: v for k, v in info.items() if k not in FIXED_KEYS})

    def with_keys(self, **more: Any) -> Summary:
        """A copy with ``more`` set: fixed and optional keys by name, anything else as an extra."""
        named = {k: v for k, v in more.items() if k in FIXED_KEYS or k in OPTIONAL_KEYS}
        extra = {**self.extra, **{k: v for k, v in more.items() if k not in named}}
        given = self.given + tuple(k for k in more if k not in self.given and (k in named or k in extra))
        return dataclasses.replace(self, **named, extra=extra, given=given)

    def extra_info(self) -> dict[str, Any]:
        """The dict pytest-benchmark stores: the fixed keys, then every other key given, in the order given."""
        info = {k: getattr(self, k) for k in FIXED_KEYS}
        for k in self.given:
            info[k] = getattr(self, k) if k in FIXED_KEYS or k in OPTIONAL_KEYS else self.extra[k]
        return info
