"""The Scala programs: the sbt-free build and its cache, the JVM sender's bytes against the Python encoders,
the stream classifier's accounting on every line format (and on garbage), and the model conversion.

Each Spark run costs a JVM start (~15 s on a 2-core machine), so these use a few hundred images.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fixtures.scala import LineServer, run_scala_stream, start_scala_sender
from iotbench import metrics, scala_build, wire
from iotbench.data import cifar10_bin

pytestmark = pytest.mark.scala


# --------------------------------------------------------------------------- build


def test_build_is_cached_and_keyed_by_the_sources(scala_jar, tmp_path):
    again = scala_build.build()
    assert again.jar == scala_jar and not again.built  # no recompilation while nothing changed
    tools = scala_build.toolchain()
    srcs = scala_build.sources()
    digest = scala_build.source_hash(srcs, tools)
    assert scala_jar.name == f"{scala_build.JAR_PREFIX}{digest}.jar"
    same, changed = tmp_path / "same" / srcs[0].name, tmp_path / "changed" / srcs[0].name
    for path, extra in ((same, b""), (changed, b"\n// changed\n")):
        path.parent.mkdir()
        path.write_bytes(srcs[0].read_bytes() + extra)
    key = {p: scala_build.source_hash([p, *srcs[1:]], tools) for p in (same, changed)}
    assert key[same] != key[changed]  # one changed byte, another jar


def test_build_needs_no_sbt_only_the_bundled_compiler():
    tools = scala_build.toolchain()
    names = [p.name for p in tools.compiler]
    assert any(n.startswith("scala-compiler-2.12") for n in names)
    assert any("jar-with-dependencies" in p.name for p in tools.bigdl_jars)


# --------------------------------------------------------------------------- CIFAR-10 binary and the JVM sender


def test_binary_batch_is_the_pickled_test_set(cifar_test):
    folder = cifar10_bin.test_folder()
    images, labels = cifar10_bin.decode((folder / cifar10_bin.TEST_FILE).read_bytes())
    assert np.array_equal(images, cifar_test.images) and np.array_equal(labels, cifar_test.labels)


def _scala_sender_stdout(jar, fmt: str, count: int) -> bytes:
    cmd = scala_build.java_command(jar, scala_build.SENDER_CLASS, [
        "-f", str(cifar10_bin.test_folder()), "-t", str(count), "-i", "0", "--format", fmt, "--pause", "0"])
    proc = subprocess.run(cmd, capture_output=True, timeout=120, check=True)
    return proc.stdout


@pytest.mark.parametrize("fmt", ["comma", "v1"])
def test_jvm_sender_writes_what_the_python_encoders_write(scala_jar, cifar_test, fmt):
    n = 12
    got = _scala_sender_stdout(scala_jar, fmt, n)
    encode = wire.encode_scala if fmt == "comma" else (lambda lab, img: wire.encode_v1(lab, img, "%d"))
    want = b"".join(encode(int(cifar_test.labels[i]), cifar_test.images[i]) for i in range(n)) + b"\n"
    assert got == want


def test_jvm_sender_v2_decodes_with_the_python_decoder(scala_jar, cifar_test):
    lines = _scala_sender_stdout(scala_jar, "v2", 7).split(b"\n")
    decoded = wire.decode_lines([line for line in lines if line])
    assert decoded.rejected == [] and decoded.sent_total == 7
    assert decoded.seq.tolist() == list(range(7)) and (decoded.sent_ns > 0).all()
    assert np.array_equal(decoded.images.astype(np.uint8), cifar_test.images[:7])


def test_jvm_sender_bigdl08_is_the_original_byte_record(scala_jar, cifar_test):
    """label+1 as a float, BigDL 0.8's 8-byte size header, then BGR pixels as signed bytes."""
    line = _scala_sender_stdout(scala_jar, "bigdl08", 1).split(b"\n")[0].decode()
    fields = line.split(",")
    assert fields[0] == f"{float(cifar_test.labels[0] + 1)}"
    assert fields[1:9] == ["0", "0", "0", "32", "0", "0", "0", "32"]
    bgr = np.array(fields[9:], np.int64).astype(np.uint8).reshape(32, 32, 3)
    assert np.array_equal(bgr[..., ::-1], cifar_test.images[0])


