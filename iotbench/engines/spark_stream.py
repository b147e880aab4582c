"""Spark streaming path: classify images arriving on a socket, interval by interval (BigDL or Spark-native).

As the original ``infer_cifar_stream.py``: Spark reads text lines from the sender (``nc -lk`` then,
``iotbench send --listen`` now), every interval's lines are decoded and classified, a line per
interval reports what arrived and how much was right, and the stream stops after
``empty_intervals`` consecutive empty intervals once data has flowed.  Two ingest APIs:

- ``dstream``: ``StreamingContext.socketTextStream`` + ``foreachRDD`` (the original's; its receiver
  occupies one executor core, and ``spark.streaming.receiver.maxRate`` bounds it);
- ``structured``: Structured Streaming's ``socket`` source + ``foreachBatch`` (reads on the driver).

Lines are decoded per partition — by :func:`iotbench.wire.decode_blocks` in the Spark-native engine's Python
workers, by the Scala receiver's parser in the JVM for BigDL (``iotbench.JvmLines``; both held to the same
verdicts by ``tests/wire_corpus/``) — v1 and v2, bad lines rejected with a reason; the driver accounts with
:class:`iotbench.metrics.RunMetrics`, the one accounting model of every receiver
(:func:`iotbench.metrics.close_books`): v2 sequence numbers give lost/duplicated/reordered counts and ``sent =
classified + rejected + lost``, unreadable lines are first attributed to missing numbers and the rest counted
as ``garbage_lines``, a v1 stream has no loss figure, and a stream that went quiet without its end marker (the
empty line or the v2 trailer) is ``truncated``, with ``sent_at_least`` from its sequence numbers.

Time: from the first image's send time (v2) — or the start of the first non-empty interval (v1) —
to the end of the last non-empty interval's classification.  The empty tail is measured and
reported separately (the original subtracted the empty intervals and a hard-coded 2.4 s).
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from iotbench import wire
from iotbench.engines.spark_models import BigDLClassifier, KerasUDFClassifier
from iotbench.metrics import RunMetrics, now_ns
from iotbench.spark.executors import executor_count, lost_between

APIS = ("dstream", "structured")


@dataclass
class StreamConfig:
    host: str = "127.0.0.1"
    port: int = 10000
    interval: float = 10.0  # seconds per micro-batch (the original's -r)
    api: str = "dstream"
    empty_intervals: int = 1  # stop after this many consecutive empty intervals once data has arrived
    first_data_timeout: float | None = None  # give up when nothing arrives for this long (None: wait forever)


@dataclass
class Outcome:
    """What one interval's lines turned into (driver side, small arrays only)."""

    received: int = 0
    labels: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    predicted: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    seq: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    sent_ns: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    rejected: list[tuple[str, bytes]] = field(default_factory=list)
    rejected_seq: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    sent_total: int | None = None
    ended: bool = False  # the end marker (an empty line) was among the lines

    @property
    def correct(self) -> int:
        return int(np.count_nonzero(self.labels == self.predicted))

    def in_sequence_order(self) -> Outcome:
        """The same interval with its images sorted by sequence number (stable; unsequenced first).

        Why: Spark's socket source deals an interval's lines to partitions round-robin and the results
        come back partition after partition, so the order inside one interval is Spark's, not the
        wire's: taken as it comes, an ordered stream showed half its images "reordered".  Sorted, a
        reorder is an image that arrives in a later interval than one sent after it.
        """
        order = np.argsort(self.seq, kind="stable")
        return replace(self, labels=self.labels[order], predicted=self.predicted[order], seq=self.seq[order],
                       sent_ns=self.sent_ns[order], rejected_seq=np.sort(self.rejected_seq, kind="stable"))


@dataclass
class Interval:
    index: int
    received: int
    classified: int
    correct: int
    rejected: int
    seconds: float  # processing time of the interval's batch


