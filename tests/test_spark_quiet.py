"""The Spark paths at the default --log-level ERROR show the benchmark's lines, not the JVM's start-up chatter.

The driver JVM prints to the terminal itself (BigDL's pickler registration, a log4j warning on Java 17,
Spark's "Setting default log level" notice, stack traces under one-line errors); below INFO iotbench
filters them (``spark_context.JvmOutputFilter``), at INFO they are all there.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from iotbench.spark import JvmOutputFilter, log4j_file

# Verbatim from a spark-max run (stdout) and a DStream run stopping after its sender finished (stderr).
CHATTER = [
    "WARNING: sun.reflect.Reflection.getCallerClass is not supported. This will impact performance.\n",
    "cls.getname: com.intel.analytics.bigdl.dllib.utils.python.api.Sample\n",
    "BigDLBasePickler registering: bigdl.dllib.utils.common  Sample\n",
    'Setting default log level to "WARN".\n',
    "To adjust logging level use sc.setLogLevel(newLevel). For SparkR, use setLogLevel(newLevel).\n",
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796220147.471263    8982 port.cc:153] oneDNN custom operations are on. You may see slightly "
    "different numerical results due to floating-point round-off errors from different computation orders. To turn "
    "them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n",
]
ERROR_WITH_TRACE = [
    "26/12/02 03:22:57 ERROR ReceiverTracker: Deregistered receiver for stream 0: Restarting receiver with delay "
    "2000ms: Error connecting to 127.0.0.1:17001 - java.net.ConnectException: Connection refused\n",
    "\tat java.base/sun.nio.ch.Net.connect0(Native Method)\n",
    "\tat org.apache.spark.streaming.dstream.SocketReceiver.onStart(SocketInputDStream.scala:61)\n",
    "\n",
    'Exception in thread "receiver-supervisor-future-3" java.lang.InterruptedException: sleep interrupted\n',
    "\tat java.base/java.lang.Thread.sleep(Native Method)\n",
    "Caused by: java.lang.RuntimeException: inner\n",
    "\t... 12 more\n",
]


def test_filter_drops_the_chatter_and_traces_and_keeps_everything_else():
    f = JvmOutputFilter()
    assert not any(f.keep(line) for line in CHATTER)
    kept = [line for line in ERROR_WITH_TRACE if f.keep(line)]
    assert kept == [ERROR_WITH_TRACE[0]]  # the error line stays, its trace and the shutdown's interrupt go
    ours = ["Loading trained model from models/bigdl_cnn.bigdl\n", "\n", "Summary: engine bigdl …\n",
            "Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space\n"]
    assert [line for line in ours if JvmOutputFilter().keep(line)] == ours  # unknown lines and blank lines pass


#: What bigdl-core's C code printed (fd 2) when MKL-DNN refused our ResNet20 twin's fused graph (before the Scala
#: program learnt to run it unfused; a refused fused trial still prints these frames), then the program's line.
NATIVE_TRACE_THEN_OUR_ERROR = [
    "Obtained 3 stack frames.\n",
    "[FRAME 0] /tmp/mkldnn.native.17351269511707752972/libjdnn.so(throw_exception_if_failed+0xb7) [0x7fad082084b3]\n",
    "[FRAME 1] /tmp/mkldnn.native.17351269511707752972/libjdnn.so(Java_com_intel_analytics_bigdl_mkl_MklDnn_"
    "DilatedConvForwardDescInit+0x11e) [0x7fad082076be]\n",
    "[FRAME 2] [0x7fad189455da]\n",
    "\n",
    "[../src/main/c/conv.c:85] error: Java_com_intel_analytics_bigdl_mkl_MklDnn_DilatedConvForwardDescInit "
    "returns 3\n",
    "error: BigDL's mkldnn engine cannot run models/bigdl_resnet20.model: IllegalArgumentException: [mkldnn] "
    "ivalid arguments (use --bigdl-engine mklblas)\n",
]


def test_filter_drops_bigdl_cores_native_frames_and_keeps_the_one_line_error():
    f = JvmOutputFilter()
    assert [line for line in NATIVE_TRACE_THEN_OUR_ERROR if f.keep(line)] == NATIVE_TRACE_THEN_OUR_ERROR[-1:]


def test_run_filtered_passes_a_childs_lines_through_the_filter_and_returns_its_status(capfd):
    import os
    import sys

    from iotbench.spark.logs import run_filtered

    script = ("import sys; sys.stderr.write(" + repr("".join(NATIVE_TRACE_THEN_OUR_ERROR)) + "); "
              "print('Classifying images'); sys.exit(2)")
    assert run_filtered([sys.executable, "-c", script], dict(os.environ)) == 2
    out, err = capfd.readouterr()
    assert out == "Classifying images\n" and err == NATIVE_TRACE_THEN_OUR_ERROR[-1]


def test_log4j_gives_the_shell_logger_our_level():
    # without it Spark prints 'Setting default log level to "WARN"' on stderr, whatever level we chose
    for level in ("ERROR", "INFO"):
        assert f"logger.repl.level = {level.lower()}" in log4j_file(level).read_text()


@pytest.mark.spark
@pytest.mark.slow
def test_spark_max_prints_only_its_own_lines_at_error_and_the_jvm_chatter_at_info():
    def run(level: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "iotbench", "infer", "spark-max", "--images", "200", "-d", "1",
                               "--log-level", level], capture_output=True, text=True, timeout=600)

    quiet = run("ERROR")
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    lines = [line for line in quiet.stdout.splitlines() if line.strip()]
    ours = ("Loading trained model", "Summary: engine")
    assert lines and all(line.startswith(ours) or ": Running inference loop" in line or ": Iteration " in line
                         or ": Test completion" in line for line in lines), quiet.stdout
    assert quiet.stderr.strip() == "", quiet.stderr
    loud = run("INFO")
    assert loud.returncode == 0
    assert "BigDLBasePickler registering" in loud.stdout and " INFO " in loud.stderr
