"""Fault injection: every image accounted for (``sent = classified + rejected + lost``) under every fault.

Each case puts one fault into a real stream — a damaged line at the start, middle or end, a
proxy that drops, duplicates and reorders, a killed sender, a silent client, a line without a
newline, a slow engine, a failing engine — and asserts the exact counts and the message.  The
receiver runs for real: in-process over a real pipe or socket where the case needs to look inside
(threads, memory), as the real CLI in a subprocess otherwise.  The last test checks that nothing
this module started is still running.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fixtures.sender import start_sender
from iotbench import receiver, wire
from iotbench.engines.null import NullEngine
from iotbench.metrics import EXIT_INTERRUPTED, EXIT_NOTHING_CLASSIFIED, EXIT_OK, EXIT_TRUNCATED

pytestmark = pytest.mark.faults

IOTBENCH = [sys.executable, "-m", "iotbench"]
N = 60  # images per stream: small, and enough for a start, a middle and an end
POSITIONS = {"start": 0, "middle": N // 2, "end": N - 1}
_STARTED: list[subprocess.Popen] = []


# --------------------------------------------------------------------------- helpers


def popen(cmd: list[str], **kwargs) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, **kwargs)
    _STARTED.append(proc)
    return proc


def image_lines(cifar, fmt: str, n: int = N, v2: bool = False) -> list[bytes]:
    """The first ``n`` test images as wire lines (no newline), v2-stamped when asked."""
    values = cifar.images[:n] if fmt == "%d" else cifar.images[:n].astype(np.float32) / 255
    lines = [wire.encode_v1(int(lb), im, fmt)[:-1] for lb, im in zip(cifar.labels[:n], values)]
    if v2:
        lines = [wire.v2_header(i, time.time_ns()) + line for i, line in enumerate(lines)]
    return lines


def damaged(line: bytes, reason: str) -> bytes:
    """``line`` (a v1 or v2 image line) damaged so that the decoder must give ``reason``; the v2 header stays
    readable except for BAD_HEADER, so the receiver knows which image it was."""
    head = b""
    if line.startswith(wire.V2_PREFIX):
        cut = line.index(b":", line.index(b":") + 1) + 1
        head, line = line[:cut], line[cut:]
    values = line[1:].split(b" ")
    body = {
        wire.EMPTY: lambda: line[:1],
        wire.WRONG_LENGTH: lambda: line[:1] + b" ".join(values[:-1]),
        wire.NOT_NUMERIC: lambda: line[:1] + b" ".join([*values[:-1], b"abc"]),
        wire.BAD_LABEL: lambda: b"x" + line[1:],
        wire.TOO_LONG: lambda: line[:1] + b"1 " * (wire.MAX_LINE // 2 + 8),
        wire.OUT_OF_RANGE: lambda: line[:1] + b" ".join([b"999", *values[1:]]),
        wire.BAD_HEADER: lambda: line,
    }[reason]()
    if reason == wire.BAD_HEADER:
        return b"~x9:" + head[1:] + body if head else b"~x9:" + body
    return head + body


def receive_bytes(data: bytes, engine=None, **config) -> dict:
    """Feed ``data`` through a real pipe into :func:`receiver.receive`; the summary."""
    r, w = os.pipe()

    def feed():
        with os.fdopen(w, "wb") as out, contextlib.suppress(BrokenPipeError):
            out.write(data)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    cfg = receiver.ReceiveConfig(batch=16, max_wait_ms=5, idle_timeout_s=10, **config)
    result = receiver.receive(receiver.Input(r, lambda: os.close(r), "pipe"), engine or NullEngine(), cfg)
    t.join(10)
    return result.summary()


def cli_receive(data: bytes, *args: str, timeout: float = 60) -> tuple[int, str, str, dict]:
    """``iotbench infer null`` reading ``data`` on stdin: (exit status, stdout, stderr, JSON summary)."""
    out = Path(os.environ.get("PYTEST_TMP", "/tmp")) / f"faults-{os.getpid()}-{time.monotonic_ns()}.json"
    proc = popen([*IOTBENCH, "infer", "null", "--json", str(out), *args], stdin=subprocess.PIPE,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stdout, stderr = proc.communicate(data, timeout=timeout)
    summary = json.loads(out.read_text()) if out.exists() else {}
    out.unlink(missing_ok=True)
    return proc.returncode, stdout.decode(), stderr.decode(), summary


def stream_bytes(lines: list[bytes], sent: int | None = None) -> bytes:
    trailer = wire.v2_trailer(sent) if sent is not None else b""
    return b"\n".join(lines) + b"\n" + trailer + b"\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(0.05)


def counts(s: dict) -> tuple:
    return s["sent"], s["classified"], s["rejected"], s["lost"]


# --------------------------------------------------------------------------- damaged lines, each position, each format

TEXT_REASONS = [wire.EMPTY, wire.WRONG_LENGTH, wire.NOT_NUMERIC, wire.BAD_LABEL, wire.TOO_LONG]


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("reason", [*TEXT_REASONS, wire.OUT_OF_RANGE])
def test_a_damaged_d_line_rejects_itself_only(cifar_test, reason, position):
    lines = image_lines(cifar_test, "%d")
    lines.insert(POSITIONS[position], damaged(lines[POSITIONS[position]], reason))  # an extra, damaged line
    s = receive_bytes(stream_bytes(lines))
    assert (s["received"], s["classified"], s["rejected"]) == (N + 1, N, 1)
    assert s["rejected_by_reason"] == {reason: 1}
    assert s["lost"] is None and s["sequenced"] is False and s["accounted"] is True


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("reason", TEXT_REASONS)
def test_a_damaged_f_line_rejects_itself_only(cifar_test, reason, position):
    lines = image_lines(cifar_test, "%f")
    lines.insert(POSITIONS[position], damaged(lines[POSITIONS[position]], reason))
    s = receive_bytes(stream_bytes(lines))
    assert (s["classified"], s["rejected"], s["rejected_by_reason"]) == (N, 1, {reason: 1})


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("reason", [*TEXT_REASONS, wire.OUT_OF_RANGE, wire.BAD_HEADER])
def test_a_damaged_v2_image_is_rejected_once_and_never_also_lost(cifar_test, reason, position):
    lines = image_lines(cifar_test, "%d", v2=True)
    i = POSITIONS[position]
    lines[i] = damaged(lines[i], reason)  # the image itself is damaged (not an extra line)
    s = receive_bytes(stream_bytes(lines, sent=N))
    assert counts(s) == (N, N - 1, 1, 0)
    assert s["rejected_by_reason"] == {reason: 1} and s["garbage_lines"] == 0 and s["accounted"] is True


def test_one_stray_f_line_among_d_lines_keeps_every_image(cifar_test):
    lines = image_lines(cifar_test, "%d", n=63)
    lines.insert(30, image_lines(cifar_test, "%f", n=1)[0])
    s = receive_bytes(stream_bytes(lines))
    assert (s["classified"], s["rejected"]) == (64, 0)


def test_the_issue_stream_200_good_lines_and_one_garbage_line_through_the_cli(cifar_test):
    lines = image_lines(cifar_test, "%d", n=200)
    lines.insert(100, b"3abc.def")
    status, stdout, stderr, s = cli_receive(stream_bytes(lines))
    assert status == EXIT_OK
    assert (s["classified"], s["rejected"]) == (200, 1)
    assert "Rejected line (non-numeric characters)" in stderr


def test_the_corrupted_v2_header_stream_closes_the_identity_through_the_cli(cifar_test):
    lines = image_lines(cifar_test, "%f", n=50, v2=True)
    lines[10] = damaged(lines[10], wire.BAD_HEADER)
    status, stdout, _, s = cli_receive(stream_bytes(lines, sent=50))
    assert status == EXIT_OK
    assert counts(s) == (50, 49, 1, 0)
    assert "sent 50" in stdout and "rejected 1" in stdout and "lost 0" in stdout


def test_injected_garbage_in_a_v2_stream_is_garbage_not_a_sent_image(cifar_test):
    lines = image_lines(cifar_test, "%d", v2=True)
    lines[20:20] = [b"hello", b"3 1 2"]  # two unsequenced lines that are no image of this stream
    s = receive_bytes(stream_bytes(lines, sent=N))
    assert counts(s) == (N, N, 0, 0) and s["garbage_lines"] == 2


def test_a_stream_of_garbage_only_exits_non_zero_with_a_reason():
    status, _, stderr, s = cli_receive(b"hello\nworld\n\n")
    assert status == EXIT_NOTHING_CLASSIFIED
    assert s["rejected"] == 2 and s["classified"] == 0
    assert "nothing was classified: every image was rejected" in stderr


# --------------------------------------------------------------------------- binary edge cases


def frames(cifar, n: int = N) -> list[bytes]:
    return [wire.encode_frame(int(cifar.labels[i]), cifar.images[i], i, time.time_ns()) for i in range(n)]


def test_binary_bad_label_frame_is_rejected_with_its_sequence_number(cifar_test):
    fs = frames(cifar_test)
    fs[N - 1] = bytes([77]) + fs[N - 1][1:]  # in the same read as the end frame
    s = receive_bytes(wire.MAGIC + b"".join(fs) + wire.end_frame(N))
    assert counts(s) == (N, N - 1, 1, 0) and s["rejected_by_reason"] == {wire.BAD_LABEL: 1}


def test_binary_partial_frame_at_eof_is_rejected_and_the_stream_truncated(cifar_test):
    fs = frames(cifar_test)
    data = wire.MAGIC + b"".join(fs[:-1]) + fs[-1][:1000]
    s = receive_bytes(data)
    assert s["truncated"] is True and s["sent"] is None and s["sent_at_least"] == N
    assert (s["classified"], s["rejected"], s["lost"]) == (N - 1, 1, 0)
    assert s["rejected_by_reason"] == {wire.PARTIAL_FRAME: 1}


def test_binary_frames_after_the_end_frame_are_not_classified(cifar_test):
    fs = frames(cifar_test)
    s = receive_bytes(wire.MAGIC + b"".join(fs[:40]) + wire.end_frame(40) + b"".join(fs[40:]))
    # what was read after the end frame is counted as garbage (the receiver stops reading at the end frame)
    assert counts(s) == (40, 40, 0, 0) and 1 <= s["garbage_lines"] <= N - 40


def test_binary_client_accepted_again_gets_the_header_first(cifar_test):
    """``send --listen --format binary``: the second client also starts with MAGIC, so it can tell the format."""
    snd = start_sender("-t", "200000", "-i", "0", "--format", "binary")
    _STARTED.append(snd.proc)
    port = snd.wait_listening()
    with socket.create_connection(("127.0.0.1", port)) as first:
        assert first.recv(len(wire.MAGIC), socket.MSG_WAITALL) == wire.MAGIC
        first.recv(1 << 16)
    time.sleep(0.3)  # the sender notices the first client left on its next write
    second = receiver.connect_input("127.0.0.1", port)
    s = receiver.receive(second, NullEngine(), receiver.ReceiveConfig(batch=256, idle_timeout_s=10), limit=2000)
    snd.stop()
    assert s.metrics.classified >= 2000 and s.metrics.rejected_total == 0


# --------------------------------------------------------------------------- a proxy that drops, duplicates, reorders


class LineProxy(threading.Thread):
    """Accepts one client on loopback and forwards the lines of ``upstream`` with faults applied by index."""

    def __init__(self, upstream_port: int, drop=(), duplicate=(), swap=()):
        super().__init__(daemon=True)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.upstream_port, self.drop, self.duplicate, self.swap = upstream_port, set(drop), set(duplicate), set(swap)

    def run(self) -> None:
        conn, _ = self.server.accept()
        up = socket.create_connection(("127.0.0.1", self.upstream_port))
        data = b""
        while chunk := up.recv(1 << 20):
            data += chunk
        out: list[bytes] = []
        held: bytes | None = None
        k = 0
        for line in data.split(b"\n"):
            if not (line.startswith(wire.V2_PREFIX) and not line.startswith(wire.V2_END)):
                out.append(line)
                continue
            k += 1
            if k - 1 in self.drop:
                continue
            if k - 1 in self.swap:  # hold image k-1, send it after the next one
                held = line
                continue
            out.append(line)
            if k - 1 in self.duplicate:
                out.append(line)
            if held is not None:
                out.append(held)
                held = None
        conn.sendall(b"\n".join(out))
        conn.close()
        up.close()
        self.server.close()


def test_proxy_drops_duplicates_and_reorders_and_every_image_is_accounted_for():
    snd = start_sender("-t", str(N), "-i", "0", "--format", "%d", "--v2")
    _STARTED.append(snd.proc)
    proxy = LineProxy(snd.wait_listening(), drop=(5, 40), duplicate=(10, 11, 12), swap=(20,))
    proxy.start()
    s = receiver.receive(receiver.connect_input("127.0.0.1", proxy.port), NullEngine(),
                         receiver.ReceiveConfig(batch=8, idle_timeout_s=10)).summary()
    proxy.join(10)
    snd.wait(30)
    assert counts(s) == (N, N - 2, 0, 2)
    assert (s["duplicated"], s["reordered"], s["accounted"]) == (3, 1, True)


# --------------------------------------------------------------------------- processes and sockets


def test_sender_killed_mid_stream_is_reported_truncated_and_exits_non_zero():
    port = free_port()
    recv = popen([*IOTBENCH, "infer", "null", "--listen", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    snd = start_sender("-t", "100000", "-i", "3000", "--format", "%d", "--v2", "--connect", f"127.0.0.1:{port}",
                       listen=False)
    _STARTED.append(snd.proc)
    wait_for(lambda: any(b"Sending" in line for line in snd.stderr), 60)
    time.sleep(2)
    snd.proc.kill()
    try:
        stdout, stderr = recv.communicate(timeout=60)
    finally:
        recv.kill()
    assert recv.returncode == EXIT_TRUNCATED
    assert b"truncated yes" in stdout and b"the stream was cut before its end marker" in stderr


def test_receiver_started_late_gets_every_image_from_a_waiting_sender():
    port = free_port()
    snd = start_sender("-t", "300", "-i", "0", "--format", "%d", "--v2", "--connect", f"127.0.0.1:{port}",
                       "--connect-timeout", "60", listen=False)
    _STARTED.append(snd.proc)
    wait_for(lambda: any(b"waiting for 127.0.0.1:" in line for line in snd.stderr), 60)  # retrying, and says so
    time.sleep(1)
    src = receiver.listen_input(port)
    s = receiver.receive(src, NullEngine(), receiver.ReceiveConfig(batch=64, idle_timeout_s=10)).summary()
    assert snd.wait(30)["returncode"] == 0
    assert counts(s) == (300, 300, 0, 0)


def test_a_client_that_connects_and_never_sends_is_dropped_after_a_bounded_wait(capfd):
    ports: list[int] = []
    got: dict = {}

    def run():
        src = receiver.listen_input(0, ready=ports.append, first_byte_timeout_s=1.0)
        got["summary"] = receiver.receive(src, NullEngine(), receiver.ReceiveConfig(batch=64)).summary()

    t = threading.Thread(target=run, daemon=True)
    t.start()
    while not ports:
        time.sleep(0.05)
    silent = socket.create_connection(("127.0.0.1", ports[0]))
    time.sleep(1.5)
    snd = start_sender("-t", "50", "-i", "0", "--format", "%d", "--v2", "--connect", f"127.0.0.1:{ports[0]}",
                       listen=False)
    _STARTED.append(snd.proc)
    t.join(60)
    silent.close()
    assert "sent nothing for 1 s; dropped" in capfd.readouterr().err
    assert counts(got["summary"]) == (50, 50, 0, 0)


def test_a_stream_that_goes_silent_ends_after_the_idle_timeout_as_truncated(cifar_test):
    r, w = os.pipe()
    data = stream_bytes(image_lines(cifar_test, "%d", n=10, v2=True))[:-1]  # no empty line: the stream stays open
    threading.Thread(target=os.write, args=(w, data), daemon=True).start()
    t0 = time.monotonic()
    res = receiver.receive(receiver.Input(r, lambda: os.close(r)), NullEngine(),
                           receiver.ReceiveConfig(batch=4, idle_timeout_s=1.0))
    os.close(w)
    assert time.monotonic() - t0 < 30
    assert res.summary()["truncated"] is True and res.metrics.classified == 10


def rss_kb(pid: int, key: str = "VmHWM") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
    raise KeyError(key)


def test_a_huge_line_without_newline_is_rejected_and_memory_stays_bounded(cifar_test, tmp_path):
    out = tmp_path / "summary.json"
    recv = popen([*IOTBENCH, "infer", "null", "--json", str(out), "-b", "16"], stdin=subprocess.PIPE,
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(2)
    base = rss_kb(recv.pid, "VmRSS")
    junk = b"7" + b"1 " * (1 << 19)  # 1 MB, no newline
    for _ in range(64):  # 64 MB of one line
        recv.stdin.write(junk)
    high = rss_kb(recv.pid)
    recv.communicate(b"\n" + stream_bytes(image_lines(cifar_test, "%d", n=20)), timeout=60)
    summary = json.loads(out.read_text())
    assert summary["rejected_by_reason"] == {wire.TOO_LONG: 1} and summary["classified"] == 20
    assert high - base < 100_000, f"receiver grew by {(high - base) // 1024} MB reading one long line"


class SlowEngine(NullEngine):
    """Classifies nothing, slowly: the backlog must stay in the sender's socket, not in the receiver."""

    def predict(self, batch):
        time.sleep(0.05)
        return None