@dataclass
class StreamResult:
    engine: str
    model: str
    api: str
    master: str
    interval: float
    metrics: RunMetrics
    intervals: list[Interval] = field(default_factory=list)
    empty_intervals: int = 0
    empty_tail_s: float = 0.0
    executors_start: int | None = None  # live executors when the stream started / ended (None: not measured)
    executors_end: int | None = None
    runtime: str | None = None  # what runs the model in the workers (tf, onnxruntime, openvino; bigdl)
    precision: str | None = None

    def summary(self) -> dict:
        s = self.metrics.summary()
        s.update({
            "engine": self.engine, "model": self.model, "runtime": self.runtime, "precision": self.precision,
            "api": self.api, "master": self.master,
            "interval_s": self.interval, "intervals": len(self.intervals), "empty_intervals": self.empty_intervals,
            "empty_tail_s": round(self.empty_tail_s, 3),
            "per_interval_received": [i.received for i in self.intervals],
            "per_interval_correct": [i.correct for i in self.intervals],
            "executors_start": self.executors_start, "executors_end": self.executors_end,
            "executors_lost": lost_between(self.executors_start, self.executors_end),
        })
        return s


# --------------------------------------------------------------------------- decoding on the executors


def _as_bytes(lines) -> list[bytes]:
    """Non-empty lines as bytes (an empty line is the v1 end marker, not an image)."""
    return [line.encode("latin-1") if isinstance(line, str) else line for line in lines if line]


def warmup_lines(sc) -> list[str]:
    """A few blank ``%d`` v2 lines per core, to run a stream's whole plan once before the stream starts.

    The first micro-batch otherwise pays for starting the Python workers of its plan and loading
    the model into them (4.5 s of a 10-second run of 10,000 images in local[2]).
    """
    blank = np.zeros((32, 32, 3), np.uint8)
    line = (wire.v2_header(0, 0) + wire.encode_v1(0, blank, "%d").rstrip(b"\n")).decode("ascii")
    return [line] * (4 * max(sc.defaultParallelism, 1))


#: One classified image as ``iotbench.JvmLines`` packs it (little-endian).
JVM_RECORD = np.dtype([("label", "<i4"), ("predicted", "<i4"), ("seq", "<i8"), ("sent_ns", "<i8")])


def outcome_from_jvm(records: bytes, rejections: str, sent_total: int, ended: bool) -> Outcome:
    """An :class:`Outcome` from what ``iotbench.JvmLines.classify`` returned: packed per-image records, one
    ``reason TAB seq TAB sample`` line per rejected line, the v2 trailer's total (-1: none) and the end mark."""
    rows = np.frombuffer(records, JVM_RECORD)
    out = Outcome(labels=rows["label"].astype(np.int64), predicted=rows["predicted"].astype(np.int64),
                  seq=rows["seq"].astype(np.int64), sent_ns=rows["sent_ns"].astype(np.int64),
                  sent_total=sent_total if sent_total >= 0 else None, ended=bool(ended))
    fields = [line.split("\t", 2) for line in rejections.split("\n")] if rejections else []
    out.rejected = [(reason, sample.encode("latin-1", "replace")) for reason, _, sample in fields]
    seqs = np.array([int(seq) for _, seq, _ in fields], np.int64)
    out.rejected_seq = seqs[seqs >= 0]
    out.received = len(out.labels) + len(out.rejected)
    return out


