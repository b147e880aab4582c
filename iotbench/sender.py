"""The image source: streams CIFAR-10 images at a requested rate to stdout, a client, or a server.

The original slept after every image (``accurate_wait``) and needed an empirical 0.7 fudge
factor to approach the requested rate.  Here each image has a *due time* on a schedule
drawn up front (inter-arrival gaps from the chosen distribution, mean ``1/rate``); the loop
writes every image that is due, then sleeps until the next one is.  Time spent encoding or
blocked on the socket is therefore caught up instead of accumulating, so the achieved rate
matches the requested one without any fudge.
"""

from __future__ import annotations

import math
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from iotbench import wire
from iotbench.data import cifar10
from iotbench.report import log

ARRIVALS = ("lognormal", "constant", "poisson", "max")
FORMATS = ("%f", "%d", "binary", "scala")
#: Most images written with one ``write`` call when the sender is behind schedule.
MAX_BURST = 256
#: A binary frame as numpy sees it (``wire.FRAME_HEADER``, then the pixels): a burst is stamped at once.
FRAME_DTYPE = np.dtype([("label", "u1"), ("seq", "<u4"), ("ns", "<i8"), ("pixels", "u1", (wire.PIXELS,))])
assert FRAME_DTYPE.itemsize == wire.FRAME_SIZE


@dataclass
class SendConfig:
    total: int = 100
    rate: float = 10.0
    arrival: str = "lognormal"
    fmt: str = "%f"
    v2: bool = False
    subtract_mean: bool = False
    split: str = "test"
    seed: int = 0
    progress_every: int | None = None  # default: one line per second's worth of images
    garbage: tuple[bytes, ...] = ()  # extra raw lines to inject (tests of the receiver's rejection)


@dataclass
class SendResult:
    sent: int
    elapsed_s: float
    interrupted: bool = False
    #: why the stream stopped early (one line), when it did
    reason: str | None = None
    #: seconds the schedule asked for (0 at max rate)
    scheduled_s: float = 0.0

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed_s if self.elapsed_s > 0 else 0.0


def inter_arrivals(config: SendConfig, rng: np.random.Generator) -> np.ndarray:
    """Gaps (seconds) between consecutive images; their mean is ``1 / rate``.

    lognormal reproduces the original's long-tailed waits (std = half the mean);
    poisson is exponential gaps; constant is a fixed period; max is zero.
    """
    n = config.total
    if config.arrival == "max" or not config.rate or config.rate <= 0:
        return np.zeros(n)
    mean = 1.0 / config.rate
    if config.arrival == "constant":
        return np.full(n, mean)
    if config.arrival == "poisson":
        return rng.exponential(mean, n)
    if config.arrival == "lognormal":
        sigma2 = math.log(1 + 0.25)  # coefficient of variation 0.5, as the original's std = mean / 2
        return rng.lognormal(math.log(mean) - sigma2 / 2, math.sqrt(sigma2), n)
    raise ValueError(f"unknown arrival process {config.arrival!r}; choose from {', '.join(ARRIVALS)}")


