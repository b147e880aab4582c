"""The two engine contracts: what the receiver and the benchmarks may call on a system under test.

Every engine keeps to one of them, and the registry (:mod:`iotbench.engines.registry`) says which:

- a **stream** engine (:class:`StreamEngine`) classifies what arrives: ``warmup()`` before the clock,
  ``predict(batch) -> classes`` per block (None when it does not classify, as ``null``), ``describe()`` for the
  report's line of what ran.  The receiver drives it; it knows nothing about sockets.
- a **max-throughput** engine (:class:`MaxEngine`) has all its data in place and runs flat out:
  ``prepare(...)`` loads the model and places the data (what it needs is its own: a SparkContext and images,
  device tensors), ``iterate()`` is one timed pass returning its figures, ``release()`` frees what prepare took.

Both have a ``name`` (the registry's), a ``model`` (what it runs, "-" for nothing) and a ``batch``.

The Spark stream engines take micro-batches (an RDD of lines or a DataFrame) from Spark's own streaming loop
rather than decoded blocks, and the torch engine's pass is ``run(duration)``: :class:`SparkStream` and
:class:`TorchMax` are the thin adapters that put them under the contracts without touching their internals.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

STREAM = "stream"
MAX = "max"


@runtime_checkable
class StreamEngine(Protocol):
    """Classifies blocks as they arrive (null, keras and its converted runtimes, the Spark stream engines)."""

    name: str
    model: str
    batch: int

    def warmup(self) -> None:
        """Do the one-off work (load, compile, trace) before the clock starts."""

    def predict(self, batch: Any) -> Any:
        """Predicted class per image, or None when the engine does not classify (``null``)."""

    def describe(self) -> str:
        """One line of what runs (runtime, precision, batch): the report says it beside the figures."""


@runtime_checkable
class MaxEngine(Protocol):
    """Runs over data already in place as fast as it can (the Spark max engines, torch)."""

    name: str
    model: str
    batch: int

    def prepare(self, *args: Any, **kwargs: Any) -> None:
        """Load the model and place the data before anything is timed."""

    def iterate(self) -> Any:
        """One timed pass; its figures (images and correct ones, or a result object)."""

    def release(self) -> None:
        """Free what :meth:`prepare` took (cached RDDs, device memory)."""


class SparkStream:
    """A Spark stream engine (``prepare(sc)``, ``process_rdd`` / ``process_df``) as a :class:`StreamEngine`.

    ``predict`` takes one micro-batch, a DataFrame (Structured Streaming) or an RDD of lines (DStreams), and
    returns the engine's outcome for it (classes with their accounting).
    """

    def __init__(self, engine: Any, sc: Any):
        self.engine, self.sc = engine, sc
        self.name, self.model, self.batch = engine.name, engine.model, engine.batch

    def warmup(self) -> None:
        self.engine.prepare(self.sc)

    def predict(self, batch: Any) -> Any:
        return self.engine.process_df(batch) if hasattr(batch, "schema") else self.engine.process_rdd(batch)

    def describe(self) -> str:
        return f"spark {self.name} {self.model}, batch {self.batch}"


class TorchMax:
    """The torch engine (``place``, ``warmup``, ``run``) as a :class:`MaxEngine`: one pass is one timed run."""

    def __init__(self, engine: Any, duration_s: float, interval: int, on_report: Any = None):
        self.engine, self.duration_s, self.interval, self.on_report = engine, duration_s, interval, on_report
        self.name, self.model, self.batch = engine.name, engine.model, engine.options.batch

    def prepare(self, images: Any, targets: Any) -> None:
        self.engine.place(images, targets)
        self.engine.warmup()

    def iterate(self) -> Any:
        return self.engine.run(self.duration_s, self.interval, self.on_report)

    def release(self) -> None:
        """Nothing held beyond the engine itself: its settings are restored by each call."""