class BigDLStream:
    """BigDL engine: every interval's lines parsed, transformed and classified in the JVM (``iotbench.JvmLines``).

    No image becomes a Python object: through Python each crossed the worker as 11 KB of text, a numpy
    block and a pickled ``Sample`` (750 images/s on 2 cores, half of BigDL's own rate on the model).
    Only the per-image results (label, class, sequence number, send time) come back, for the
    accounting, which stays here.
    """

    name = "bigdl"
    runtime, precision = "bigdl", "fp32"

    def __init__(self, classifier: BigDLClassifier):
        self.classifier = classifier
        self.model = classifier.model_name
        self.batch = classifier.batch_per_thread
        self.jvm = None
        self.broadcast = None
        self.mean = b""
        self.spark = None

    def prepare(self, sc) -> None:
        from iotbench.spark import sql_session

        if self.broadcast is None:  # once per engine: each broadcast makes its own clones in every executor
            self.classifier.load(sc)
            self.jvm = jvm_lines(sc)
            self.broadcast = self.jvm.broadcast(sc._jsc, self.classifier.model.value)
        self.mean = transform_mean_chw(self.classifier.transform)
        self.spark = sql_session(sc)
        lines = self.spark.createDataFrame([(line,) for line in warmup_lines(sc)], "value string")
        self.process_df(lines.repartition(sc.defaultParallelism))

    def _outcome(self, result) -> Outcome:
        return outcome_from_jvm(bytes(result.images()), result.rejections(), result.sentTotal(), result.ended())

    def process_rdd(self, rdd) -> Outcome:
        from pyspark.serializers import UTF8Deserializer

        if not isinstance(rdd._jrdd_deserializer, UTF8Deserializer):  # not a JVM RDD of lines: go through a frame
            return self.process_df(self.spark.createDataFrame(rdd.map(lambda line: (line,)), "value string"))
        parallelism = rdd.context.defaultParallelism  # DStream blocks: one partition per 200 ms, merged to this
        return self._outcome(self.jvm.classify(rdd._jrdd, self.broadcast, parallelism, self.batch, 255.0, self.mean))

    def process_df(self, df) -> Outcome:
        parallelism = df.sparkSession.sparkContext.defaultParallelism
        return self._outcome(self.jvm.classifyFrame(df._jdf, self.broadcast, parallelism, self.batch, 255.0,
                                                    self.mean))


def jvm_lines(sc):
    """``iotbench.JvmLines`` in the driver's JVM, or one line saying why it is not there."""
    helper = sc._jvm.iotbench.JvmLines
    try:
        helper.RecordBytes()
    except Exception:  # py4j: a package, not a class, when the jar is not on the class path
        raise RuntimeError("iotbench's JVM classes are not on Spark's class path (the Scala build failed or was "
                           "skipped; `iotbench scala build` says why), so the BigDL stream cannot run") from None
    return helper


def transform_mean_chw(transform: str) -> bytes:
    """The per-pixel mean the model's input transform subtracts, CHW float32 bytes (b"" when it subtracts none)."""
    if transform not in ("unit", "unit_minus_mean"):  # JvmLines knows pixel / 255 and an optional mean, no more
        raise ValueError(f"the BigDL stream cannot apply input transform {transform!r} in the JVM")
    if transform == "unit":
        return b""
    from iotbench.data import cifar10

    return np.ascontiguousarray(cifar10.pixel_mean().astype(np.float32).transpose(2, 0, 1)).tobytes()


ROW_SCHEMA = ("kind string, label int, seq long, sent_ns long, total long, reason string, sample binary, "
              "predicted int")


def _decode_and_classify(classify: Callable) -> Callable:
    """``mapInPandas`` function: lines (binary) -> a row per image (with its class) and per rejected line or trailer."""

    def decode(batches):
        import pandas as pd

        for pdf in batches:
            values = pdf.iloc[:, 0].tolist()
            if any(not v for v in values):  # the end marker, an empty line
                rows = {key: [] for key in ("kind", "label", "seq", "sent_ns", "total", "reason", "sample",
                                            "predicted")}
                _append(rows, "ended")
                yield pd.DataFrame(rows)
            for d in wire.decode_blocks(_as_bytes(values)):  # one scale per block
                predicted = classify(d.images, d.raw) if len(d) else []
                rows = {
                    "kind": ["image"] * len(d), "label": d.labels.tolist(), "seq": d.seq.tolist(),
                    "sent_ns": d.sent_ns.tolist(), "total": [None] * len(d), "reason": [None] * len(d),
                    "sample": [None] * len(d), "predicted": np.asarray(predicted, np.int32).tolist(),
                }
                rseq = d.rejected_seq.tolist()
                for i, (reason, sample) in enumerate(d.rejected):
                    # rejected_seq holds the sequence numbers of the rejected v2 lines whose header was readable
                    # (at most one per rejection); which row carries which does not matter, only the set reaches
                    # the accounting
                    _append(rows, "rejected", seq=rseq[i] if i < len(rseq) else -1, reason=reason, sample=sample)
                if d.sent_total is not None:
                    _append(rows, "end", total=d.sent_total)
                yield pd.DataFrame(rows)

    return decode


