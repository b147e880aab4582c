"""Keras edge path, end to end: the original's model file over the real sender, our models' cards,
a sender killed mid-stream, bad model files, and the original's ``nc -lk | infer_cifar`` usage."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fixtures.data import MODELS as OUR_MODELS
from iotbench import receiver, wire
from iotbench.metrics import EXIT_TRUNCATED
from tests.test_stream import free_port

pytestmark = pytest.mark.keras

IOTBENCH = [sys.executable, "-m", "iotbench"]
BIN = Path(sys.executable).parent
needs_nc = pytest.mark.skipif(shutil.which("nc") is None, reason="netcat (netcat-openbsd) is not installed")


def decoded(images: np.ndarray, labels: np.ndarray, raw: bool) -> wire.Decoded:
    n = len(labels)
    return wire.Decoded(np.asarray(labels, np.int64), np.asarray(images, np.float32), np.full(n, -1), np.zeros(n, int),
                        raw=raw)


@pytest.fixture(scope="module")
def legacy_engine(legacy_resnet_h5):
    from iotbench.engines.keras_edge import KerasEdgeEngine

    engine = KerasEdgeEngine(legacy_resnet_h5, batch=64)
    engine.warmup()
    return engine


def wait_for_line(stream, text: bytes, timeout: float = 120) -> list[bytes]:
    """Read ``stream`` line by line until one contains ``text``; returns the lines read."""
    lines: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"{text!r} never came; got {lines!r}")


# --------------------------------------------------------------------------- accuracy


def test_original_resnet20_h5_streamed_over_the_real_sender_gets_its_published_9147(
        legacy_engine, sender_factory):
    """The original's file, the whole test set, ``-s`` %f text exactly as the original sent it: 91.47%."""
    send = sender_factory("-s", "-t", "10000", "--arrival", "max")
    port = send.wait_listening(timeout=180)
    result = receiver.receive(receiver.connect_input("127.0.0.1", port), legacy_engine,
                              receiver.ReceiveConfig(batch=64, progress_every=10**9))
    summary = result.summary()
    assert send.wait()["sent"] == 10_000
    assert result.ended_cleanly
    assert (summary["classified"], summary["rejected"]) == (10_000, 0)
    assert summary["correct"] == 9147


@pytest.mark.parametrize("name", ["cnn", "resnet20"])
def test_our_committed_models_reach_their_card_accuracy_on_the_full_test_set(cifar_test, name):
    """Re-measure each committed model's card (``models/NAME.json``) through the engine on raw 0-255 inputs.

    The card was measured by ``keras.Model.predict`` at batch 500; the engine runs batch 64
    through oneDNN, whose summation order may flip a borderline image or two: ±0.1 point.
    """
    from iotbench.engines.keras_edge import KerasEdgeEngine, model_card

    path = OUR_MODELS / f"{name}.keras"
    if not path.is_file():
        pytest.skip(f"{path} is not committed yet")
    card = model_card(path)
    engine = KerasEdgeEngine(path, batch=64)
    from iotbench.models import get

    assert engine.transform == card["input_transform"] == get(name).input_transform  # the recipe's, via the card
    predicted = engine.predict(decoded(cifar_test.images, cifar_test.labels, raw=True))
    correct = int(np.count_nonzero(predicted == cifar_test.labels))
    assert abs(correct - card["correct"]) <= 10, f"{correct} correct vs {card['correct']} in the card"


def test_raw_and_float_inputs_padding_and_per_image_mode_agree(legacy_engine, cifar_test):
    """Raw 0-255 values get the model's transform; %f values (already transformed by the sender) pass as sent;
    a partial batch padded to its bucket and the original's per-image ``model.predict`` give the same classes."""
    from iotbench.data import cifar10
    from iotbench.engines.keras_edge import KerasEdgeEngine

    images, labels = cifar_test.images[:70], cifar_test.labels[:70]
    sent = images.astype(np.float32) / 255 - cifar10.pixel_mean()  # what `send -s` puts on the wire
    from_raw = legacy_engine.predict(decoded(images, labels, raw=True))
    from_float = legacy_engine.predict(decoded(sent, labels, raw=False))
    assert (from_raw == from_float).all()
    assert (legacy_engine.predict(decoded(sent[:5], labels[:5], raw=False)) == from_float[:5]).all()
    per_image = KerasEdgeEngine(legacy_engine.path, batch=1)
    assert (per_image.predict(decoded(sent[:3], labels[:3], raw=False)) == from_float[:3]).all()
    assert np.mean(from_raw == labels) > 0.8