def test_jvm_sender_bigdl08_feeds_the_python_receivers(scala_jar, cifar_test):
    """The original Scala sender's stream decodes with the decoder every Python receiver uses."""
    lines = [line for line in _scala_sender_stdout(scala_jar, "bigdl08", 9).split(b"\n") if line]
    assert lines == [wire.encode_bigdl08(int(cifar_test.labels[i]), cifar_test.images[i]).rstrip(b"\n")
                     for i in range(9)]
    decoded = wire.decode_lines(lines)
    assert decoded.rejected == [] and decoded.labels.tolist() == cifar_test.labels[:9].tolist()
    assert np.array_equal(decoded.images.astype(np.uint8), cifar_test.images[:9])


# --------------------------------------------------------------------------- the stream classifier


def _scripted_stream(images, labels) -> tuple[bytes, dict]:
    """Every accepted format, interleaved with malformed lines; ends with the empty line."""
    out, reasons = [], {}
    for i, (img, lab) in enumerate(zip(images, labels)):
        kind = i % 4
        if kind == 0:
            out.append(wire.encode_v1(int(lab), img, "%d"))
        elif kind == 1:
            out.append(wire.v2_header(i // 4, 1) + wire.encode_v1(int(lab), img, "%d"))  # seq 0, 1, 2, ...
        elif kind == 2:
            out.append(wire.encode_scala(int(lab), img))
        else:
            out.append(wire.encode_bigdl08(int(lab), img))
    garbage = {
        b"x123 4 5": wire.BAD_LABEL,
        b"3" + b" 1" * 100: wire.WRONG_LENGTH,
        b"3,1,2,abc" + b",1" * 3069: wire.NOT_NUMERIC,
        b"~notaheader": wire.BAD_HEADER,
        b"3" + b" 999" * 3072: wire.OUT_OF_RANGE,
    }
    for j, (line, reason) in enumerate(garbage.items()):
        out.insert(3 + j * 7, line + b"\n")
        reasons[reason] = reasons.get(reason, 0) + 1
    return b"".join(out) + b"\n", reasons


def test_stream_classifier_accounts_for_every_line(scala_jar, bigdl_resnet887, cifar_test, tmp_path):
    """Every format, garbage in between; the original's model (imported from BigDL 0.8) classifies."""
    n = 120
    data, reasons = _scripted_stream(cifar_test.images[:n], cifar_test.labels[:n])
    server = LineServer(data)
    try:
        run = run_scala_stream(scala_jar, server.port, bigdl_resnet887.path, tmp_path, batch=32)
    finally:
        server.close()
    s = run.summary
    assert s["classified"] == n and s["received"] == n + len(reasons)
    assert s["rejected_by_reason"] == reasons
    # the Scala port of close_books says what the Python one says about the same counts: the v2 lines are
    # 0..29 without a gap, so the five unreadable lines are garbage, and v1 images beside a sequenced stream
    # make the books not close (exit 4), as for the Python receiver
    v2 = n // 4
    books = metrics.close_books(sent=None, truncated=False, received=s["received"], classified=n,
                                rejected_sequenced=0, rejected_unsequenced=len(reasons), seen=v2, highest=v2 - 1,
                                duplicated=0, reordered=0)
    assert (s["rejected"], s["lost"], s["garbage_lines"], s["sent_at_least"], s["accounted"]) == (
        books.rejected, books.lost, books.garbage_lines, books.sent_at_least, books.closes())
    assert run.returncode == metrics.exit_status(s)[0] == s["exit_status"], run.errors()
    assert s["correct"] == round(bigdl_resnet887.expected_accuracy(n) * n)  # each image, its own prediction
    assert s["ended_cleanly"] and not s["truncated"]
    assert "images received in interval" in run.stdout and "Stopping stream" in run.stdout
    assert f"{n} images received in " in run.stdout and "predicted correctly" in run.stdout


@pytest.mark.parametrize("bigdl_engine", ["mklblas", "mkldnn"])
def test_stream_classifier_takes_the_jvm_sender(scala_jar, bigdl_resnet20, tmp_path, bigdl_engine):
    """Our ResNet20 twin under either BigDL engine: every image accounted for and each image's own prediction (the
    card's per-image bitmap), so MKL-DNN's graph, unfused for this model (docs/bigdl.md), predicts as Keras does."""
    n = 150
    sender = start_scala_sender(scala_jar, "-t", str(n), "-i", "0", "--format", "v2")
    try:
        run = run_scala_stream(scala_jar, sender.wait_listening(), bigdl_resnet20.path, tmp_path, batch=32,
                               bigdl_engine=bigdl_engine)
    finally:
        sender.stop()
    assert run.returncode == 0, run.errors()
    s = run.summary
    assert (s["classified"], s["sent"], s["lost"], s["rejected"]) == (n, n, 0, 0)
    assert metrics.exit_status(s) == (metrics.EXIT_OK, None) and s["accounted"] and s["sequenced"]
    assert s["correct"] == round(bigdl_resnet20.expected_accuracy(n) * n)
    assert s["p50_ms"] is not None
    assert s["bigdl_engine"] == bigdl_engine  # what the JVM ran (BigDLEngine.current)
    if bigdl_engine == "mkldnn":
        assert "running it unfused" in run.stderr, run.stderr[-2000:]
        # the refused fused trial made bigdl-core print its native frames (a bare spark-submit shows them); the
        # filter of `iotbench infer scala-stream` drops every one of them and keeps our line
        from iotbench.spark.logs import JvmOutputFilter

        lines = run.stderr.splitlines()
        assert any("[FRAME" in line for line in lines), run.stderr[-2000:]
        keep = JvmOutputFilter().keep  # one filter per stream, as run_filtered uses it
        kept = [line for line in lines if keep(line)]
        assert not any("[FRAME" in line or "stack frames" in line for line in kept), kept[-20:]
        assert any("running it unfused" in line for line in kept)


@pytest.mark.parametrize("jvm_output", ["filtered", "all"])
def test_mkldnn_that_cannot_run_the_model_is_refused_in_one_line_before_the_stream(scala_jar, bigdl_resnet887,
                                                                                    jvm_output):
    """BigDL's MKL-DNN engine cannot run the original's ResNet (imported from BigDL 0.8: layers without the shape
    inference MKL-DNN's wrapper of BLAS layers needs, docs/bigdl.md): the program says so in one line and exits 2
    before it connects to anything (port 1: nothing listens there).  Through ``iotbench infer scala-stream`` the
    JVM's start-up chatter is filtered out, and ``--jvm-output all`` shows it (so the filter is what hides it, not
    its absence)."""
    args = ["-m", str(bigdl_resnet887.path), "-p", "1", "--connect-timeout", "2", "--bigdl-engine", "mkldnn",
            "--jvm-output", jvm_output]
    proc = subprocess.run([sys.executable, "-m", "iotbench", "infer", "scala-stream", *args], capture_output=True,
                          text=True, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(errors) == 1 and "BigDL's mkldnn engine cannot run" in errors[0], errors
    assert "--bigdl-engine mklblas" in errors[0]
    assert "cannot connect" not in proc.stderr
    everything = proc.stdout + proc.stderr
    chatter = "Reflection.getCallerClass is not supported" in everything  # log4j's line, which the filter drops
    assert chatter == (jvm_output == "all"), everything[-2000:]


def test_unknown_bigdl_engine_is_refused_by_the_scala_program(scala_jar, bigdl_resnet20):
    args = ["-m", str(bigdl_resnet20.path), "-p", "1", "--bigdlEngine", "int8"]
    cmd = scala_build.submit_command(scala_jar, scala_build.STREAM_CLASS, args)
    proc = subprocess.run(cmd, env=scala_build.submit_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "error: unknown --bigdl-engine 'int8'" in proc.stderr, proc.stderr[-2000:]


def test_missing_model_is_one_line(tmp_path, capsys):
    from iotbench.cli import main

    missing = tmp_path / "nope.model"
    assert main(["infer", "scala-stream", "-m", str(missing), "-p", "1"]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and str(missing) in lines[0], lines


@pytest.mark.slow
def test_original_bigdl08_model_is_refused_with_the_reason(scala_jar, tmp_path):
    from fixtures.data import SHARED_MODELS

    old = SHARED_MODELS / "bigdl_resnet_model_887"
    if not old.is_file():
        pytest.skip(f"{old} not found")
    cmd = scala_build.submit_command(scala_jar, scala_build.STREAM_CLASS, ["-m", str(old), "-p", "1"])
    proc = subprocess.run(cmd, env=scala_build.submit_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "BigDL 0.x" in proc.stderr and str(old) in proc.stderr


# --------------------------------------------------------------------------- the model conversion


def test_keras_resnet20_converts_to_the_same_predictions(cifar_test):
    from fixtures.data import SHARED_MODELS
    from iotbench.convert import bigdl_resnet
    from iotbench.models import preprocess

    source = SHARED_MODELS / "cifar10_ResNet20v1_model_91470.h5"
    if not source.is_file():
        pytest.skip(f"{source} not found")
    pytest.importorskip("keras")
    from iotbench.data import cifar10

    kmodel = bigdl_resnet.load_keras(source)
    bigdl_resnet.start_bigdl()
    conv = bigdl_resnet.convert(kmodel, "unit_minus_mean", cifar10.pixel_mean())
    x = cifar_test.images[:64]
    want = kmodel.predict(preprocess(x, "unit_minus_mean"), verbose=0)
    got = bigdl_resnet.predict(conv.model, x, batch=32)
    assert np.abs(got - want).max() < 1e-4
    assert (got.argmax(1) == want.argmax(1)).all()


@pytest.mark.slow
def test_unreachable_sender_is_one_line(scala_jar, bigdl_resnet20):
    args = ["-m", str(bigdl_resnet20.path), "-p", "1", "--connectTimeout", "2"]
    cmd = scala_build.submit_command(scala_jar, scala_build.STREAM_CLASS, args)
    proc = subprocess.run(cmd, env=scala_build.submit_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "error: cannot connect to 127.0.0.1:1" in proc.stderr


def test_card_bitmap_gives_the_accuracy_of_any_prefix():
    from iotbench.convert.bigdl_resnet import correct_bitmap, expected_accuracy

    flags = np.random.default_rng(0).random(10_000) < 0.9
    card = {"correct_bitmap": correct_bitmap(flags), "test_images_checked": 10_000}
    assert expected_accuracy(card, 2_000) == flags[:2_000].mean()
    assert expected_accuracy(card, 10_000) == flags.mean()
    assert expected_accuracy(card, 12_000) == np.concatenate([flags, flags[:2_000]]).mean()  # the sender cycles


@pytest.mark.slow
@pytest.mark.nc
def test_original_workflow_through_real_nc(scala_jar, bigdl_resnet887, tmp_path):
    """As the original README ran it: the JVM sender's own line format piped into `nc -lk PORT`, which never
    closes; the classifier stops after the first empty interval, every image accounted for."""
    import shutil
    import socket

    if shutil.which("nc") is None:
        pytest.skip("nc not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    n = 100
    sender = scala_build.java_command(scala_jar, scala_build.SENDER_CLASS, [
        "-f", str(cifar10_bin.test_folder()), "-t", str(n), "-i", "0", "--format", "bigdl08", "--pause", "0"])
    java = subprocess.Popen(sender, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    nc = subprocess.Popen(["nc", "-lk", str(port)], stdin=java.stdout, stdout=subprocess.DEVNULL)
    java.stdout.close()
    try:
        run = run_scala_stream(scala_jar, port, bigdl_resnet887.path, tmp_path, batch=32)
    finally:
        nc.kill()
        java.kill()
        nc.wait()
        java.wait()
    # the original's format has no end marker: the stream cannot be told from a cut one (exit 3, as every receiver)
    assert run.returncode == metrics.EXIT_TRUNCATED, run.errors()
    s = run.summary
    assert s["classified"] == n and s["rejected"] == 0 and not s["ended_cleanly"] and s["truncated"]
    assert s["lost"] is None and not s["sequenced"]
    assert s["correct"] == round(bigdl_resnet887.expected_accuracy(n) * n)
    assert "No input" in run.stdout and "Stopping stream" in run.stdout