class ImageSource:
    """Encodes images of one split in the configured format, each at most once (cached)."""

    def __init__(self, config: SendConfig):
        data = cifar10.load(config.split)
        self.labels = data.labels
        self.fmt = config.fmt
        if config.fmt == "%f":
            values = data.images.astype("float32") / 255
            if config.subtract_mean:
                values -= cifar10.pixel_mean()
            self.values = values
        else:
            self.values = data.images
        self._cache: dict[int, bytes] = {}
        self._frames: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def preencode(self, count: int) -> None:
        """Encode the first ``count`` distinct images now, so the send loop only writes.

        Text encoding costs ~0.1-0.4 ms per image — as much as the whole per-image budget
        at a few thousand images per second — so, like the original, encode before the clock starts.
        """
        for i in range(min(count, len(self))):
            self.payload(i)

    def binary_frames(self, first: int, count: int) -> np.ndarray:
        """Binary frames of images ``first`` … ``first + count - 1`` (cycled): labels and pixels filled,
        ``seq`` and ``ns`` left for the caller to stamp when it writes them."""
        if self._frames is None:
            self._frames = np.zeros(len(self), FRAME_DTYPE)
            self._frames["label"] = self.labels
            self._frames["pixels"] = self.values.reshape(len(self), -1)
        return self._frames[np.arange(first, first + count) % len(self)]

    def payload(self, index: int) -> tuple[int, bytes]:
        """(label, encoded body) of image ``index`` (cycled); body excludes any v2 header."""
        i = index % len(self.labels)
        body = self._cache.get(i)
        if body is None:
            label = int(self.labels[i])
            if self.fmt == "binary":
                body = np.ascontiguousarray(self.values[i]).tobytes()
            elif self.fmt == "scala":
                body = wire.encode_scala(label, self.values[i])
            else:
                body = wire.encode_v1(label, self.values[i], self.fmt)
            self._cache[i] = body
        return int(self.labels[i]), body


