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

    def update(self, seqs: np.ndarray) -> np.ndarray:
        """Take the sequence numbers of one batch; returns a mask of those seen for the first time.

        Unsequenced entries (-1, v1 lines) are always "first time": nothing can say they repeat.
        """
        fresh = np.ones(len(seqs), bool)
        for i, s in enumerate(np.asarray(seqs).tolist()):
            if s < 0:
                continue
            if s in self.seen:
                self.duplicated += 1
                fresh[i] = False
                continue
            if s < self.highest:
                self.reordered += 1
            self.seen.add(s)
            self.highest = max(self.highest, s)
        return fresh

    def lost(self, sent_total: int | None) -> int:
        """Images never received: from the sender's count when known, else gaps below the highest seen."""
        if not self.seen:
            return sent_total or 0
        expected = sent_total if sent_total is not None else self.highest + 1
        return max(expected - len(self.seen), 0)


#: Exit status of every receiver command (documented in the README):
EXIT_OK = 0  #: the accounting closes and at least one image was classified
EXIT_TRUNCATED = 3  #: the stream ended without its end marker (sender killed, connection cut)
EXIT_UNACCOUNTED = 4  #: ``sent != classified + rejected + lost``: some image is not accounted for
EXIT_NOTHING_CLASSIFIED = 5  #: no image was classified (everything rejected, or nothing arrived)
EXIT_INTERRUPTED = 130  #: Ctrl-C / SIGINT: the summary so far is printed, marked interrupted


@dataclass(frozen=True)
class Accounting:
    """Where every image went: ``sent = classified + rejected + lost`` (see :func:`close_books`).

    ``sent`` is the sender's own count (v2 trailer, binary end frame) or, for a stream cut without
    its end marker, None with ``sent_at_least`` from the highest sequence number seen.  ``lost`` is
    None on v1 streams: without sequence numbers a missing image leaves no trace, so only
    ``received = classified + rejected`` can be checked there.  ``garbage_lines`` are rejected lines
    that cannot have been images of this stream (more unreadable lines than missing sequence
    numbers, bytes after the end marker): counted, but not as sent images.
    """

    sequenced: bool
    sent: int | None
    sent_at_least: int | None
    received: int
    classified: int
    rejected: int
    lost: int | None
    duplicated: int | None
    reordered: int | None
    garbage_lines: int
    truncated: bool

    def closes(self) -> bool:
        """The identity holds: with a sender's count, ``sent = classified + rejected + lost``;
        otherwise (v1, or a cut v2 stream) what arrived is all classified or rejected."""
        if self.sent is not None and self.lost is not None:
            return self.sent == self.classified + self.rejected + self.lost
        if self.sent_at_least is not None and self.lost is not None:
            return self.sent_at_least == self.classified + self.rejected + self.lost
        return self.received == self.classified + self.rejected + self.garbage_lines + (self.duplicated or 0)


def close_books(*, sent: int | None, truncated: bool, received: int, classified: int, rejected_sequenced: int,
                rejected_unsequenced: int, seen: int, highest: int, duplicated: int, reordered: int,
                garbage_lines: int = 0) -> Accounting:
    """The one accounting rule every receiver uses (Python, Spark, Scala summaries).

    ``seen`` counts distinct sequence numbers that arrived (classified or rejected with a readable
    header), ``highest`` the largest of them (-1: none).  A v2/binary stream's missing numbers are
    first explained by the rejected lines whose header was unreadable (a corrupted header is still an
    image that arrived); only what remains is lost, and unreadable lines beyond the missing numbers
    are garbage, not images.  A v1 stream (nothing sequenced, no sender count) has no loss figure.
    """
    sequenced = seen > 0 or sent is not None
    if not sequenced:
        return Accounting(False, None, None, received, classified, rejected_unsequenced, None, None,
                          None, garbage_lines, truncated)
    expected = sent if sent is not None else highest + 1
    missing = max(expected - seen, 0)
    attributed = min(rejected_unsequenced, missing)
    return Accounting(
        sequenced=True, sent=sent, sent_at_least=None if sent is not None else expected, received=received,
        classified=classified, rejected=rejected_sequenced + attributed, lost=missing - attributed,
        duplicated=duplicated, reordered=reordered,
        garbage_lines=garbage_lines + rejected_unsequenced - attributed, truncated=truncated)


def exit_status(summary: dict) -> tuple[int, str | None]:
    """``(status, one-line reason or None)`` of a receiver run from its summary (see the EXIT_* codes)."""
    if summary.get("interrupted"):
        return EXIT_INTERRUPTED, "interrupted: the figures above cover what was done so far"
    if summary.get("truncated"):
        at_least = summary.get("sent_at_least")
        more = f" (the sender sent at least {at_least} images)" if at_least is not None else ""
        return EXIT_TRUNCATED, f"the stream was cut before its end marker{more}: partial report"
    if summary.get("accounted") is False:
        return EXIT_UNACCOUNTED, "the accounting does not close: sent != classified + rejected + lost"
    if not summary.get("classified"):
        why = "every image was rejected" if summary.get("rejected") else "no image arrived"
        return EXIT_NOTHING_CLASSIFIED, f"nothing was classified: {why}"
    return EXIT_OK, None


