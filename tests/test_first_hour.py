"""A new user's first hour (issue 18): scale mismatches caught, listening beyond loopback, counts that are true,
progress and help that fit a person.  Everything runs through the real CLI."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time

import pytest

from fixtures.data import MODELS
from fixtures.sender import start_sender
from iotbench import receiver, wire
from iotbench.engines.null import NullEngine

IOTBENCH = [sys.executable, "-m", "iotbench"]


def run(cmd: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, shell=True, capture_output=True, timeout=timeout, executable="/bin/bash")


def py() -> str:
    return f"{sys.executable} -m iotbench"


@pytest.mark.keras
@pytest.mark.parametrize(("model", "send_flags", "warning"), [
    ("resnet20.keras", "", "send with -s (--subtractMean)"),  # ResNet fed [0,1] pixels
    ("cnn.keras", "-s", "send without -s (--subtractMean)"),  # the CNN fed mean-subtracted pixels
], ids=["resnet-without-s", "cnn-with-s"])
def test_a_f_stream_on_the_wrong_scale_warns_once_and_names_the_sender_flag(model, send_flags, warning):
    proc = run(f"{py()} send -t 200 --arrival max {send_flags} | {py()} infer keras -m {MODELS / model}")
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert err.count("WARNING: the %f stream") == 1 and warning in err


@pytest.mark.keras
def test_strict_input_makes_a_scale_mismatch_an_error():
    proc = run(f"{py()} send -t 200 --arrival max | {py()} infer keras -m {MODELS / 'resnet20.keras'} --strict-input")
    err = proc.stderr.decode()
    assert proc.returncode == 2 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error:")][0].endswith(
        "accuracy will be far below the model card's")


def test_the_scale_check_stays_quiet_when_the_scale_is_right(cifar_test):
    lines = [wire.encode_v1(int(cifar_test.labels[i]), cifar_test.images[i] / 255, "%f") for i in range(20)]
    r, w = socket.socketpair()

    def feed():
        with w:
            w.sendall(b"".join(lines) + b"\n")

    threading.Thread(target=feed, daemon=True).start()
    config = receiver.ReceiveConfig(batch=8, expected_transform="unit", strict_input=True)
    result = receiver.receive(receiver.Input(r.fileno(), r.close), NullEngine(), config)
    assert result.metrics.classified == 20


def test_send_listening_on_every_interface_serves_a_client_through_loopback():
    snd = start_sender("-t", "50", "-i", "0", "--format", "%d", "--v2", "--listen", "0.0.0.0:0", listen=False)
    try:
        port = snd.wait_listening()
        result = receiver.receive(receiver.connect_input("127.0.0.1", port), NullEngine(),
                                  receiver.ReceiveConfig(batch=16))
        assert result.summary()["classified"] == 50 and result.summary()["lost"] == 0
        assert snd.wait(30)["returncode"] == 0
        assert any(b"reachable from other machines" in line for line in snd.stderr)
    finally:
        snd.stop()


def test_a_receiver_listens_on_host_and_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    recv = subprocess.Popen([*IOTBENCH, "infer", "null", "--listen", f"127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        snd = subprocess.run([*IOTBENCH, "send", "-t", "30", "-i", "0", "--format", "%d", "--v2", "--connect",
                              f"127.0.0.1:{port}", "--connect-timeout", "60"], capture_output=True, timeout=120)
        stdout, _ = recv.communicate(timeout=60)
    finally:
        recv.kill()
    assert snd.returncode == 0 and recv.returncode == 0
    assert "\nInferenced 30 images" in stdout.decode()


def test_a_broken_pipe_is_one_error_line_with_the_real_number_sent():
    proc = run(f"{py()} send -t 5000 -i 0 --format %d | head -c 100000 > /dev/null")
    err = proc.stderr.decode()
    m = re.search(r"error: the receiver closed the connection \(broken pipe\) after (\d+) of 5000 images", err)
    assert m, err
    sent = int(re.search(r"sent (-?\d+) images", err).group(1))
    # what head read plus the pipe's buffer, at ~6-11 KB a %d line
    assert sent == int(m.group(1)) and 1 <= sent <= (100_000 + 65_536) // 6_000 + 1
    assert "Traceback" not in err


def test_a_sender_that_falls_behind_its_schedule_says_by_how_much():
    """A receiver that reads slowly (a pipe drained at ~1 MB/s) holds a 2,000/s sender back; it must say so."""
    proc = run(f"{py()} send -t 600 -i 2000 --format %d --arrival constant | "
               f"{sys.executable} -c 'import sys,time\nwhile sys.stdin.buffer.read(65536): time.sleep(0.06)'")
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert re.search(r"WARNING: the stream ran \d+% behind its schedule: \d+ of 2000 images/second asked", err), err


def test_progress_in_a_pipe_is_a_handful_of_lines_not_one_per_hundred_images():
    proc = run(f"{py()} send -t 3000 -i 0 --format %d | {py()} infer null")
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert len([line for line in err.splitlines() if "images classified" in line]) <= 5


@pytest.mark.parametrize("argv", [
    ["--help"], ["send", "--help"], ["infer", "null", "--help"], ["infer", "keras", "--help"],
    ["report", "--help"], ["train", "--help"],
])
def test_help_shows_each_default_once_and_no_markup(argv):
    out = subprocess.run([*IOTBENCH, *argv], capture_output=True, timeout=60).stdout.decode()
    flat = " ".join(out.split())
    assert "(default: None)" not in flat and "PosixPath" not in flat and "``" not in flat
    assert not re.search(r"\(default: [^)]*\)\s*\(default:", flat)
    assert "../shared" not in flat


def test_send_refuses_contradictory_flags_with_a_reason():
    proc = subprocess.run([*IOTBENCH, "send", "--format", "binary", "--v2"], capture_output=True, timeout=60)
    assert proc.returncode == 2
    assert b"error: --v2 is for text formats" in proc.stderr


def test_connect_waits_visibly_then_fails_with_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    proc = subprocess.run([*IOTBENCH, "infer", "null", "--connect", f"127.0.0.1:{port}", "--connect-timeout", "1"],
                          capture_output=True, timeout=60)
    err = proc.stderr.decode()
    assert proc.returncode == 2 and time.monotonic() - t0 < 30
    assert f"waiting for 127.0.0.1:{port}" in err
    assert f"error: cannot connect to the sender at 127.0.0.1:{port} within 1 s" in err
