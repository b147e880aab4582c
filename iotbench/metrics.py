"""Accounting and measurements of one run: what was sent, received, rejected, classified, and how fast.

Kept free of I/O so that every engine, receiver and benchmark computes figures the same way:
throughput is images classified over *active* time (first image received to last image
classified), latency is classification time minus the v2 send timestamp.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

#: How many rejected lines are kept verbatim (truncated) for the log.
KEEP_SAMPLES = 5


def now_ns() -> int:
    """Wall-clock nanoseconds: comparable across processes on one machine (v2 timestamps)."""
    return time.time_ns()


def percentiles_ms(latencies_ns: np.ndarray, points: tuple[float, ...] = (50, 90, 99, 100)) -> dict[str, float | None]:
    """``{"p50_ms": …, "p90_ms": …, "p99_ms": …, "max_ms": …}``; None without samples."""
    keys = [f"p{int(p)}_ms" if p < 100 else "max_ms" for p in points]
    if len(latencies_ns) == 0:
        return dict.fromkeys(keys)
    values = np.percentile(latencies_ns, points) / 1e6
    return {k: round(float(v), 3) for k, v in zip(keys, values)}


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def latency_growth_ms(latencies_ns: np.ndarray) -> float | None:
    """Median of the last quarter minus median of the first quarter of latencies in classification order (ms)."""
    n = len(latencies_ns)
    if n < 8:
        return None
    quarter = n // 4
    return float(np.median(latencies_ns[-quarter:]) - np.median(latencies_ns[:quarter])) / 1e6


@dataclass
class SequenceTracker:
    """Detects lost, duplicated and reordered images from v2 sequence numbers."""

    seen: set[int] = field(default_factory=set)
    duplicated: int = 0
    reordered: int = 0
    highest: int = -1

    def update(self, seqs: np.ndarray) -> None:
        for s in seqs.tolist():
            if s < 0:
                continue
            if s in self.seen:
                self.duplicated += 1
                continue
            if s < self.highest:
                self.reordered += 1
            self.seen.add(s)
            self.highest = max(self.highest, s)

    def lost(self, sent_total: int | None) -> int:
        """Images never received: from the sender's count when known, else gaps below the highest seen."""
        if not self.seen:
            return sent_total or 0
        expected = sent_total if sent_total is not None else self.highest + 1
        return max(expected - len(self.seen), 0)


@dataclass
class RunMetrics:
    """Counters of one run.  ``sent`` comes from the sender (v2 trailer) when it tells us."""

    received: int = 0
    classified: int = 0
    correct: int = 0
    rejected: Counter = field(default_factory=Counter)
    rejected_samples: list[tuple[str, bytes]] = field(default_factory=list)
    sent: int | None = None
    first_received_ns: int | None = None
    last_classified_ns: int | None = None
    latencies_ns: list[np.ndarray] = field(default_factory=list)
    sequences: SequenceTracker = field(default_factory=SequenceTracker)
    queue_high_water: int = 0

    def mark_received(self, count: int, at_ns: int | None = None) -> None:
        if count and self.first_received_ns is None:
            self.first_received_ns = at_ns or now_ns()
        self.received += count

    def reject(self, reasons: list[tuple[str, bytes]], seqs: np.ndarray | None = None) -> list[tuple[str, bytes]]:
        """Count rejected lines; returns those worth logging (the first few).

        ``seqs`` are the v2 sequence numbers of rejected lines whose header was readable:
        they arrived, so they must not also count as lost.
        """
        if seqs is not None and len(seqs):
            self.sequences.update(seqs)
        fresh = []
        for reason, sample in reasons:
            self.rejected[reason] += 1
            if len(self.rejected_samples) < KEEP_SAMPLES:
                self.rejected_samples.append((reason, sample))
                fresh.append((reason, sample))
        return fresh

    def record(self, labels: np.ndarray, predicted: np.ndarray, seq: np.ndarray, sent_ns: np.ndarray,
               at_ns: int | None = None) -> None:
        """Account for one classified batch."""
        at_ns = at_ns or now_ns()
        self.classified += len(labels)
        self.correct += int(np.count_nonzero(np.asarray(predicted) == np.asarray(labels)))
        self.last_classified_ns = at_ns
        stamped = sent_ns[sent_ns > 0]
        if len(stamped):
            self.latencies_ns.append(at_ns - stamped)
        self.sequences.update(seq)

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    @property
    def lost(self) -> int:
        return self.sequences.lost(self.sent) if self.sequences.seen or self.sent else 0

    @property
    def elapsed_s(self) -> float:
        if self.first_received_ns is None or self.last_classified_ns is None:
            return 0.0
        return max(self.last_classified_ns - self.first_received_ns, 1) / 1e9

    @property
    def images_per_sec(self) -> float:
        return self.classified / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.classified if self.classified else None

    def all_latencies_ns(self) -> np.ndarray:
        """Every recorded latency, in classification order."""
        return np.concatenate(self.latencies_ns) if self.latencies_ns else np.empty(0)

    def latency(self) -> dict[str, float | None]:
        return percentiles_ms(self.all_latencies_ns())

    def latency_growth_ms(self) -> float | None:
        """Median latency of the last quarter of classified images minus that of the first quarter (ms).

        Near zero while the receiver keeps up with the sender; it grows with the run's length once a
        backlog builds up, which makes it the test of a sustainable rate (see :mod:`iotbench.sustain`).
        """
        return latency_growth_ms(self.all_latencies_ns())

    def accounted(self) -> bool:
        """Every image the sender says it sent is classified, rejected or known lost."""
        if self.sent is None:
            return True
        return self.sent == self.classified + self.rejected_total + self.lost

    def summary(self) -> dict:
        """The fixed keys every path reports (see DESIGN.md § Measuring)."""
        return {
            "sent": self.sent,
            "received": self.received,
            "classified": self.classified,
            "correct": self.correct,
            "rejected": self.rejected_total,
            "rejected_by_reason": dict(self.rejected),
            "lost": self.lost,
            "duplicated": self.sequences.duplicated,
            "reordered": self.sequences.reordered,
            "elapsed_s": round(self.elapsed_s, 4),
            "images_per_sec": round(self.images_per_sec, 2),
            "accuracy": self.accuracy,
            "queue_high_water": self.queue_high_water,
            "latency_growth_ms": _rounded(self.latency_growth_ms()),
            **self.latency(),
        }