@dataclass
class RunMetrics:
    """Counters of one run.  ``sent`` comes from the sender (v2 trailer) when it tells us.

    ``classified`` and ``correct`` count each sequence number once: a duplicated image is
    classified again by the engine but counted in ``duplicated``, not twice in the identity.
    """

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
    #: rejected lines with a readable sequence number (the rest: ``rejected_total - rejected_sequenced``)
    rejected_sequenced: int = 0
    #: rejected lines whose sequence number had already arrived (counted as duplicated)
    rejected_repeats: int = 0
    #: lines that were no image of this stream (e.g. bytes after the end marker), by reason
    garbage: Counter = field(default_factory=Counter)
    #: the stream ended without its end marker
    truncated: bool = False
    #: Ctrl-C arrived before the end
    interrupted: bool = False

    def mark_received(self, count: int, at_ns: int | None = None) -> None:
        if count and self.first_received_ns is None:
            self.first_received_ns = at_ns or now_ns()
        self.received += count

    def reject(self, reasons: list[tuple[str, bytes]], seqs: np.ndarray | None = None) -> list[tuple[str, bytes]]:
        """Count rejected lines; returns those worth logging (the first few).

        ``seqs`` are the v2 sequence numbers of rejected lines whose header was readable:
        they arrived, so they must not also count as lost (a repeat of a number already seen is
        a duplicate, not a second rejected image).
        """
        repeats = 0
        if seqs is not None and len(seqs):
            fresh = self.sequences.update(np.asarray(seqs))
            self.rejected_sequenced += int(fresh.sum())
            repeats = int((~fresh).sum())
        self.rejected_repeats += repeats
        fresh_samples = []
        for reason, sample in reasons:
            self.rejected[reason] += 1
            if len(self.rejected_samples) < KEEP_SAMPLES:
                self.rejected_samples.append((reason, sample))
                fresh_samples.append((reason, sample))
        return fresh_samples

    def record(self, labels: np.ndarray, predicted: np.ndarray, seq: np.ndarray, sent_ns: np.ndarray,
               at_ns: int | None = None) -> None:
        """Account for one classified batch."""
        at_ns = at_ns or now_ns()
        fresh = self.sequences.update(np.asarray(seq))
        self.classified += int(fresh.sum())
        self.correct += int(np.count_nonzero((np.asarray(predicted) == np.asarray(labels)) & fresh))
        self.last_classified_ns = at_ns
        stamped = sent_ns[sent_ns > 0]
        if len(stamped):
            self.latencies_ns.append(at_ns - stamped)

    def add_garbage(self, reason: str, count: int = 1) -> None:
        """Lines or frames that carried no image of this stream (they are not rejected images)."""
        self.garbage[reason] += count
        self.received += count

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())

    def books(self) -> Accounting:
        """This run's :class:`Accounting`."""
        return close_books(
            sent=self.sent, truncated=self.truncated, received=self.received, classified=self.classified,
            rejected_sequenced=self.rejected_sequenced,
            rejected_unsequenced=self.rejected_total - self.rejected_sequenced - self.rejected_repeats,
            seen=len(self.sequences.seen), highest=self.sequences.highest,
            duplicated=self.sequences.duplicated, reordered=self.sequences.reordered,
            garbage_lines=sum(self.garbage.values()))

    @property
    def lost(self) -> int | None:
        return self.books().lost

    @property
    def elapsed_s(self) -> float:
        if self.first_received_ns is None or self.last_classified_ns is None:
            return 0.0
        return max(self.last_classified_ns - self.first_received_ns, 1) / 1e9

    @property
    def images_per_sec(self) -> float | None:
        return self.classified / self.elapsed_s if self.elapsed_s else None

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
        backlog builds up, which makes it the test of a sustainable rate (see :func:`iotbench.capacity.verdict`).
        """
        return latency_growth_ms(self.all_latencies_ns())

    def accounted(self) -> bool:
        """The identity closes (see :meth:`Accounting.closes`); false whenever an image is unexplained."""
        return self.books().closes()

    def summary(self) -> dict:
        """The fixed keys every path reports (see DESIGN.md § Measuring)."""
        books = self.books()
        rate = self.images_per_sec
        return {
            "sent": books.sent,
            "sent_at_least": books.sent_at_least,
            "received": self.received,
            "classified": self.classified,
            "correct": self.correct,
            "rejected": books.rejected,
            "rejected_by_reason": dict(self.rejected),
            "lost": books.lost,
            "duplicated": books.duplicated,
            "reordered": books.reordered,
            "garbage_lines": books.garbage_lines,
            "garbage_by_reason": dict(self.garbage),
            "truncated": books.truncated,
            "interrupted": self.interrupted,
            "sequenced": books.sequenced,
            "accounted": books.closes(),
            "elapsed_s": round(self.elapsed_s, 4),
            "images_per_sec": None if rate is None else round(rate, 2),
            "accuracy": self.accuracy,
            "queue_high_water": self.queue_high_water,
            "latency_growth_ms": _rounded(self.latency_growth_ms()),
            **self.latency(),
        }
