"""The receiving side: bytes in (stdin or a socket), decoded batches to an engine, metrics out.

Two threads and a bounded queue, so that decoding and inference overlap and neither waits
for the other, while a slow engine pushes back on the socket (the queue fills, the reader
stops reading, the sender's writes block) instead of buffering without bound::

    reader thread: read → split lines/frames → block of ≤ batch → wire.decode → queue
    caller thread: queue → engine.predict → metrics

A block closes when it holds ``batch`` images or when its oldest image has waited
``max_wait_ms`` — so latency stays bounded at low rates and batches stay full at high ones.
When the engine falls behind (a stall, a busy machine), the small blocks that queued up
meanwhile are merged, up to ``batch`` images, into one engine call: the backlog is cleared
with few full calls instead of many padded small ones.
"""

from __future__ import annotations

import os
import queue
import select
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from iotbench import wire
from iotbench.engines import Engine
from iotbench.metrics import RunMetrics, now_ns
from iotbench.report import log

READ_SIZE = 1 << 20


@dataclass
class ReceiveConfig:
    batch: int = 1
    max_wait_ms: float = 20.0
    queue_depth: int = 4
    progress_every: int = 100
    #: Log at most this many rejected lines verbatim (all are counted).
    log_rejections: int = 5


class Input:
    """A readable byte stream: stdin, an accepted connection, or an outgoing connection."""

    def __init__(self, fd: int, closer: Callable[[], None] = lambda: None, name: str = "stdin"):
        self.fd, self._closer, self.name = fd, closer, name

    def read(self, timeout: float | None) -> bytes | None:
        """Up to READ_SIZE bytes; b"" at end of stream; None when ``timeout`` passed first."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return None
        try:
            return os.read(self.fd, READ_SIZE)
        except ConnectionResetError:
            return b""

    def close(self) -> None:
        self._closer()


def stdin_input() -> Input:
    return Input(sys.stdin.fileno())


def listen_input(port: int, host: str = "127.0.0.1", ready: Callable[[int], None] | None = None) -> Input:
    """Accept one sender on ``port`` (0: any free port, reported through ``ready``).

    A connection that closes before sending a single byte (a port probe, a health check)
    is not a sender: it is dropped and the next one is awaited.
    """
    with socket.create_server((host, port)) as server:
        if ready:
            ready(server.getsockname()[1])
        while True:
            conn, _ = server.accept()
            if conn.recv(1, socket.MSG_PEEK):
                return Input(conn.fileno(), conn.close, f"{host}:{port}")
            conn.close()


def connect_input(host: str, port: int, retry_s: float = 10.0) -> Input:
    """Connect to a listening sender (``iotbench send --listen`` or ``nc -lk``)."""
    deadline = time.monotonic() + retry_s
    while True:
        try:
            conn = socket.create_connection((host, port), timeout=5)
            conn.settimeout(None)
            return Input(conn.fileno(), conn.close, f"{host}:{port}")
        except OSError as err:
            if time.monotonic() > deadline:
                raise ConnectionError(f"cannot connect to sender at {host}:{port}: {err}") from err
            time.sleep(0.1)


class _Reader(threading.Thread):
    """Reads, splits and decodes blocks; puts ``(Decoded, received_ns)`` on the queue, then None."""

    def __init__(self, source: Input, config: ReceiveConfig, out: queue.Queue, metrics: RunMetrics):
        super().__init__(name="iotbench-reader", daemon=True)
        self.source, self.config, self.out, self.metrics = source, config, out, metrics
        self.ended_cleanly = False
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as err:  # surfaced by the caller thread
            self.error = err
        finally:
            self.out.put(None)

    def _emit(self, decoded: wire.Decoded, first_ns: int) -> None:
        count = len(decoded) + len(decoded.rejected)
        self.metrics.mark_received(count, first_ns)
        self.out.put((decoded, first_ns))
        self.metrics.queue_high_water = max(self.metrics.queue_high_water, self.out.qsize())

    def _run(self) -> None:
        batch, wait_s = self.config.batch, self.config.max_wait_ms / 1000
        pending: list[bytes] = []
        pending_since = 0.0
        first_ns = 0
        tail = b""
        binary: bool | None = None
        while True:
            timeout = None if not pending else max(pending_since + wait_s - time.monotonic(), 0)
            chunk = self.source.read(timeout)
            if chunk is None:  # the oldest image waited long enough: flush a partial block
                self._emit(wire.decode_lines(pending), first_ns)
                pending = []
                continue
            if binary is None and chunk:
                tail += chunk
                if len(tail) < len(wire.MAGIC) and wire.MAGIC.startswith(tail):
                    continue
                binary = tail.startswith(wire.MAGIC)
                chunk, tail = (tail[len(wire.MAGIC):] if binary else tail), b""
            if binary:
                self._run_binary(chunk)
                return
            if not chunk:  # end of stream without the end marker: sender gone
                if tail:
                    pending.append(tail)
                if pending:
                    self._emit(wire.decode_lines(pending), first_ns)
                return
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            for line in lines:
                if not line:  # the empty line: end of the stream
                    if pending:
                        self._emit(wire.decode_lines(pending), first_ns)
                    self.ended_cleanly = True
                    return
                if not pending:
                    pending_since, first_ns = time.monotonic(), now_ns()
                pending.append(line)
                if len(pending) >= batch:
                    self._emit(wire.decode_lines(pending), first_ns)
                    pending = []

    def _run_binary(self, data: bytes) -> None:
        """Binary frames: fixed size, so blocks are slices; the end frame stops the stream."""
        size = wire.FRAME_SIZE
        buf = bytearray(data)
        while True:
            whole = len(buf) // size
            if whole:
                decoded = wire.decode_frames(bytes(buf[: whole * size]))
                del buf[: whole * size]
                for start in range(0, len(decoded), self.config.batch):
                    self._emit(_slice(decoded, start, start + self.config.batch), now_ns())
                if decoded.sent_total is not None:
                    self.metrics.sent = decoded.sent_total
                    self.ended_cleanly = True
                    return
                if decoded.rejected:
                    self._emit(_slice(decoded, 0, 0, keep_rejected=True), now_ns())
            chunk = self.source.read(None)
            if not chunk:
                return
            buf += chunk


def _slice(d: wire.Decoded, start: int, stop: int, keep_rejected: bool = False) -> wire.Decoded:
    return wire.Decoded(
        d.labels[start:stop], d.images[start:stop], d.seq[start:stop], d.sent_ns[start:stop],
        raw=d.raw, rejected=d.rejected if keep_rejected else [],
    )


_NOTHING = object()


def _coalesced(blocks: queue.Queue, batch: int):
    """Decoded blocks from the queue until its end (None), each merged with the blocks already
    waiting behind it as long as the total stays within ``batch`` images (and the format matches)."""
    held = _NOTHING
    while True:
        item = blocks.get() if held is _NOTHING else held
        held = _NOTHING
        if item is None:
            return
        parts = [item[0]]
        count = len(item[0])
        while count < batch:
            try:
                follower = blocks.get_nowait()
            except queue.Empty:
                break
            if follower is None or count + len(follower[0]) > batch or follower[0].raw != parts[0].raw:
                held = follower
                break
            parts.append(follower[0])
            count += len(follower[0])
        yield _concat(parts)


def _concat(parts: list[wire.Decoded]) -> wire.Decoded:
    if len(parts) == 1:
        return parts[0]
    totals = [p.sent_total for p in parts if p.sent_total is not None]
    return wire.Decoded(
        labels=np.concatenate([p.labels for p in parts]),
        images=np.concatenate([p.images for p in parts]),
        seq=np.concatenate([p.seq for p in parts]),
        sent_ns=np.concatenate([p.sent_ns for p in parts]),
        raw=parts[0].raw,
        rejected=[r for p in parts for r in p.rejected],
        sent_total=totals[-1] if totals else None,
        rejected_seq=np.concatenate([p.rejected_seq for p in parts]),
    )


@dataclass
class ReceiveResult:
    metrics: RunMetrics
    ended_cleanly: bool
    scored: bool

    def summary(self) -> dict[str, Any]:
        summary = self.metrics.summary()
        if not self.scored:
            summary["accuracy"] = None
        summary["ended_cleanly"] = self.ended_cleanly
        return summary


def receive(source: Input, engine: Engine, config: ReceiveConfig | None = None,
            progress: Callable[[int], None] | None = None, limit: int | None = None) -> ReceiveResult:
    """Classify everything ``source`` delivers until its end marker or EOF.

    ``limit`` stops after that many images were classified (benchmarks use it per round).
    """
    config = config or ReceiveConfig()
    metrics = RunMetrics()
    blocks: queue.Queue = queue.Queue(maxsize=config.queue_depth)
    reader = _Reader(source, config, blocks, metrics)
    reader.start()
    scored = True
    next_progress = config.progress_every
    try:
        for decoded in _coalesced(blocks, config.batch):
            if decoded.sent_total is not None:
                metrics.sent = decoded.sent_total
            for reason, sample in metrics.reject(decoded.rejected, decoded.rejected_seq):
                log(f"Rejected line ({reason}): {sample[:60]!r}…")
            if len(decoded):
                predicted = engine.predict(decoded)
                if predicted is None:
                    scored = False
                    predicted = decoded.labels * 0 - 1
                metrics.record(decoded.labels, predicted, decoded.seq, decoded.sent_ns)
                while progress and metrics.classified >= next_progress:
                    progress(next_progress)
                    next_progress += config.progress_every
            if limit and metrics.classified >= limit:
                break
    finally:
        source.close()
    if reader.error is not None and not isinstance(reader.error, OSError):
        raise reader.error
    return ReceiveResult(metrics, reader.ended_cleanly, scored)