def test_a_savedmodel_export_classifies_like_its_keras_file(legacy_engine, cifar_test, tmp_path):
    from iotbench.engines.keras_edge import KerasEdgeEngine

    legacy_engine._keras_model.export(str(tmp_path / "resnet20_saved"), verbose=False)
    saved = KerasEdgeEngine(tmp_path / "resnet20_saved", batch=16, input_transform="unit_minus_mean")
    batch = decoded(cifar_test.images[:16], cifar_test.labels[:16], raw=True)
    assert (saved.predict(batch) == legacy_engine.predict(batch)).all()


def test_input_transform_comes_from_the_sidecar_then_the_option(tmp_path, legacy_resnet_h5):
    from iotbench.engines.keras_edge import buckets_for, resolve_transform

    model = tmp_path / "m.keras"
    model.write_bytes(b"")
    assert resolve_transform(model, None) == ("unit", "default")
    (tmp_path / "m.json").write_text(json.dumps({"input_transform": "unit_minus_mean"}))
    assert resolve_transform(model, None) == ("unit_minus_mean", "m.json")
    assert resolve_transform(model, "unit") == ("unit", "option")
    assert resolve_transform(legacy_resnet_h5, None)[0] == "unit_minus_mean"
    with pytest.raises(ValueError, match="unknown input transform"):
        resolve_transform(model, "scaled")
    assert buckets_for(1) == (1,) and buckets_for(64) == (8, 16, 32, 64) and buckets_for(100)[-2:] == (64, 100)


# --------------------------------------------------------------------------- the command line


def start_cli(*args: str, stdin=None) -> subprocess.Popen:
    return subprocess.Popen([*IOTBENCH, "infer", "keras", *args], stdin=stdin, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def test_killing_the_sender_mid_stream_ends_the_receiver_with_a_correct_partial_report(tmp_path, legacy_resnet_h5):
    port, out = free_port(), tmp_path / "summary.json"
    infer = start_cli("-m", str(legacy_resnet_h5), "--listen", str(port), "-r", "100000", "--json", str(out))
    wait_for_line(infer.stdout, b"Start send program")
    send = subprocess.Popen([*IOTBENCH, "send", "-s", "--v2", "-t", "3000", "-i", "300", "--connect",
                             f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_line(send.stderr, b"Sending")
    time.sleep(2)
    send.kill()
    stdout, stderr = infer.communicate(timeout=120)
    send.wait(10)
    assert infer.returncode == EXIT_TRUNCATED, stderr
    summary = json.loads(out.read_text())
    assert summary["ended_cleanly"] is False and summary["truncated"] is True and b"partial report" in stderr
    assert 0 < summary["classified"] < 3000
    assert summary["classified"] + summary["rejected"] == summary["received"]
    assert summary["rejected"] <= 1  # at most the line the kill cut in half
    assert summary["correct"] / summary["classified"] > 0.8
    assert f"Inferenced {summary['classified']} images".encode() in stdout


@pytest.mark.parametrize("content", [None, b"\x89HDF\r\n\x1a\n" + bytes(500), b"PK\x03\x04 not a zip", "mnist"],
                         ids=["missing", "corrupt-h5", "corrupt-keras", "not-cifar-shaped"])
def test_a_missing_or_corrupt_model_file_is_one_line_naming_it(tmp_path, content):
    path = tmp_path / ("model.h5" if isinstance(content, bytes) and content.startswith(b"\x89HDF") else "model.keras")
    if content == "mnist":  # a valid Keras file for other images
        import keras

        keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)]).save(path)
    elif content is not None:
        path.write_bytes(content)
    done = subprocess.run([*IOTBENCH, "infer", "keras", "-m", str(path)], capture_output=True, timeout=120,
                          stdin=subprocess.DEVNULL)
    lines = done.stderr.decode().strip().splitlines()
    assert done.returncode == 2
    assert len(lines) == 1 and str(path) in lines[0] and lines[0].startswith("error:"), lines
    assert b"Start send program" not in done.stdout