def frames(config: SendConfig, source: ImageSource) -> Iterator[tuple[int, int, int, bytes]]:
    """``(images, seq, label, body)`` in send order: images is 1 for an image, 0 for injected garbage.

    The v2 header or binary frame header is added by :func:`stream` at the moment of
    writing, so the send timestamp is the real send time, not the time the image was queued.
    """
    garbage_every = max(config.total // (len(config.garbage) + 1), 1) if config.garbage else 0
    pending = list(config.garbage)
    for i in range(config.total):
        if pending and i and i % garbage_every == 0:
            yield 0, -1, -1, pending.pop(0) + b"\n"
        label, body = source.payload(i)
        yield 1, i, label, body
    for line in pending:
        yield 0, -1, -1, line + b"\n"


def _stamped(config: SendConfig, seq: int, label: int, body: bytes) -> bytes:
    if config.fmt == "binary":
        return wire.FRAME_HEADER.pack(label, seq, time.time_ns()) + body
    if config.v2:
        return wire.v2_header(seq, time.time_ns()) + body
    return body


def stream(config: SendConfig, write: Callable[[bytes | memoryview], object],
           progress: Callable[[int], None] | None = None, source: ImageSource | None = None) -> SendResult:
    """Write ``config.total`` images through ``write`` on schedule; returns what was sent.

    ``sent`` counts images whose bytes ``write`` accepted: after a broken pipe it is the true
    number delivered to the pipe or socket, never an estimate.
    """
    if config.fmt == "binary" and config.arrival == "max" and not config.garbage:
        return _stream_binary_max(config, write, progress, source or ImageSource(config))
    if source is None:
        source = ImageSource(config)
        source.preencode(config.total)
    gaps = inter_arrivals(config, np.random.default_rng(config.seed))
    due = np.cumsum(gaps) - (gaps[0] if len(gaps) else 0)  # first image at once
    every = config.progress_every or max(int(config.rate) * 5 if config.arrival != "max" else 10_000, 1)
    if config.fmt == "binary":
        write(wire.MAGIC)
    next_progress = every
    sent = 0  # images whose every byte ``write`` accepted
    queued = 0  # images in the current burst
    burst: list[bytes] = []
    burst_images: list[int] = []  # 1 per image body, 0 per injected garbage line
    start = time.perf_counter()

    def flush() -> None:
        nonlocal sent, queued
        if burst:
            try:
                write(b"".join(burst))
            except (BrokenPipeError, ConnectionError) as err:  # count the images that got through whole
                written = getattr(err, "written", 0)
                ends = np.cumsum([len(b) for b in burst])
                sent += sum(n for n, end in zip(burst_images, ends) if end <= written)
                raise
            burst.clear()
            burst_images.clear()
        sent += queued
        queued = 0

    try:
        for count, seq, label, body in frames(config, source):
            if count:
                wait = due[sent + queued] - (time.perf_counter() - start)
                if wait > 0:
                    flush()
                if wait > 0.0005:
                    time.sleep(wait)
                body = _stamped(config, seq, label, body)
            burst.append(body)
            burst_images.append(count)
            queued += count
            if len(burst) >= MAX_BURST or config.arrival != "max":
                flush()
                if progress and sent >= next_progress:  # bursts of 256 rarely land on a multiple exactly
                    progress(sent)
                    next_progress = (sent // every + 1) * every
        flush()
        if config.fmt == "binary":
            write(wire.end_frame(sent))
        else:
            if config.v2:
                write(wire.v2_trailer(sent))
            write(b"\n")  # an empty line ends the stream, as in the original
    except (BrokenPipeError, ConnectionError, KeyboardInterrupt) as err:
        return _cut_short(sent, start, err)
    return SendResult(sent, time.perf_counter() - start, scheduled_s=float(due[-1]) if len(due) else 0.0)


def _cut_short(sent: int, start: float, err: BaseException) -> SendResult:
    """A stream that ended before its last image, as a result: the receiver hung up, or Ctrl-C.

    ``sent`` counts only the images whose every byte was written, so the receiver's accounting
    can still close (``sent = classified + rejected + lost``).
    """
    reason = "interrupted" if isinstance(err, KeyboardInterrupt) else "the receiver closed the connection (broken pipe)"
    return SendResult(sent, time.perf_counter() - start, interrupted=True, reason=reason)


def _stream_binary_max(config: SendConfig, write: Callable[[bytes | memoryview], object],
                       progress: Callable[[int], None] | None, source: ImageSource) -> SendResult:
    """:func:`stream` for binary frames as fast as possible: bursts of ``MAX_BURST`` frames stamped and
    written as one array.

    Why a path of its own: at max rate the per-image loop of :func:`stream` cost the sender ~2 µs
    of CPU per image, taken from the two cores a receiver classifying 7,000 images/s needs.
    """
    every = config.progress_every or 10_000
    next_progress, sent, start = every, 0, time.perf_counter()
    try:
        write(wire.MAGIC)
        while sent < config.total:
            burst = source.binary_frames(sent, min(MAX_BURST, config.total - sent))
            burst["seq"] = np.arange(sent, sent + len(burst))
            burst["ns"] = time.time_ns()
            try:
                write(burst.view(np.uint8).data)  # the frames' bytes, without a copy
            except (BrokenPipeError, ConnectionError) as err:  # count the frames that got through whole
                sent += min(getattr(err, "written", 0) // wire.FRAME_SIZE, len(burst))
                raise
            sent += len(burst)
            if progress and sent >= next_progress:
                progress(sent)
                next_progress = (sent // every + 1) * every
        write(wire.end_frame(sent))
    except (BrokenPipeError, ConnectionError, KeyboardInterrupt) as err:
        return _cut_short(sent, start, err)
    return SendResult(sent, time.perf_counter() - start)


def behind_schedule(result: SendResult, config: SendConfig, tolerance: float = 0.05) -> str | None:
    """A warning when the stream took more than ``tolerance`` longer than its schedule, else None.

    A receiver that cannot keep up pushes back (its socket buffer fills, our writes block), so the
    achieved rate falls below the requested one: say by how much instead of reporting it silently.
    """
    if config.arrival == "max" or result.interrupted or not result.sent or result.scheduled_s <= 0:
        return None
    behind = result.elapsed_s / result.scheduled_s - 1
    if behind <= tolerance:
        return None
    return (f"the stream ran {100 * behind:.0f}% behind its schedule: {result.rate:.0f} of {config.rate:g} "
            "images/second asked (the receiver, or this machine, did not keep up)")


# --------------------------------------------------------------------------- outputs


def to_stdout(config: SendConfig, out: BinaryIO | None = None, source: ImageSource | None = None) -> SendResult:
    """Write the stream to stdout (or ``out``) unbuffered, so that a broken pipe knows how many bytes got through."""
    fd = (out or sys.stdout.buffer).fileno()

    def write(data: bytes | memoryview) -> None:
        view, done = memoryview(data), 0
        while done < len(view):
            try:
                done += os.write(fd, view[done:])
            except BrokenPipeError as err:
                err.written = done  # type: ignore[attr-defined]
                raise

    return stream(config, write, _progress, source)


def to_connection(config: SendConfig, host: str, port: int, retry_s: float = 10.0,
                  source: ImageSource | None = None) -> SendResult:
    """``--connect HOST:PORT``: connect (retrying while the receiver starts, with a visible line) and stream."""
    from iotbench.receiver import connect_socket

    with connect_socket(host, port, retry_s, "the receiver") as sock:
        result = stream(config, sock.sendall, _progress, source)
        _close_gracefully(sock)
    return result


def serve(config: SendConfig, port: int, host: str = "127.0.0.1",
          ready: Callable[[int], None] | None = None, source: ImageSource | None = None) -> SendResult:
    """``--listen [HOST:]PORT``: what ``nc -lk PORT`` did — stream to whichever client is connected.

    The stream waits for a client; if that client goes away mid-stream, the rest of the
    stream goes to the next client that connects (as with ``nc -lk``; a v2 receiver sees
    the gap as lost images; a binary client first gets the stream's ``MAGIC`` header).  ``port``
    0 picks a free port, announced on stderr and through ``ready``.
    """
    from iotbench.receiver import announce_listening, bind_server

    with bind_server(host, port) as server:
        bound = server.getsockname()[1]
        announce_listening(host, bound, "receivers on the network can connect")
        if ready:
            ready(bound)
        writer = _ClientWriter(server, preamble=wire.MAGIC if config.fmt == "binary" else b"")
        writer.accept()  # the schedule (and v2 send times) start once someone is listening
        result = stream(config, writer, _progress, source)
        if writer.conn is not None:
            _close_gracefully(writer.conn)
            writer.conn.close()
    return result


class _ClientWriter:
    """A ``write`` that (re)accepts a client whenever there is none.

    The first client gets the stream's header through the stream itself; a client accepted later
    gets ``preamble`` (the binary ``MAGIC``) first, so that it can tell the format too.
    """

    def __init__(self, server: socket.socket, preamble: bytes = b""):
        self.server = server
        self.preamble = preamble
        self.conn: socket.socket | None = None
        self.clients = 0

    def accept(self) -> None:
        self.conn, peer = self.server.accept()
        self.clients += 1
        log(f"Client {peer[0]}:{peer[1]} connected")

    def __call__(self, data: bytes | memoryview) -> None:
        while True:
            if self.conn is None:
                self.accept()
                if self.preamble and bytes(data[:len(self.preamble)]) != self.preamble:
                    data = self.preamble + bytes(data)
            try:
                self.conn.sendall(data)
                return
            except OSError:
                log("Client went away; waiting for the next one")
                self.conn.close()
                self.conn = None


def _close_gracefully(sock: socket.socket) -> None:
    """Half-close and wait for the peer to finish reading, so no sent byte is discarded."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(30)
        while sock.recv(65536):
            pass
    except OSError:
        pass


def _progress(sent: int) -> None:
    log(f"{sent} images sent")


def describe(config: SendConfig) -> str:
    rate = "as fast as possible" if config.arrival == "max" else f"{config.rate:g} images per second ({config.arrival})"
    extra = " with pixel mean subtracted" if config.subtract_mean else ""
    wire_name = "binary" if config.fmt == "binary" else f"{'v2' if config.v2 else 'v1'} text {config.fmt}"
    return f"Sending {rate} for a total of {config.total} images{extra} [{wire_name}]"
