"""Any in-process stream engine under MLPerf LoadGen, beside our own figures for the same engine.

LoadGen (``mlcommons-loadgen``, module ``mlperf_loadgen``) is the reference harness of MLPerf
Inference: it issues queries under the Offline, Server and SingleStream scenarios and writes
``mlperf_log_summary.txt``.  Running our engines under it checks our harness against the
reference: the Offline rate against our in-memory ceiling, the Server verdict against our capacity.

The system under test is :class:`BatchingSUT`: LoadGen's ``issue`` callback only queues the samples;
one worker thread takes what is queued (up to ``batch``, waiting for nothing more — the receiver's
way of draining its queue), runs ``engine.predict`` on a :class:`~iotbench.wire.Decoded` block of the
raw CIFAR-10 test images (0-255, as binary frames deliver them) and completes the samples.  The
same worker serves our own in-process Poisson source (:func:`inprocess_run`), so the only difference
between the two figures is the harness.
"""

from __future__ import annotations

import queue
import re
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from iotbench.metrics import percentiles_ms
from iotbench.wire import Decoded

SCENARIOS = ("offline", "server", "singlestream")


def decoded_block(images: np.ndarray, labels: np.ndarray) -> Decoded:
    """Raw 0-255 images as the receiver hands them to an engine (no sequence numbers)."""
    n = len(labels)
    return Decoded(labels.astype(np.int64), images.astype(np.float32, copy=False), np.full(n, -1, np.int64),
                   np.zeros(n, np.int64), raw=True)


class BatchingSUT:
    """A worker thread that drains queued ``(tag, index)`` samples in blocks of up to ``batch``.

    ``complete(tags, predicted)`` is called from the worker after each block; predictions are
    counted against the labels so that a run also says whether the engine classified correctly.
    """

    def __init__(self, engine, images: np.ndarray, labels: np.ndarray, batch: int,
                 complete: Callable[[list, np.ndarray | None], None]):
        self.engine, self.images, self.labels, self.batch = engine, images, labels, max(1, batch)
        self.complete = complete
        self.queue: queue.SimpleQueue = queue.SimpleQueue()
        self.correct = self.scored = self.blocks = 0
        self._thread = threading.Thread(target=self._work, daemon=True, name="iotbench-sut")
        self._thread.start()

    def issue(self, items: list[tuple[object, int]]) -> None:
        for item in items:
            self.queue.put(item)

    def _work(self) -> None:
        while True:
            first = self.queue.get()
            if first is None:
                return
            block = [first]
            while len(block) < self.batch:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self.queue.put(None)
                    break
                block.append(item)
            index = np.fromiter((i for _, i in block), np.int64, len(block))
            predicted = self.engine.predict(decoded_block(self.images[index], self.labels[index]))
            if predicted is not None:
                self.correct += int(np.sum(np.asarray(predicted) == self.labels[index]))
                self.scored += len(block)
            self.blocks += 1
            self.complete([tag for tag, _ in block], predicted)

    def stop(self) -> None:
        self.queue.put(None)
        self._thread.join(30)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.scored if self.scored else None


def ceiling(engine, images: np.ndarray, labels: np.ndarray, batch: int, seconds: float = 0.0,
            passes: int = 2) -> float:
    """Our in-memory ceiling: ``engine.predict`` on preloaded full blocks (images/s).

    With ``seconds`` the passes repeat for at least that long and the figure is their mean rate (what
    a harness that runs that long would see on a machine whose load moves); else the best of ``passes``.
    """
    blocks = [decoded_block(images[i:i + batch], labels[i:i + batch]) for i in range(0, len(labels), batch)]
    engine.predict(blocks[0])
    best, done, start = 0.0, 0, time.perf_counter()
    for n in range(10**6):
        t0 = time.perf_counter()
        for block in blocks:
            engine.predict(block)
        best = max(best, len(labels) / (time.perf_counter() - t0))
        done += len(labels)
        if (seconds and time.perf_counter() - start >= seconds) or (not seconds and n + 1 >= passes):
            break
    return done / (time.perf_counter() - start) if seconds else best


def inprocess_run(engine, images: np.ndarray, labels: np.ndarray, batch: int, rate: float, count: int,
                  seed: int = 0) -> dict:
    """Our harness in-process: Poisson arrivals at ``rate`` into the same :class:`BatchingSUT`.

    Latency is issue time → completion of the block holding the sample; gaps come from ``seed`` (vary it
    per run: one seed's gaps have one sum, off the mean by ~1/sqrt(count)).  The summary has the keys
    :func:`iotbench.capacity.verdict` judges (sent, classified, lost, images_per_sec, p50/p99).
    """
    done_ns = np.zeros(count, np.int64)
    finished = threading.Event()
    remaining = [count]

    def complete(tags: list, _predicted) -> None:
        now = time.perf_counter_ns()
        done_ns[np.asarray(tags, np.int64)] = now
        remaining[0] -= len(tags)
        if remaining[0] <= 0:
            finished.set()

    sut = BatchingSUT(engine, images, labels, batch, complete)
    gaps = np.random.default_rng(seed).exponential(1.0 / rate, count)
    issued_ns = np.zeros(count, np.int64)
    start = time.perf_counter()
    due = start
    for i in range(count):
        due += gaps[i]
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        issued_ns[i] = time.perf_counter_ns()
        sut.issue([(i, i % len(labels))])
    ok = finished.wait(max(60.0, 10 * count / rate))
    sut.stop()
    classified = int(np.count_nonzero(done_ns))
    elapsed = (done_ns.max() - issued_ns[0]) / 1e9 if classified else None
    latencies = (done_ns - issued_ns)[done_ns > 0]
    return {"sent": count, "classified": classified, "rejected": 0, "lost": count - classified,
            "sender_finished": ok or None, "images_per_sec": round(classified / elapsed, 2) if elapsed else None,
            "accuracy": sut.accuracy, **percentiles_ms(latencies)}