@needs_nc
@pytest.mark.nc
def test_the_originals_usage_through_real_netcat_prints_the_original_lines(legacy_resnet_h5):
    """``nc -lk PORT | infer_cifar -m MODEL -r N`` fed by ``send_images_cifar -s -t 200 -i 1000 | nc -q1 HOST PORT``."""
    port = free_port()
    listener = subprocess.Popen(["nc", "-lk", str(port)], stdout=subprocess.PIPE)
    infer = subprocess.Popen([str(BIN / "infer_cifar"), "-m", str(legacy_resnet_h5), "-r", "50"],
                             stdin=listener.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    listener.stdout.close()
    try:
        head = wait_for_line(infer.stdout, b"Start send program")
        send = subprocess.Popen(f"{BIN / 'send_images_cifar'} -s -t 200 -i 1000 | nc -q1 127.0.0.1 {port}",
                                shell=True, stderr=subprocess.PIPE)
        stdout, stderr = infer.communicate(timeout=180)
        send.communicate(timeout=60)
    finally:
        listener.kill()
        infer.kill()
    lines = [line.decode() for line in head + stdout.splitlines(keepends=True)]
    assert lines[0].strip() == f"Loaded trained model {legacy_resnet_h5.name}"
    assert lines[1].strip() == "Start send program"
    final = lines[2].strip()
    assert final.startswith("Inferenced 200 images in ") and "images/second, with " in final
    correct = int(final.split("with ")[1].split()[0])
    assert final.endswith(f"with {correct} or {correct / 2:.1f}% correctly classified") and correct > 160
    assert lines[3].startswith("Latency p50 ") and "received 200, rejected 0" in lines[3]
    progress = [line for line in stderr.decode().splitlines() if line.endswith("images classified")]
    assert [p.split(": ")[1] for p in progress] == [f"{n} images classified" for n in (50, 100, 150, 200)]
    assert infer.returncode == 0


def test_blocks_that_queued_behind_a_slow_engine_fill_whole_batches():
    """The receiver merges waiting blocks (a backlog) into engine calls of exactly ``batch`` images,
    splitting the block that would overflow; each rejection and the end total are counted once."""
    import queue

    from iotbench.receiver import _coalesced

    blocks: queue.Queue = queue.Queue()
    sizes = [3, 4, 5, 60, 2]
    for i, n in enumerate(sizes):
        block = decoded(np.zeros((n, 32, 32, 3)), np.full(n, i), raw=True)
        block.rejected = [("bad label", b"x")] * i
        block.sent_total = 74 if i == len(sizes) - 1 else None
        blocks.put((block, 0))
    blocks.put(None)
    merged = list(_coalesced(blocks, batch=64))
    assert [len(b) for b in merged] == [64, 10]
    assert [len(b.rejected) for b in merged] == [3, 7]
    assert [b.sent_total for b in merged] == [None, 74]
    assert np.concatenate([b.labels for b in merged]).tolist() == np.repeat(range(5), sizes).tolist()


def test_a_block_larger_than_the_batch_is_cut_into_batches():
    """The binary reader queues all whole frames of one read as one item; the engine still gets
    calls of at most ``batch`` images, in order, with the block's rejections and total counted once."""
    import queue

    from iotbench.receiver import _coalesced

    blocks: queue.Queue = queue.Queue()
    big = decoded(np.zeros((150, 32, 32, 3)), np.arange(150) % 10, raw=True)
    big.rejected, big.sent_total = [("bad label", b"x")] * 2, 152
    blocks.put((big, 0))
    blocks.put((decoded(np.zeros((10, 32, 32, 3)), np.zeros(10), raw=True), 0))
    blocks.put(None)
    merged = list(_coalesced(blocks, batch=64))
    assert [len(b) for b in merged] == [64, 64, 32]
    assert sum(len(b.rejected) for b in merged) == 2
    assert [b.sent_total for b in merged if b.sent_total is not None] == [152]
    assert np.concatenate([b.labels for b in merged])[:150].tolist() == (np.arange(150) % 10).tolist()
