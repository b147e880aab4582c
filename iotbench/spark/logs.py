"""What the JVM prints and logs: log4j2 configuration files and the filter on the driver JVM's own output.

The JVM logs at the chosen level through our own log4j2 file, and below INFO the JVM's start-up chatter
(:data:`JVM_CHATTER`: BigDL's pickler registration, log4j's getCallerClass warning, Spark's "Setting default
log level" notice) and the stack traces under its one-line errors are filtered out of its output
(:class:`JvmOutputFilter`), so the original's console lines stay readable.  ``spark-submit`` of the Scala jar
gets its own file (:func:`submit_log4j_file`): Spark's console at WARN, the original's suggested set-up.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import threading
from pathlib import Path

LOG_LEVELS = ("ERROR", "WARN", "INFO", "DEBUG")
#: Levels at which the JVM's output goes through :class:`JvmOutputFilter` (INFO and DEBUG show everything).
QUIET_LEVELS = ("ERROR", "WARN")

#: Lines the driver JVM prints on every start that tell a benchmark user nothing.
JVM_CHATTER = (
    # log4j-api 2.17, bundled inside BigDL's jar-with-dependencies, probing a JDK 8 API on Java 17 (stdout)
    re.compile(r"^WARNING: sun\.reflect\.Reflection\.getCallerClass is not supported"),
    # Spark 4 starts the JVM with --add-modules jdk.incubator.vector; the JDK says so on every start (stderr)
    re.compile(r"^WARNING: Using incubator modules: jdk\.incubator\.vector"),
    # BigDL's Python API registering its picklers (println in BigDLSerDe, stdout)
    re.compile(r"^cls\.getname: "),
    re.compile(r"^BigDLBasePickler registering: "),
    # Spark's pyspark-shell notice, printed when the REPL logger has no level of its own
    re.compile(r"^Setting default log level to "),
    re.compile(r"^To adjust logging level use sc\.setLogLevel"),
    # TensorFlow imported in the Python workers, on a CPU where oneDNN's custom ops are on by default (AVX-512):
    # absl's pre-initialisation notice and TensorFlow's one INFO line (stderr; TF_CPP_MIN_LOG_LEVEL does not reach them)
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"),
    re.compile(r"^I\d{4} [\d:.]+ +\d+ port\.cc:\d+\] oneDNN custom operations are on\."),
    # stopping a DStream context interrupts the socket receiver's restart sleep (uncaught, stderr)
    re.compile(r'^Exception in thread "receiver-supervisor-future-\d+" java\.lang\.InterruptedException'),
)
#: Continuation lines of a JVM stack trace (hidden below INFO; the line that names the error stays).
_TRACE = re.compile(r"^(\s+at |\s+\.\.\. \d+ more|Caused by: )")
#: bigdl-core's native trace, printed by its C code (fd 2) before the JVM sees the failure as an exception that
#: our programs then report in one line: "Obtained N stack frames.", "[FRAME n] lib.so(...)", and its
#: "[../src/main/c/conv.c:85] error: Java_..._DilatedConvForwardDescInit returns 3".
_NATIVE_TRACE = re.compile(r"^(Obtained \d+ stack frames\.$|\[FRAME \d+\] |\[\.\./src/main/c/[\w./-]+:\d+\] error: )")


class JvmOutputFilter:
    """Which lines of the driver JVM's stdout/stderr a user sees below INFO.

    The JVM writes straight to the terminal (pyspark starts it with our file descriptors), so
    neither log4j nor ``setLogLevel`` reaches BigDL's ``println``s or the JDK's uncaught-exception
    traces.  Hidden: :data:`JVM_CHATTER`, the ``at …`` lines (with the blank line that ends
    them) under an error line, which itself stays, and bigdl-core's native frames (:data:`_NATIVE_TRACE`),
    which come before the one-line error our programs print for the same failure.  Anything else
    passes, so an unknown message is never lost.  One filter per stream: it remembers whether it is
    inside a stack trace.
    """

    def __init__(self) -> None:
        self.in_trace = False

    def keep(self, line: str) -> bool:
        if _TRACE.match(line) or _NATIVE_TRACE.match(line):
            self.in_trace = True
            return False
        if self.in_trace and not line.strip():
            self.in_trace = False
            return False
        self.in_trace = False
        return not any(p.match(line) for p in JVM_CHATTER)


def _forward(stream, out, keep) -> None:
    """Copy ``stream`` (bytes, line by line) to the text stream ``out``, dropping what ``keep`` refuses."""
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace")
        if keep(line):
            out.write(line)
            out.flush()


def _forward_filtered(proc) -> list[threading.Thread]:
    """Threads (started) that copy ``proc``'s piped stdout and stderr to ours through a filter each."""
    threads = [threading.Thread(target=_forward, args=(stream, out, JvmOutputFilter().keep), daemon=True,
                                name="jvm-output")
               for stream, out in ((proc.stdout, sys.stdout), (proc.stderr, sys.stderr))]
    for thread in threads:
        thread.start()
    return threads