@dataclass
class LoadGenResult:
    scenario: str
    summary: dict = field(default_factory=dict)
    text: str = ""
    accuracy: float | None = None


_SUMMARY_KEYS = {
    "samples_per_sec": r"^Samples per second\s*:\s*([\d.eE+-]+)",
    "completed_samples_per_sec": r"^Completed samples per second\s*:\s*([\d.eE+-]+)",
    "scheduled_samples_per_sec": r"^Scheduled samples per second\s*:\s*([\d.eE+-]+)",
    "p50_ns": r"^50\.00 percentile latency \(ns\)\s*:\s*(\d+)",
    "p90_ns": r"^90\.00 percentile latency \(ns\)\s*:\s*(\d+)",
    "p99_ns": r"^99\.00 percentile latency \(ns\)\s*:\s*(\d+)",
    "target_qps": r"^target_qps\s*:\s*([\d.eE+-]+)",
    "target_latency_ns": r"^target_latency \(ns\)\s*:\s*(\d+)",
}


def parse_summary(text: str) -> dict:
    """The figures of ``mlperf_log_summary.txt``: rates, latency percentiles (ns and ms), VALID or not.

    A figure LoadGen did not print for the scenario is None.
    """
    out: dict = {}
    for key, pattern in _SUMMARY_KEYS.items():
        m = re.search(pattern, text, re.MULTILINE)
        out[key] = None if m is None else float(m.group(1))
    for key in ("p50", "p90", "p99"):
        ns = out[f"{key}_ns"]
        out[f"{key}_ms"] = None if ns is None else round(ns / 1e6, 3)
    m = re.search(r"^Result is\s*:\s*(\w+)", text, re.MULTILINE)
    out["result"] = m.group(1) if m else None
    out["valid"] = None if m is None else m.group(1) == "VALID"
    return out


def run_loadgen(engine, images: np.ndarray, labels: np.ndarray, *, scenario: str, batch: int = 64,
                target_qps: float | None = None, latency_ms: float = 100.0, expected_qps: float | None = None,
                duration_ms: int = 10_000, min_queries: int = 64, outdir: str | Path | None = None) -> LoadGenResult:
    """One LoadGen performance run of ``engine`` over the images; returns LoadGen's own summary."""
    try:
        import mlperf_loadgen as lg
    except ImportError:
        raise RuntimeError("MLPerf LoadGen is not installed (pip install mlcommons-loadgen)") from None
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose from {', '.join(SCENARIOS)}")
    if scenario == "server" and not target_qps:
        raise ValueError("--scenario server needs --target-qps")

    def complete(tags: list, _predicted) -> None:
        lg.QuerySamplesComplete([lg.QuerySampleResponse(tag, 0, 0) for tag in tags])

    sut_core = BatchingSUT(engine, images, labels, batch if scenario != "singlestream" else 1, complete)
    settings = lg.TestSettings()
    settings.scenario = {"offline": lg.TestScenario.Offline, "server": lg.TestScenario.Server,
                         "singlestream": lg.TestScenario.SingleStream}[scenario]
    settings.mode = lg.TestMode.PerformanceOnly
    settings.min_duration_ms = int(duration_ms)
    settings.min_query_count = int(min_queries)
    if scenario == "offline":
        settings.offline_expected_qps = float(expected_qps or 10_000)
    elif scenario == "server":
        settings.server_target_qps = float(target_qps)
        settings.server_target_latency_ns = int(latency_ms * 1e6)
    else:
        settings.single_stream_expected_latency_ns = int(latency_ms * 1e6)

    sut = lg.ConstructSUT(lambda samples: sut_core.issue([(s.id, s.index) for s in samples]), lambda: None)
    qsl = lg.ConstructQSL(len(labels), len(labels), lambda _: None, lambda _: None)
    with tempfile.TemporaryDirectory(prefix="iotbench-loadgen-") as tmp:
        out = Path(outdir) if outdir else Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        log_settings = lg.LogSettings()
        log_settings.log_output.outdir = str(out)
        log_settings.log_output.copy_summary_to_stdout = False
        try:
            lg.StartTestWithLogSettings(sut, qsl, settings, log_settings)
        finally:
            sut_core.stop()
            lg.DestroyQSL(qsl)
            lg.DestroySUT(sut)
        text = (out / "mlperf_log_summary.txt").read_text()
    return LoadGenResult(scenario, parse_summary(text), text, sut_core.accuracy)


def load_images(count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``count`` CIFAR-10 test images (0-255) and labels: the query sample library."""
    from iotbench.data import cifar10

    test = cifar10.load("test")
    return test.images[:count], test.labels[:count].astype(np.int64)
