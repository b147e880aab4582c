"""The Spark and Scala commands' user errors through the real CLI: each is one ``error: …`` line, exit 2, no traceback.

The matrix of issue 11: malformed masters, spark-submit-only cluster managers, missing model files, a bad
memory size, and a failed Structured Streaming query (the JVM's error named by its Java class).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.spark


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "iotbench", *args], capture_output=True, text=True, timeout=timeout)


def assert_one_error_line(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(errors) == 1 and len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


MASTERS = {
    "local[x]": ("local[x]", "local[N]"),
    "local[2": ("local[2", "spark://HOST:PORT"),
    "spark://127.0.0.1": ("spark://127.0.0.1", "spark://HOST:PORT"),
    "yarn": ("yarn", "not supported here yet", "spark://HOST:PORT", "local[N]"),
    "k8s://https://127.0.0.1:6443": ("k8s://", "not supported here yet", "spark://HOST:PORT"),
}


@pytest.mark.parametrize("path", ["spark-max", "spark-stream", "scala-stream"])
@pytest.mark.parametrize("master", list(MASTERS))
def test_unusable_master_is_one_line_saying_what_to_use(path, master, tmp_path):
    extra = []
    if path == "scala-stream":  # refused before the model is looked for: give one that exists
        model = tmp_path / "m.model"
        model.write_bytes(b"")
        extra = ["-m", str(model)]
    assert_one_error_line(_cli("infer", path, "--master", master, *extra), *MASTERS[master])


@pytest.mark.parametrize("args,missing", [
    (["spark-max", "-md", "{m}", "-mw", "{m}"], "{m}"),
    (["spark-stream", "-md", "{m}", "-mw", "{m}"], "{m}"),
    (["spark-stream", "--engine", "native", "-m", "{m}"], "{m}"),
    (["scala-stream", "-m", "{m}"], "{m}"),
])
def test_missing_model_file_is_one_line_naming_it(args, missing, tmp_path):
    m = str(tmp_path / "nothing.model")
    proc = _cli("infer", *[a.format(m=m) for a in args])
    assert_one_error_line(proc, missing.format(m=m))


@pytest.mark.parametrize("path", ["spark-max", "spark-stream"])
def test_bad_memory_size_is_one_line_not_a_gateway_exit(path):
    assert_one_error_line(_cli("infer", path, "--executor-memory", "abc"), "--executor-memory", "512m")


def test_failed_streaming_query_is_one_line_with_the_java_class(keras_cnn_model):
    """Structured Streaming's socket source and no sender: the query fails in the JVM (ConnectException)."""
    if shutil.which("java") is None:
        pytest.skip("Java is not installed")
    pytest.importorskip("pyspark")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    proc = _cli("infer", "spark-stream", "--engine", "native", "-m", str(keras_cnn_model), "--api", "structured",
                "-p", str(port), "-r", "1", timeout=300)
    assert_one_error_line(proc, "streaming query failed", "java.net.ConnectException")


def test_java_error_line_names_the_class_and_reduces_python_tracebacks():
    from iotbench.spark import _python_error

    text = ("org.apache.spark.SparkException: Job aborted: org.apache.spark.api.python.PythonException: "
            "Traceback (most recent call last):\n  File \"x.py\", line 1, in f\n    boom()\n"
            "ValueError: boom\n\n\tat org.apache.spark.api.python.X.y(X.scala:1)\n")
    assert _python_error(text) == "ValueError: boom"
    assert _python_error("java.lang.IllegalStateException: no") is None