def run_filtered(cmd: list[str], env: dict[str, str], grace_s: float = 30.0) -> int:
    """Run ``cmd`` with its stdout and stderr through :class:`JvmOutputFilter`, line by line as they come; its
    exit status.  On Ctrl-C the child (which got the SIGINT too) has ``grace_s`` to print its summary and exit."""
    from subprocess import PIPE, Popen, TimeoutExpired

    proc = Popen(cmd, env=env, stdout=PIPE, stderr=PIPE)
    threads = _forward_filtered(proc)
    try:
        rc = proc.wait()
    except KeyboardInterrupt:
        try:
            proc.wait(timeout=grace_s)
        except TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    finally:
        for thread in threads:
            thread.join(timeout=5)
    return rc


def launch_quiet_gateway(conf) -> None:
    """Start the py4j gateway (the driver JVM) with its stdout and stderr through :class:`JvmOutputFilter`.

    Must run before anything else starts the gateway; a SparkContext created afterwards (by pyspark
    or BigDL's ``init_nncontext``) reuses it.  The driver's Java options come from ``conf`` here, as
    they would from pyspark's own launch.  No-op when a gateway is already running.
    """
    from subprocess import PIPE

    from pyspark import SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None:
        return
    gateway = launch_gateway(conf, popen_kwargs={"stdout": PIPE, "stderr": PIPE})
    _forward_filtered(gateway.proc)
    SparkContext._ensure_initialized(gateway=gateway, conf=conf)


def log4j_file(level: str) -> Path:
    """A log4j2 configuration that logs ``level`` and above to stderr (written once per level)."""
    if level not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    path = Path(tempfile.gettempdir()) / f"iotbench-log4j2-{level.lower()}.properties"
    text = (
        f"rootLogger.level = {level.lower()}\n"
        "rootLogger.appenderRef.stderr.ref = console\n"
        "appender.console.type = Console\n"
        "appender.console.name = console\n"
        "appender.console.target = SYSTEM_ERR\n"
        "appender.console.layout.type = PatternLayout\n"
        "appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n\n"
        # Stopping a streaming context always logs receiver errors; the original advised hiding them.
        "logger.streaming.name = org.apache.spark.streaming\n"
        "logger.streaming.level = error\n"
        # A failed streaming query is re-raised as one line naming its Java error (engines/spark_stream.py);
        # below INFO its log line and trace would say it twice.
        "logger.microbatch.name = org.apache.spark.sql.execution.streaming.MicroBatchExecution\n"
        f"logger.microbatch.level = {'fatal' if level in QUIET_LEVELS else level.lower()}\n"
        # pyspark starts the driver as a shell; Spark then sets its console to this logger's level (WARN when
        # it has none) and prints "Setting default log level to WARN" -- give it ours.
        "logger.repl.name = org.apache.spark.repl.Main\n"
        f"logger.repl.level = {level.lower()}\n"
    )
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


def submit_log4j_file(directory: Path) -> Path:
    """A log4j2 file in ``directory`` that keeps Spark's console at WARN (the original's suggested set-up)."""
    path = directory / "log4j2.properties"
    text = ("rootLogger.level = warn\nrootLogger.appenderRef.stderr.ref = console\n"
            "appender.console.type = Console\nappender.console.name = console\nappender.console.target = SYSTEM_ERR\n"
            "appender.console.layout.type = PatternLayout\n"
            "appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n\n"
            "logger.bigdl.name = com.intel.analytics.bigdl\nlogger.bigdl.level = warn\n")
    if not path.is_file() or path.read_text() != text:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return path
