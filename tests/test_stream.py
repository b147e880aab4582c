"""End to end over real sockets and real netcat: every image sent is accounted for."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fixtures.sender import start_sender
from iotbench import sender, wire
from iotbench.metrics import EXIT_TRUNCATED
from tests.test_wire import garbage_lines

IOTBENCH = [sys.executable, "-m", "iotbench"]
needs_nc = pytest.mark.skipif(shutil.which("nc") is None, reason="netcat (netcat-openbsd) is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_receiver(tmp_path: Path, *args: str, stdin=None) -> tuple[subprocess.Popen, Path]:
    out = tmp_path / "summary.json"
    proc = subprocess.Popen([*IOTBENCH, "infer", "null", "--json", str(out), "-r", "100000", *args],
                            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, out


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def sender_figures(stderr: bytes) -> tuple[int, float]:
    # "...: Image stream ended: sent N images in S seconds or R images/second"
    last = stderr.decode().strip().splitlines()[-1]
    words = last.split()
    return int(words[words.index("sent") + 1]), float(words[words.index("or") + 1])


@needs_nc
@pytest.mark.nc
@pytest.mark.serial
def test_sender_piped_into_real_nc_reaches_our_receiver_at_the_requested_rate(tmp_path):
    port = free_port()
    receiver, out = start_receiver(tmp_path, "--listen", str(port))
    time.sleep(1.5)  # the receiver binds after its imports; nc does not retry
    send = subprocess.Popen([*IOTBENCH, "send", "-t", "10000", "-i", "2000"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    nc = subprocess.Popen(["nc", "-q1", "127.0.0.1", str(port)], stdin=send.stdout)
    send.stdout.close()
    _, send_err = send.communicate(timeout=120)
    nc.wait(timeout=30)
    receiver.communicate(timeout=60)
    summary = json.loads(out.read_text())
    sent, rate = sender_figures(send_err)
    assert sent == 10_000 == summary["received"] == summary["classified"]
    assert summary["rejected"] == 0
    assert rate == pytest.approx(2000, rel=0.05)
    assert summary["images_per_sec"] == pytest.approx(2000, rel=0.05)


@needs_nc
@pytest.mark.nc
@pytest.mark.serial
def test_listening_sender_read_by_real_nc_into_our_receiver_on_stdin(tmp_path):
    send = start_sender("-t", "10000", "-i", "2000")  # --listen on a free port, announced on stderr
    port = send.wait_listening()
    nc = subprocess.Popen(["nc", "127.0.0.1", str(port)], stdout=subprocess.PIPE)
    receiver, out = start_receiver(tmp_path, stdin=nc.stdout)
    nc.stdout.close()
    receiver.communicate(timeout=120)
    figures = send.wait(timeout=60)
    nc.kill()
    summary = json.loads(out.read_text())
    assert figures["sent"] == 10_000 == summary["received"] == summary["classified"]
    assert figures["rate"] == pytest.approx(2000, rel=0.05)


@pytest.mark.parametrize("v2", [False, True], ids=["v1", "v2"])
def test_garbage_in_the_stream_is_counted_by_reason_and_the_receiver_keeps_going(tmp_path, cifar_test, v2):
    port = free_port()
    receiver, out = start_receiver(tmp_path, "--listen", str(port), "--batch", "32")
    wait_port(port)  # the receiver ignores this probe: it closes without sending a byte
    bad = garbage_lines(wire.encode_v1(int(cifar_test.labels[0]), cifar_test.images[0], "%d")[:-1])
    config = sender.SendConfig(total=500, arrival="max", fmt="%d", v2=v2, garbage=tuple(bad.values()))
    with socket.create_connection(("127.0.0.1", port)) as sock:
        result = sender.stream(config, sock.sendall)
        sock.shutdown(socket.SHUT_WR)
    receiver.communicate(timeout=60)
    assert receiver.returncode == 0
    summary = json.loads(out.read_text())
    lines_sent = result.sent + len(bad)
    assert summary["classified"] + summary["rejected"] + summary["garbage_lines"] == lines_sent
    assert summary["classified"] == 500
    assert summary["rejected_by_reason"] == {reason: 1 for reason in bad}
    assert summary["accounted"] is True
    if v2:  # the trailer says 500 were sent and all 500 numbers arrived: the unsequenced lines were no images
        assert (summary["sent"], summary["rejected"], summary["lost"], summary["garbage_lines"]) == (500, 0, 0, 6)
    else:  # v1: nothing tells garbage from a damaged image, and loss is not measurable
        assert (summary["rejected"], summary["lost"], summary["garbage_lines"]) == (6, None, 0)


def test_receiver_reports_a_partial_run_when_the_sender_dies(tmp_path):
    port = free_port()
    receiver, out = start_receiver(tmp_path, "--listen", str(port))
    wait_port(port)
    send = start_sender("-t", "100000", "-i", "2000", "--format", "%d", "--v2", "--connect", f"127.0.0.1:{port}",
                        listen=False)
    deadline = time.monotonic() + 120
    while not any(b"10000 images sent" in line for line in send.stderr) and time.monotonic() < deadline:
        time.sleep(0.1)
    send.proc.kill()
    try:
        out_text, err = receiver.communicate(timeout=60)
    finally:
        receiver.kill()
    summary = json.loads(out.read_text())
    assert receiver.returncode == EXIT_TRUNCATED
    assert summary["ended_cleanly"] is False and summary["truncated"] is True
    assert b"partial report" in err and b"truncated yes" in out_text
    assert 0 < summary["classified"] < 100_000
    # the sequence numbers say how many were sent at least; whatever arrived is classified or rejected
    assert summary["sent"] is None and summary["sent_at_least"] >= summary["classified"]
    assert summary["classified"] + summary["rejected"] + summary["lost"] == summary["sent_at_least"]


def test_inter_arrival_processes_have_the_requested_mean_rate():
    rng = np.random.default_rng(1)
    for arrival in ("lognormal", "constant", "poisson"):
        gaps = sender.inter_arrivals(sender.SendConfig(total=20_000, rate=500, arrival=arrival), rng)
        assert gaps.mean() == pytest.approx(1 / 500, rel=0.03), arrival
    assert sender.inter_arrivals(sender.SendConfig(total=10, arrival="max"), rng).sum() == 0


def test_binary_frames_at_max_rate_are_the_paced_sender_s_frames(cifar_test):
    """The max-rate binary path stamps whole bursts as one array: the same frames (labels, pixels,
    sequence numbers, cycling past the split's end, the end frame) as the per-image path writes."""
    from iotbench import wire

    def sent_bytes(arrival: str) -> bytes:
        chunks: list[bytes] = []
        config = sender.SendConfig(total=10_300, fmt="binary", arrival=arrival, rate=1e9)
        result = sender.stream(config, lambda data: chunks.append(bytes(data)))
        assert result.sent == 10_300
        return b"".join(chunks)

    fast, paced = sent_bytes("max"), sent_bytes("constant")
    assert fast.startswith(wire.MAGIC) and len(fast) == len(paced)
    a, b = wire.decode_frames(fast[len(wire.MAGIC):]), wire.decode_frames(paced[len(wire.MAGIC):])
    assert a.sent_total == b.sent_total == 10_300
    assert np.array_equal(a.seq, np.arange(10_300)) and np.array_equal(a.seq, b.seq)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.images, b.images)
    assert np.array_equal(a.labels[10_000:], cifar_test.labels[:300])
    assert (a.sent_ns > 0).all()
