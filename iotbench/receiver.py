"""The receiving side: bytes in (stdin or a socket), decoded batches to an engine, metrics out.

Two threads and a bounded queue, so that decoding and inference overlap and neither waits
for the other, while a slow engine pushes back on the socket (the queue fills, the reader
stops reading, the sender's writes block) instead of buffering without bound::

    reader thread: read → split lines/frames → block → wire.decode → queue
    caller thread: queue → blocks of ≤ batch → engine.predict → metrics

A text block is at most ``batch`` lines; a binary block is every whole frame of a read, so that
the reader wakes once per read, not once per batch, and takes less time from a fast engine's cores.

A block closes when it holds ``batch`` images or when its oldest image has waited
``max_wait_ms`` — so latency stays bounded at low rates and batches stay full at high ones.
When the engine falls behind (a stall, a busy machine), the small blocks that queued up
meanwhile are merged, up to ``batch`` images, into one engine call: the backlog is cleared
with few full calls instead of many padded small ones.
"""

from __future__ import annotations

import errno
import os
import queue
import select
import signal
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
#: Seconds the reader waits between checks of the stop flag while the queue is full.
_PUT_POLL_S = 0.2


@dataclass
class ReceiveConfig:
    batch: int = 1
    max_wait_ms: float = 20.0
    queue_depth: int = 4
    progress_every: int = 100
    #: Log at most this many rejected lines verbatim (all are counted).
    log_rejections: int = 5
    #: A stream that delivers nothing for this long is treated as cut (None: wait forever).
    idle_timeout_s: float | None = 60.0
    #: The model's input transform ("unit" / "unit_minus_mean"), to catch a %f stream on the wrong scale.
    expected_transform: str | None = None
    #: A scale mismatch is an error instead of a warning.
    strict_input: bool = False


class InputMismatch(ValueError):
    """A ``%f`` stream on another scale than the model expects (``--strict-input``)."""


class EngineFailed(RuntimeError):
    """The engine raised while classifying; the receiver stopped cleanly."""


class Input:
    """A readable byte stream: stdin, an accepted connection, or an outgoing connection."""

    def __init__(self, fd: int, closer: Callable[[], None] = lambda: None, name: str = "stdin"):
        self.fd, self._closer, self.name = fd, closer, name
        self._closed = False

    def read(self, timeout: float | None) -> bytes | None:
        """Up to READ_SIZE bytes; b"" at end of stream; None when ``timeout`` passed first."""
        if self._closed:
            return b""
        try:
            ready, _, _ = select.select([self.fd], [], [], timeout)
        except (OSError, ValueError):  # closed under us (the caller stopped the run)
            return b""
        if not ready:
            return None
        try:
            return os.read(self.fd, READ_SIZE)
        except (ConnectionResetError, OSError):
            return b""

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._closer()


def stdin_input() -> Input:
    return Input(sys.stdin.fileno())