def _append(rows: dict, kind: str, seq: int = -1, total=None, reason=None, sample=None) -> None:
    for key, value in (("kind", kind), ("label", -1), ("seq", seq), ("sent_ns", 0), ("total", total),
                       ("reason", reason), ("sample", sample), ("predicted", -1)):
        rows[key].append(value)


class NativeStream:
    """Spark-native engine: decoding and our Keras model in one ``mapInPandas`` function, Arrow both ways."""

    name = "native"

    def __init__(self, classifier: KerasUDFClassifier):
        self.classifier = classifier
        self.model = classifier.model_name
        self.batch = classifier.batch
        self.runtime, self.precision = classifier.runtime, classifier.precision
        self.spark = None
        self.classify: Callable | None = None

    def prepare(self, sc) -> None:
        from iotbench.spark import sql_session

        self.classifier.load(sc)
        self.classify = self.classifier.image_classifier()
        self.spark = sql_session(sc)
        lines = self.spark.createDataFrame([(line,) for line in warmup_lines(sc)], "value string")
        self.process_df(lines.repartition(sc.defaultParallelism))

    def process_df(self, df) -> Outcome:
        """One pass: decode and classify in one ``mapInPandas`` function -> every row to the driver.

        Rejected lines and the v2 trailer travel with the images (class -1), so the batch is read once
        and nothing is cached.  Why not ``predict_batch_udf`` after a decoding ``mapInPandas``, as the
        max path does: that plan needs two Python workers per task, the batch crosses Arrow twice, and
        which worker ends up holding the model varies, so a fresh one loading TensorFlow in the middle
        of a batch made runs vary by 30%; two-pass with a cache was 20% slower still.
        """
        from pyspark.sql import functions as F

        # binary, not string: Arrow hands the worker bytes, with no UTF-8 decoding and re-encoding per line
        lines = df.select(F.col(df.columns[0]).cast("binary"))
        rows = lines.mapInPandas(_decode_and_classify(self.classify), ROW_SCHEMA)
        pdf = rows.select("kind", "label", "predicted", "seq", "sent_ns", "total", "reason", "sample").toPandas()
        kind = pdf["kind"].to_numpy()
        images = pdf[kind == "image"]
        out = Outcome(
            labels=images["label"].to_numpy(np.int64), predicted=images["predicted"].to_numpy(np.int64),
            seq=images["seq"].to_numpy(np.int64), sent_ns=images["sent_ns"].to_numpy(np.int64),
        )
        rejected = pdf[kind == "rejected"]
        out.rejected = [(reason, bytes(sample or b"")) for reason, sample in zip(rejected["reason"],
                                                                                 rejected["sample"])]
        out.rejected_seq = rejected["seq"].to_numpy(np.int64)
        out.rejected_seq = out.rejected_seq[out.rejected_seq >= 0]
        totals = pdf.loc[kind == "end", "total"]
        out.sent_total = int(totals.max()) if len(totals) else None
        out.ended = bool((kind == "ended").any())
        out.received = len(out.labels) + len(out.rejected)
        return out

    def process_rdd(self, rdd) -> Outcome:
        return self.process_df(self.spark.createDataFrame(rdd.map(lambda line: (line,)), "value string"))


# --------------------------------------------------------------------------- the streaming loop