def test_a_slow_engine_pushes_back_and_the_receiver_does_not_buffer_the_backlog():
    snd = start_sender("-t", "100000", "-i", "0", "--format", "%d")
    _STARTED.append(snd.proc)
    port = snd.wait_listening()
    before = rss_kb(os.getpid(), "VmRSS")
    res = receiver.receive(receiver.connect_input("127.0.0.1", port), SlowEngine(),
                           receiver.ReceiveConfig(batch=64, queue_depth=4, idle_timeout_s=30), limit=3000)
    after = rss_kb(os.getpid(), "VmRSS")
    snd.stop()
    assert res.metrics.classified >= 3000
    assert res.metrics.queue_high_water <= 4
    assert after - before < 100_000, f"receiver grew by {(after - before) // 1024} MB behind a slow engine"


class FailingEngine(NullEngine):
    def __init__(self, after: int):
        self.calls, self.after = 0, after

    def predict(self, batch):
        self.calls += 1
        if self.calls > self.after:
            raise RuntimeError("device lost\nJava stack trace line 1\nline 2")
        return batch.labels


def test_an_engine_that_raises_stops_the_run_cleanly_with_one_line():
    snd = start_sender("-t", "100000", "-i", "0", "--format", "%d")
    _STARTED.append(snd.proc)
    port = snd.wait_listening()
    with pytest.raises(receiver.EngineFailed) as err:
        receiver.receive(receiver.connect_input("127.0.0.1", port), FailingEngine(after=3),
                         receiver.ReceiveConfig(batch=32))
    snd.stop()
    assert re.fullmatch(r"the engine failed after \d+ images: RuntimeError: device lost", str(err.value))
    assert not [t for t in threading.enumerate() if t.name == "iotbench-reader"], "reader thread left behind"


