"""One result type: the figures every path reports, under the fixed keys of pytest-benchmark's ``extra_info``.

Each path keeps its own counters (``RunMetrics`` for streams, the max paths' iterations, torch's timed run) and
its own summary dict with whatever else it knows; what a benchmark stores and the report reads is a
:class:`Summary`: the fixed keys, ``None`` for anything not measured (``null`` in the JSON, ``n/a`` in the
tables, never a 0 that would read as "measured, none"), the optional keys of the paths they apply to, and the
path's own extras.

Every path builds one with a constructor named for what it has: :meth:`Summary.from_receive` (a receiver's
``ReceiveResult``), :meth:`Summary.from_metrics` (a ``RunMetrics``), :meth:`Summary.from_spark_max` and
:meth:`Summary.from_spark_stream` (the Spark engines' ``MaxResult`` / ``StreamResult``), :meth:`Summary.from_torch`
(the torch engine's ``RunResult``), or :meth:`Summary.from_run` (any summary dict).  The report reads a stored
run back with :meth:`Summary.from_extra_info` and nothing else.  The constructors read only the results'
attributes and ``summary()``, so this module imports no engine (nor TensorFlow, torch, pyspark).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the results' types, for the annotations only (importing them loads Spark or torch)
    from iotbench.engines.spark_max import MaxResult
    from iotbench.engines.spark_stream import StreamResult
    from iotbench.engines.torch_imagenet import RunResult
    from iotbench.metrics import RunMetrics
    from iotbench.receiver import ReceiveResult

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
        return s.with_keys(**more).labelled_backlog()

    @classmethod
    def from_metrics(cls, metrics: RunMetrics, *, engine: str, model: str, batch: int, wire: str,
                     **more: Any) -> Summary:
        """A stream's accounting (:class:`iotbench.metrics.RunMetrics`): what it did not measure is None."""
        return cls.from_run(metrics.summary(), engine=engine, model=model, batch=batch, wire=wire, **more)

    @classmethod
    def from_receive(cls, result: ReceiveResult, *, engine: str, model: str, batch: int, wire: str,
                     **more: Any) -> Summary:
        """A receiver's run (:class:`iotbench.receiver.ReceiveResult`); accuracy None when it was not scored."""
        return cls.from_run(result.summary(), engine=engine, model=model, batch=batch, wire=wire, **more)

    @classmethod
    def from_spark_max(cls, result: MaxResult, *, wire: str = "memory", **more: Any) -> Summary:
        """A Spark max-throughput run (``engines.spark_max.MaxResult``): cached data, so nothing was streamed and
        ``rejected`` / ``lost`` are None; its engine, model, batch and master are the result's own."""
        return cls.from_run(result.summary(), engine=result.engine, model=result.model, batch=result.batch,
                            wire=wire, **{"path": "max", "master": result.master, **more})

    @classmethod
    def from_spark_stream(cls, result: StreamResult, *, batch: int, wire: str, **more: Any) -> Summary:
        """A Spark streaming run (``engines.spark_stream.StreamResult``): its receiver-side accounting, with the
        engine, model, API and master the result names (the batch is the engine's: the result does not keep it)."""
        return cls.from_run(result.summary(), engine=result.engine, model=result.model, batch=batch, wire=wire,
                            **{"path": "stream", "master": result.master, "api": result.api, **more})

    @classmethod
    def from_torch(cls, result: RunResult, *, engine: str = "torch-imagenet", wire: str = "in-memory",
                   **more: Any) -> Summary:
        """A torch timed run (``engines.torch_imagenet.RunResult``): one device-resident batch, so ``rejected``,
        ``lost`` and the latencies are None; model and batch are its options'."""
        return cls.from_run(result.summary(), engine=engine, model=result.options.arch,
                            batch=result.options.batch, wire=wire, **more)

    @classmethod
    def from_extra_info(cls, info: dict[str, Any]) -> Summary:
        """A stored ``extra_info`` (a saved benchmark run) read back: how the report reads every run.

        Stored as it was: a fixed key an older run lacks is None, and nothing is relabelled (a run's
        ``p99_ms`` is the one it stored), so committed runs render as they always did.
        """
        fixed = {k: info.get(k) for k in FIXED_KEYS}
        return cls(**fixed).with_keys(**{k: v for k, v in info.items() if k not in FIXED_KEYS})

    def get(self, key: str, default: Any = None) -> Any:
        """A figure by its ``extra_info`` key (fixed, optional or the path's own); ``default`` when not there."""
        if key in FIXED_KEYS or key in OPTIONAL_KEYS:
            return getattr(self, key) if key in FIXED_KEYS or key in self.given else default
        return self.extra.get(key, default)

    def __contains__(self, key: str) -> bool:
        """Whether ``key`` is stored: every fixed key is (None or not), the others when given."""
        return key in FIXED_KEYS or key in self.given

    def labelled_backlog(self) -> Summary:
        """A run at max rate (``at_max_rate=True`` or ``arrival="max"``) reports its p99 as ``backlog_p99_ms``.

        An unthrottled sender offers more than any capacity, so the latency it measures is the queue it
        built, not one a deployment would see: ``p99_ms`` is None there (see :mod:`iotbench.capacity`).
        """
        if not (self.get("at_max_rate") or self.get("arrival") == "max"):
            return self
        backlog = self.get("backlog_p99_ms") if "backlog_p99_ms" in self else self.p99_ms
        return self.with_keys(at_max_rate=True, backlog_p99_ms=backlog, p99_ms=None)

    def with_keys(self, /, **more: Any) -> Summary:
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