class _Run:
    """Driver-side state shared by the micro-batch callbacks and the main thread."""

    def __init__(self, engine, config: StreamConfig, result: StreamResult,
                 on_interval: Callable[[Interval], None] | None, on_empty: Callable[[], None] | None,
                 log_rejected: Callable[[str, bytes], None] | None):
        self.engine, self.config, self.result = engine, config, result
        self.on_interval, self.on_empty, self.log_rejected = on_interval, on_empty, log_rejected
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.started = False
        self.ended = False  # the end marker (empty line or v2 trailer) arrived
        self.consecutive_empty = 0
        self.last_data_end: float | None = None  # monotonic time the last non-empty interval finished
        self.last_data_end_ns = 0
        self.busy = False  # a micro-batch is being processed (Structured Streaming: not quiet, however long)
        self.last_batch_end = 0.0
        self.stream_start_ns = 0  # nothing can be received before the stream starts (senders may stamp earlier)

    def handle(self, process: Callable[[], Outcome], interval_start_ns: int) -> None:
        """Process one micro-batch; never raises (errors stop the run and are re-raised by the caller)."""
        if self.done.is_set():
            return
        self.busy = True
        try:
            t0 = time.perf_counter()
            outcome = process()
            if outcome.received == 0 and outcome.sent_total is None and not outcome.ended:
                self.empty()
                return
            self.account(outcome, interval_start_ns, time.perf_counter() - t0)
        except BaseException as err:  # surfaced in run_stream
            if self.done.is_set():
                return  # the run was over: stopping the query cancelled this (empty) batch's job
            self.error = err
            self.done.set()
        finally:
            self.busy = False
            self.last_batch_end = time.monotonic()

    def empty(self) -> None:
        if not self.started:
            return
        self.consecutive_empty += 1
        self.result.empty_intervals += 1
        if self.on_empty:
            self.on_empty()
        if self.consecutive_empty >= self.config.empty_intervals:
            self.done.set()

    def account(self, o: Outcome, interval_start_ns: int, seconds: float) -> None:
        m = self.result.metrics
        if o.sent_total is not None:
            m.sent = o.sent_total
        self.ended = self.ended or o.ended or o.sent_total is not None
        if o.received == 0:  # only the end marker: nothing to report for this interval
            return
        stamped = o.sent_ns[o.sent_ns > 0]
        first_ns = max(int(stamped.min()) if len(stamped) else interval_start_ns, self.stream_start_ns)
        if m.first_received_ns is None or first_ns < m.first_received_ns:
            m.first_received_ns = first_ns
        m.received += o.received
        for reason, sample in m.reject(o.rejected, None):
            if self.log_rejected:
                self.log_rejected(reason, sample)
        o = o.in_sequence_order()
        for kind, run in _arrival_runs(o.seq, o.rejected_seq):  # the sequence tracker sees them in order
            if kind == "rejected":
                m.reject([], o.rejected_seq[run])
            else:
                m.record(o.labels[run], o.predicted[run], o.seq[run], o.sent_ns[run])
        self.started = True
        self.consecutive_empty = 0
        self.last_data_end = time.monotonic()
        self.last_data_end_ns = now_ns()
        interval = Interval(len(self.result.intervals) + 1, o.received, len(o.labels), o.correct,
                            len(o.rejected), seconds)
        self.result.intervals.append(interval)
        if self.on_interval:
            self.on_interval(interval)


def _arrival_runs(seq: np.ndarray, rejected_seq: np.ndarray) -> list[tuple[str, slice]]:
    """Classified and rejected sequence numbers of one interval as runs in their likely arrival order.

    Both arrays come sorted (:meth:`Outcome.in_sequence_order`) but apart; merging the two by value
    (like merge sort's last step) interleaves them again, so a rejected line in the middle of an
    interval does not make the images before it look reordered.
    """
    if not len(rejected_seq):
        return [("classified", slice(0, len(seq)))] if len(seq) else []
    if not len(seq):
        return [("rejected", slice(0, len(rejected_seq)))]
    a, b = seq.tolist(), rejected_seq.tolist()
    runs: list[tuple[str, slice]] = []
    i = j = 0
    while i < len(a) or j < len(b):
        take_a = j == len(b) or (i < len(a) and a[i] <= b[j])
        kind, start = ("classified", i) if take_a else ("rejected", j)
        if take_a:
            while i < len(a) and (j == len(b) or a[i] <= b[j]):
                i += 1
            runs.append((kind, slice(start, i)))
        else:
            while j < len(b) and (i == len(a) or b[j] < a[i]):
                j += 1
            runs.append((kind, slice(start, j)))
    return runs