def test_sigint_on_a_receiver_prints_the_summary_so_far_and_exits_130():
    snd = start_sender("-t", "100000", "-i", "2000", "--format", "%d", "--v2")
    _STARTED.append(snd.proc)
    port = snd.wait_listening()
    recv = popen([*IOTBENCH, "infer", "null", "--connect", f"127.0.0.1:{port}"], stdout=subprocess.PIPE,
                 stderr=subprocess.PIPE)
    time.sleep(4)
    recv.send_signal(signal.SIGINT)
    stdout, stderr = recv.communicate(timeout=30)
    snd.stop()
    assert recv.returncode == EXIT_INTERRUPTED
    assert stdout.startswith(b"Inferenced ") and b"interrupted" in stderr


# --------------------------------------------------------------------------- one-line errors through the real CLI


@pytest.fixture
def busy_port():
    with socket.create_server(("127.0.0.1", 0)) as s:
        yield s.getsockname()[1]


@pytest.mark.parametrize("cmd", [
    ["send", "-t", "5", "--listen", "{port}"],
    ["infer", "null", "--listen", "{port}"],
    ["send", "-t", "5", "--connect", "127.0.0.1"],
    ["infer", "null", "--connect", "127.0.0.1"],
    ["infer", "null", "--connect", "127.0.0.1:{free}", "--connect-timeout", "0.5"],
    ["send", "-t", "5", "--format", "binary", "--v2"],
    ["send", "-t", "5", "--format", "%d", "-s"],
    ["infer", "keras", "-m", "no/such/model.keras"],
], ids=["send-busy-port", "infer-busy-port", "send-no-port", "infer-no-port", "infer-nobody-listens",
        "binary-v2", "d-with-s", "missing-model"])