def parse_endpoint(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``"PORT"``, ``"HOST:PORT"`` or ``"[V6]:PORT"`` -> ``(host, port)``; ValueError with a clear message."""
    host, sep, port = str(text).rpartition(":")
    if not sep:
        host, port = default_host, str(text)
    host = host.strip("[]") or default_host
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected [HOST:]PORT with PORT a number 0-65535, got {text!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def bind_server(host: str, port: int) -> socket.socket:
    """A listening socket; a busy port or an unknown address becomes one clear ConnectionError."""
    try:
        return socket.create_server((host, port))
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise ConnectionError(f"port {port} on {host} is already in use (pick another, or 0 for any free port)") \
                from None
        raise ConnectionError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None


def announce_listening(host: str, port: int, what: str) -> None:
    """The ``Listening on HOST:PORT`` line (tests and scripts read the port from it)."""
    log(f"Listening on {host}:{port}")
    if not is_loopback(host):
        log(f"{host}:{port} is reachable from other machines: {what}")


def listen_input(port: int, host: str = "127.0.0.1", ready: Callable[[int], None] | None = None,
                 first_byte_timeout_s: float | None = 60.0) -> Input:
    """Accept one sender on ``host:port`` (port 0: any free port, reported through ``ready``).

    A connection that closes before sending a single byte (a port probe, a health check) is not a
    sender, nor is one that sends nothing for ``first_byte_timeout_s``: it is dropped with a message
    and the next one is awaited, so a silent client cannot hold the receiver forever.
    """
    with bind_server(host, port) as server:
        bound = server.getsockname()[1]
        announce_listening(host, bound, "senders on the network can connect")
        if ready:
            ready(bound)
        while True:
            conn, peer = server.accept()
            ready_to_read, _, _ = select.select([conn], [], [], first_byte_timeout_s)
            if not ready_to_read:
                log(f"Client {peer[0]}:{peer[1]} connected but sent nothing for {first_byte_timeout_s:g} s; "
                    "dropped, waiting for the next one")
                conn.close()
                continue
            try:
                has_data = conn.recv(1, socket.MSG_PEEK)
            except OSError:
                has_data = b""
            if has_data:
                return Input(conn.fileno(), conn.close, f"{host}:{bound}")
            conn.close()


def connect_socket(host: str, port: int, timeout_s: float, what: str) -> socket.socket:
    """Connect, retrying while the peer starts, with one visible "waiting for" line; ConnectionError at the end."""
    deadline = time.monotonic() + timeout_s
    announced = False
    while True:
        try:
            conn = socket.create_connection((host, port), timeout=5)
            conn.settimeout(None)
            return conn
        except OSError as err:
            if time.monotonic() > deadline:
                raise ConnectionError(f"cannot connect to {what} at {host}:{port} within {timeout_s:g} s: "
                                      f"{err.strerror or err}") from None
            if not announced:
                log(f"waiting for {host}:{port}… (up to {timeout_s:g} s; --connect-timeout changes it)")
                announced = True
            time.sleep(0.1)


def connect_input(host: str, port: int, retry_s: float = 10.0) -> Input:
    """Connect to a listening sender (``iotbench send --listen`` or ``nc -lk``)."""
    conn = connect_socket(host, port, retry_s, "the sender")
    return Input(conn.fileno(), conn.close, f"{host}:{port}")


class _Reader(threading.Thread):
    """Reads, splits and decodes blocks; puts ``(Decoded, received_ns)`` on the queue, then None.

    It stops when the stream ends, when ``stop`` is set (the caller gave up: engine error, limit,
    Ctrl-C) or when nothing arrived for ``idle_timeout_s``.  Every put waits on a full queue in short
    slices so that a stopped caller never leaves this thread blocked.
    """

    def __init__(self, source: Input, config: ReceiveConfig, out: queue.Queue, metrics: RunMetrics):
        super().__init__(name="iotbench-reader", daemon=True)
        self.source, self.config, self.out, self.metrics = source, config, out, metrics
        self.ended_cleanly = False
        self.idle = False
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            self._run()
        except BaseException as err:  # surfaced by the caller thread
            self.error = err
        finally:
            self._put(None)

    def _put(self, item) -> None:
        while not self.stop.is_set():
            try:
                self.out.put(item, timeout=_PUT_POLL_S)
                return
            except queue.Full:
                continue

    def _emit(self, decoded: wire.Decoded, first_ns: int) -> None:
        count = len(decoded) + len(decoded.rejected)
        self.metrics.mark_received(count, first_ns)
        self._put((decoded, first_ns))
        self.metrics.queue_high_water = max(self.metrics.queue_high_water, self.out.qsize())

    def _emit_lines(self, lines: list[bytes], first_ns: int) -> None:
        """Decode a block of lines; a block that mixes scales arrives as several (one per run of one scale)."""
        for decoded in wire.decode_blocks(lines):
            self._emit(decoded, first_ns)

    def _read(self, timeout: float | None) -> bytes | None:
        """The next chunk; b"" at the end (or when stopped, or after the idle timeout)."""
        idle = self.config.idle_timeout_s
        deadline = None if idle is None else time.monotonic() + idle
        while not self.stop.is_set():
            wait = _PUT_POLL_S if timeout is None else min(timeout, _PUT_POLL_S)
            chunk = self.source.read(wait)
            if chunk is not None:
                return chunk
            if timeout is not None:
                timeout -= wait
                if timeout <= 0:
                    return None
            if deadline is not None and time.monotonic() > deadline:
                self.idle = True
                log(f"No data from the sender for {idle:g} s: treating the stream as cut")
                return b""
        return b""

    def _run(self) -> None:
        batch, wait_s = self.config.batch, self.config.max_wait_ms / 1000
        pending: list[bytes] = []
        pending_since = 0.0
        first_ns = 0
        tail = b""
        overlong = False
        binary: bool | None = None
        while True:
            timeout = None if not pending else max(pending_since + wait_s - time.monotonic(), 0)
            chunk = self._read(timeout)
            if chunk is None:  # the oldest image waited long enough: flush a partial block
                self._emit_lines(pending, first_ns)
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
                    self._emit_lines(pending, first_ns)
                return
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            if overlong:  # discarding the rest of a line longer than wire.MAX_LINE
                if not lines:
                    tail = b""
                    continue
                lines.pop(0)
                overlong = False
            if len(tail) > wire.MAX_LINE:  # no newline in sight: keep the head for the rejection, drop the rest
                lines.append(tail[: wire.MAX_LINE + 1])
                tail, overlong = b"", True
            for line in lines:
                if not line:  # the empty line: end of the stream
                    if pending:
                        self._emit_lines(pending, first_ns)
                    self.ended_cleanly = True
                    return
                if not pending:
                    pending_since, first_ns = time.monotonic(), now_ns()
                pending.append(line)
                if len(pending) >= batch:
                    self._emit_lines(pending, first_ns)
                    pending = []

    def _run_binary(self, data: bytes) -> None:
        """Binary frames: fixed size, so blocks are slices; the end frame stops the stream.

        Whole frames are decoded once ``batch`` of them are in, or when the oldest has waited
        ``max_wait_ms``, or the end frame is among them, as text lines are.  Decoding each socket
        chunk as it came (a few dozen frames while the engine holds the sender back) cost the
        receiver's thread a tenth of a core at 6,000 images/s, taken from the engine's two cores.
        """
        size, batch, wait_s = wire.FRAME_SIZE, self.config.batch, self.config.max_wait_ms / 1000
        buf = bytearray(data)
        since, since_ns = 0.0, 0  # when the oldest whole frame still in buf arrived
        while True:
            whole = len(buf) // size
            if whole and not since:
                since, since_ns = time.monotonic(), now_ns()
            if whole and (whole >= batch or time.monotonic() - since >= wait_s or _ends(buf, whole)):
                if self._emit_frames(buf, whole, since_ns):
                    return
                since = 0.0
                continue
            chunk = self._read(None if not whole else max(since + wait_s - time.monotonic(), 0))
            if chunk is None:  # the oldest frame waited long enough: decoded on the next turn
                continue
            if not chunk:
                if whole and self._emit_frames(buf, whole, since_ns):
                    return
                if buf:  # the stream stopped inside a frame
                    self._emit(_partial_frame(bytes(buf)), now_ns())
                return
            buf += chunk

    def _emit_frames(self, buf: bytearray, whole: int, first_ns: int) -> bool:
        """Decode and emit the first ``whole`` frames of ``buf`` (removed from it); True at the end frame."""
        size = wire.FRAME_SIZE
        block = bytes(buf[: whole * size])
        del buf[: whole * size]
        decoded = wire.decode_frames(block)
        self._emit(decoded, first_ns)  # one queue item: the caller cuts it into batches (see _coalesced)
        if decoded.sent_total is None:
            return False
        self.metrics.sent = decoded.sent_total
        self.ended_cleanly = True
        after = wire.frames_after_end(block) * size + len(buf)
        if after:
            self.metrics.add_garbage(wire.AFTER_END, -(-after // size))
            log(f"Ignored {after} bytes after the end frame")
        return True


def _ends(buf: bytearray, whole: int) -> bool:
    """Whether an end frame is among the first ``whole`` frames of ``buf`` (their label bytes, vectorized)."""
    labels = np.frombuffer(buf, np.uint8, whole * wire.FRAME_SIZE)[:: wire.FRAME_SIZE]
    return bool((labels == wire.END_LABEL).any())


def _slice(d: wire.Decoded, start: int, stop: int) -> wire.Decoded:
    return wire.Decoded(d.labels[start:stop], d.images[start:stop], d.seq[start:stop], d.sent_ns[start:stop],
                        raw=d.raw)


def _partial_frame(data: bytes) -> wire.Decoded:
    """The bytes of a frame cut by the end of the stream: rejected, with its sequence number if the header arrived."""
    empty = wire.empty_decoded()
    seq = np.empty(0, np.int64)
    if len(data) >= wire.FRAME_HEADER.size:
        label, number, _ = wire.FRAME_HEADER.unpack_from(data)
        if label < 10:
            seq = np.array([number], np.int64)
    return wire.Decoded(empty.labels, empty.images, empty.seq, empty.sent_ns, raw=True,
                        rejected=[(wire.PARTIAL_FRAME, data[:16])], rejected_seq=seq)


_NOTHING = object()


def _coalesced(blocks: queue.Queue, batch: int):
    """Decoded blocks from the queue until its end (None), each merged with the blocks already
    waiting behind it up to ``batch`` images (of one format).

    A waiting block that would overflow the batch is split: its head fills the batch, its tail
    opens the next one. Blocks follow the socket's reads, so without the split a backlog reaches
    the engine as alternating full and small batches, which costs a fast runtime a tenth of its
    ceiling. A block larger than the batch is cut the same way: the binary reader queues all whole
    frames of a read as one item, so that it wakes once per read rather than once per batch.
    """
    held = _NOTHING
    while True:
        item = blocks.get() if held is _NOTHING else held
        held = _NOTHING
        if item is None:
            return
        if len(item[0]) > batch:  # a read's worth of binary frames: one batch now, the rest next
            head, tail = _split(item[0], batch)
            item, held = (head, item[1]), (tail, item[1])
        parts = [item[0]]
        count = len(item[0])
        while count < batch:
            try:
                follower = blocks.get_nowait()
            except queue.Empty:
                break
            if follower is None or follower[0].raw != parts[0].raw:
                held = follower
                break
            if count + len(follower[0]) > batch:
                head, tail = _split(follower[0], batch - count)
                parts.append(head)
                held = (tail, follower[1])
                break
            parts.append(follower[0])
            count += len(follower[0])
        yield _concat(parts)


def _split(d: wire.Decoded, n: int) -> tuple[wire.Decoded, wire.Decoded]:
    """The first ``n`` images of a block, and the rest with the block's rejections and end total
    (so each is counted once, and the total still arrives with the last images)."""
    head = _slice(d, 0, n)
    tail = wire.Decoded(d.labels[n:], d.images[n:], d.seq[n:], d.sent_ns[n:], raw=d.raw, rejected=d.rejected,
                        sent_total=d.sent_total, rejected_seq=d.rejected_seq)
    return head, tail


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
            summary["correct"] = None
        summary["ended_cleanly"] = self.ended_cleanly
        return summary


def stream_scale(images: np.ndarray) -> str:
    """What a block of ``%f`` images looks like: "unit" ([0, 1]) or "unit_minus_mean" (negative values)."""
    return "unit_minus_mean" if (images < 0).any() else "unit"


def scale_mismatch(expected: str, seen: str) -> str | None:
    """The one-line warning for a ``%f`` stream whose scale is not the model's, or None when they agree."""
    if expected == seen:
        return None
    if expected == "unit_minus_mean":
        return ("the %f stream is on the [0,1] scale, but the model expects the training mean subtracted: "
                "send with -s (--subtractMean); accuracy will be far below the model card's")
    return ("the %f stream has the training mean subtracted (negative values), but the model expects [0,1] "
            "pixels: send without -s (--subtractMean); accuracy will be far below the model card's")


def _check_scale(decoded: wire.Decoded, config: ReceiveConfig) -> bool:
    """Warn (or raise, with ``strict_input``) once when a ``%f`` block's scale is not the model's.

    Returns True once a verdict was reached (the first block of scaled floats), so the check runs once.
    """
    raw = np.broadcast_to(np.asarray(decoded.raw), (len(decoded),))
    floats = decoded.images[~raw]
    if not len(floats):
        return False
    message = scale_mismatch(config.expected_transform, stream_scale(floats))
    if message and config.strict_input:
        raise InputMismatch(message)
    if message:
        log(f"WARNING: {message}")
    return True


def _catch_sigint(ctrl_c: threading.Event):
    """Note every SIGINT in ``ctrl_c`` before raising KeyboardInterrupt as Python does; returns the handler
    to restore (None off the main thread, where handlers cannot be set).

    Python raises KeyboardInterrupt wherever the main thread happens to be, and one raised inside a
    finalizer (``__del__``, a weakref callback) is printed as "Exception ignored" and dropped.  A receiver
    under CI load once kept classifying for 30 s after its SIGINT (where the exception went was not pinned
    down); with the flag, checked after every batch, a Ctrl-C cannot be lost while images flow.
    """
    if threading.current_thread() is not threading.main_thread():
        return None

    def on_sigint(signum, frame):
        ctrl_c.set()
        signal.default_int_handler(signum, frame)

    try:
        return signal.signal(signal.SIGINT, on_sigint)
    except ValueError:  # not the main interpreter
        return None


def receive(source: Input, engine: Engine, config: ReceiveConfig | None = None,
            progress: Callable[[RunMetrics], None] | None = None, limit: int | None = None) -> ReceiveResult:
    """Classify everything ``source`` delivers until its end marker or EOF.

    ``limit`` stops after that many images were classified (benchmarks use it per round).
    Ctrl-C ends the run early with what was done so far (``metrics.interrupted``); an engine that
    raises stops the reader and the source before :class:`EngineFailed` is raised, so no thread is
    left behind.
    """
    config = config or ReceiveConfig()
    metrics = RunMetrics()
    blocks: queue.Queue = queue.Queue(maxsize=config.queue_depth)
    ctrl_c = threading.Event()
    previous = _catch_sigint(ctrl_c)
    reader = _Reader(source, config, blocks, metrics)
    reader.start()
    scored = True
    scale_checked = config.expected_transform is None
    next_progress = config.progress_every
    try:
        for decoded in _coalesced(blocks, config.batch):
            if decoded.sent_total is not None:
                metrics.sent = decoded.sent_total
            for reason, sample in metrics.reject(decoded.rejected, decoded.rejected_seq):
                log(f"Rejected line ({reason}): {sample[:60]!r}…")
            if len(decoded):
                if not scale_checked:
                    scale_checked = _check_scale(decoded, config)
                try:
                    predicted = engine.predict(decoded)
                except Exception as err:
                    first = (str(err).strip().splitlines() or [""])[0]
                    raise EngineFailed(f"the engine failed after {metrics.classified} images: "
                                       f"{type(err).__name__}: {first}") from err
                if predicted is None:
                    scored = False
                    predicted = decoded.labels * 0 - 1
                metrics.record(decoded.labels, predicted, decoded.seq, decoded.sent_ns)
                if progress and config.progress_every and metrics.classified >= next_progress:
                    progress(metrics)  # once per batch at most, however many multiples it crossed
                    next_progress = (metrics.classified // config.progress_every + 1) * config.progress_every
            if limit and metrics.classified >= limit:
                break
            if ctrl_c.is_set():  # a Ctrl-C whose KeyboardInterrupt was lost on the way
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        metrics.interrupted = True
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        reader.stop.set()
        source.close()
        reader.join(5)
    if reader.error is not None and not isinstance(reader.error, OSError):
        raise reader.error
    metrics.truncated = not reader.ended_cleanly and not metrics.interrupted and not limit
    return ReceiveResult(metrics, reader.ended_cleanly, scored)