def run_stream(engine, sc, config: StreamConfig, *, on_start: Callable[[], None] | None = None,
               on_interval: Callable[[Interval], None] | None = None, on_empty: Callable[[], None] | None = None,
               log_rejected: Callable[[str, bytes], None] | None = None) -> StreamResult:
    """Classify the socket stream at ``config.host:port`` until it goes quiet; returns the accounting."""
    if config.api not in APIS:
        raise ValueError(f"api must be one of {', '.join(APIS)}, not {config.api!r}")
    engine.prepare(sc)
    result = StreamResult(engine.name, engine.model, config.api, sc.master, config.interval, RunMetrics(),
                          runtime=getattr(engine, "runtime", None), precision=getattr(engine, "precision", None))
    state = _Run(engine, config, result, on_interval, on_empty, log_rejected)
    runner = _run_dstream if config.api == "dstream" else _run_structured
    began = time.monotonic()
    result.executors_start = executor_count(sc)
    runner(engine, sc, config, state, on_start, began)
    result.executors_end = executor_count(sc)
    if state.error is not None:
        raise state.error
    # quiet without its end marker: the sender was killed or the connection cut (nothing arrived: not a stream)
    result.metrics.truncated = state.started and not state.ended
    if state.last_data_end is not None:
        result.empty_tail_s = time.monotonic() - state.last_data_end
        result.metrics.last_classified_ns = state.last_data_end_ns
    return result


def _timed_out(state: _Run, config: StreamConfig, began: float) -> bool:
    return (not state.started and config.first_data_timeout is not None
            and time.monotonic() - began > config.first_data_timeout)


def _run_dstream(engine, sc, config: StreamConfig, state: _Run, on_start, began: float) -> None:
    from pyspark import StorageLevel
    from pyspark.streaming import StreamingContext

    with warnings.catch_warnings():  # DStreams are deprecated since Spark 3.4; used here on purpose, for parity
        warnings.simplefilter("ignore", FutureWarning)
        ssc = StreamingContext(sc, config.interval)
    lines = ssc.socketTextStream(config.host, config.port, StorageLevel.MEMORY_AND_DISK)
    interval_ns = int(config.interval * 1e9)

    def each(batch_time, rdd) -> None:
        start_ns = int(batch_time.timestamp() * 1e9) - interval_ns
        if rdd.isEmpty():
            state.handle(Outcome, start_ns)
        else:
            state.handle(lambda: engine.process_rdd(rdd), start_ns)

    lines.foreachRDD(each)
    ssc.start()
    state.stream_start_ns = now_ns()
    if on_start:
        on_start()
    try:
        while not state.done.is_set() and not _timed_out(state, config, began):
            ssc.awaitTerminationOrTimeout(0.2)
    finally:
        ssc.stop(stopSparkContext=False, stopGraceFully=False)


def _run_structured(engine, sc, config: StreamConfig, state: _Run, on_start, began: float) -> None:
    from iotbench.spark import java_error_line, sql_session

    spark = sql_session(sc)
    lines = (spark.readStream.format("socket").option("host", config.host).option("port", config.port).load())
    interval_ns = int(config.interval * 1e9)

    def each(batch_df, batch_id) -> None:
        state.handle(lambda: engine.process_df(batch_df), now_ns() - interval_ns)

    query = (lines.writeStream.trigger(processingTime=f"{config.interval:g} seconds")
             .foreachBatch(each).start())
    state.stream_start_ns = now_ns()
    if on_start:
        on_start()
    try:
        # Structured Streaming runs no batch for an interval without data: count empty intervals here.
        counted = 0
        while not state.done.is_set() and not _timed_out(state, config, began):
            try:
                failure = query.exception()
                if failure is None:
                    query.awaitTermination(0.2)  # raises the query's failure too
            except Exception as err:  # pyspark's StreamingQueryException
                failure = err
            if failure is not None:
                line = java_error_line(failure, root=True) or str(failure).strip().splitlines()[0]
                raise RuntimeError(f"streaming query failed: {line}") from None
            if state.last_data_end is not None and not state.busy:
                # quiet since the last batch ended: a batch that takes several intervals is busy, not empty
                since = max(state.last_data_end, state.last_batch_end)
                quiet = int((time.monotonic() - since) / config.interval)
                while counted < quiet and not state.done.is_set():
                    counted += 1
                    state.empty()
                if quiet == 0:
                    counted = 0
    finally:
        query.stop()