def test_expected_failures_are_one_error_line_and_exit_2(cmd, busy_port):
    args = [a.format(port=busy_port, free=free_port()) for a in cmd]
    proc = popen([*IOTBENCH, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, stderr = proc.communicate(timeout=60)
    text = stderr.decode()
    assert proc.returncode == 2, text
    assert "Traceback" not in text
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, text
    if "busy" in " ".join(args) or str(busy_port) in args:
        assert "already in use" in errors[0]


# --------------------------------------------------------------------------- nothing left behind


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


#: Processes alive before this module's first case: another module's session-scoped ones (a Spark JVM), not ours.
_BEFORE: set[int] = set()


@pytest.fixture(scope="module", autouse=True)
def _nothing_left_behind():
    """After this module's cases (on each xdist worker that ran some), no process they started is alive."""
    _BEFORE.update(_descendants(os.getpid()))
    yield
    _assert_nothing_left()


def _session_jvm() -> set[int]:
    """The running Spark context's gateway JVM and its children: session-scoped, stopped when the session ends
    (a test module that ran before this one on the same worker started it); empty when pyspark is not loaded."""
    pyspark = sys.modules.get("pyspark")
    proc = getattr(getattr(getattr(pyspark, "SparkContext", None), "_gateway", None), "proc", None)
    return {proc.pid, *_descendants(proc.pid)} if proc is not None and proc.poll() is None else set()


def test_zz_no_process_started_by_the_fault_suite_is_left():
    _assert_nothing_left()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # it exited meanwhile
        return b""


def _assert_nothing_left() -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and any(p.poll() is None for p in _STARTED):
        time.sleep(0.2)
    alive = [p.args for p in _STARTED if p.poll() is None]
    for p in _STARTED:
        if p.poll() is None:
            p.kill()
    assert not alive, f"left running: {alive}"
    ours = set(_descendants(os.getpid())) - _BEFORE - _session_jvm()
    leftovers = [pid for pid in sorted(ours)
                 if b"iotbench" in _cmdline(pid) or b"java" in _cmdline(pid)]
    assert not leftovers, f"processes left: {leftovers}"
