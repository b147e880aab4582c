"""Starting and stopping Spark for the Spark paths: one SparkContext that hosts both BigDL and Spark-native engines.

Why this module exists: pyspark and BigDL each need a few environment fixes before the JVM starts
(see ``docs/bigdl.md``), and both the CLI commands and the pytest fixtures must
apply exactly the same ones:

- ``PYTHONHOME`` must point at the interpreter's own prefix: BigDL sets it to the virtualenv,
  which has no standard library, and Python workers then die with ``No module named 'encodings'``;
- ``PYSPARK_PYTHON`` is this interpreter, so workers see the same packages as the driver;
- ``SPARK_LOCAL_IP=127.0.0.1`` keeps every socket on loopback;
- BigDL's jars go on the driver class path (``spark.driver.extraClassPath``) and, for a cluster,
  to the executors (``spark.jars``); BigDL's Spark properties (``spark-bigdl.conf``) are applied;
- the JVM logs at the chosen level through our own log4j2 file, and below INFO the JVM's start-up chatter
  (:data:`JVM_CHATTER`: BigDL's pickler registration, log4j's getCallerClass warning, Spark's "Setting default
  log level" notice) and the stack traces under its one-line errors are filtered out of its output
  (:class:`JvmOutputFilter`), so the original's console lines stay readable;
- on AMD CPUs, ``MKL_DEBUG_CPU_TYPE=5`` (see :func:`mkl_cpu_env`): BigDL's bundled Intel MKL otherwise
  runs its generic SSE code there — BigDL predicted 1,100 img/s without it and 2,000 img/s with it
  (CNN, 10,000 images, local[2], 2-core AMD EPYC).

A standalone cluster (:class:`StandaloneCluster`) is started from the installed pyspark's own
launcher (``bin/spark-class …deploy.master.Master`` / ``…deploy.worker.Worker``, which is what
``sbin/start-master.sh`` and ``start-worker.sh`` run; the pip wheel ships no ``start-*.sh``),
loopback only, each JVM in its own process group under a watchdog that stops the groups when the
process that started them dies (a killed pytest leaves no JVM behind), and stopped by those process
groups.

Masters are checked before anything starts (:func:`validate_master`): ``local[N]`` and
``spark://HOST:PORT`` only, so a typo or spark-submit's ``yarn``/``k8s://`` is one line, not a Py4J
page; JVM failures become one line naming the Java class (:func:`java_error_line`).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

DEFAULT_MASTER = "local[2]"
LOG_LEVELS = ("ERROR", "WARN", "INFO", "DEBUG")
#: Levels at which the JVM's output goes through :class:`JvmOutputFilter` (INFO and DEBUG show everything).
QUIET_LEVELS = ("ERROR", "WARN")

#: Lines the driver JVM prints on every start that tell a benchmark user nothing.
JVM_CHATTER = (
    # log4j-api 2.17, bundled inside BigDL's jar-with-dependencies, probing a JDK 8 API on Java 17 (stdout)
    re.compile(r"^WARNING: sun\.reflect\.Reflection\.getCallerClass is not supported"),
    # BigDL's Python API registering its picklers (println in BigDLSerDe, stdout)
    re.compile(r"^cls\.getname: "),
    re.compile(r"^BigDLBasePickler registering: "),
    # Spark's pyspark-shell notice, printed when the REPL logger has no level of its own
    re.compile(r"^Setting default log level to "),
    re.compile(r"^To adjust logging level use sc\.setLogLevel"),
    # stopping a DStream context interrupts the socket receiver's restart sleep (uncaught, stderr)
    re.compile(r'^Exception in thread "receiver-supervisor-future-\d+" java\.lang\.InterruptedException'),
)
#: Continuation lines of a JVM stack trace (hidden below INFO; the line that names the error stays).
_TRACE = re.compile(r"^(\s+at |\s+\.\.\. \d+ more|Caused by: )")


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def cpu_vendor(cpuinfo: str | None = None) -> str:
    """The CPU vendor id from ``/proc/cpuinfo`` text (read when not given); "" when unknown."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return ""
    match = re.search(r"^vendor_id\s*:\s*(\S+)", cpuinfo, re.MULTILINE)
    return match.group(1) if match else ""


def mkl_cpu_env(vendor: str) -> dict[str, str]:
    """Environment that lets BigDL's Intel MKL use AVX2 on AMD CPUs ({} elsewhere).

    The MKL bundled with bigdl-core dispatches on the CPU *vendor*: on AMD it picks its generic
    code path unless ``MKL_DEBUG_CPU_TYPE=5`` asks for the AVX2 kernels (a documented switch of the
    MKL releases of that era, removed in later ones).  Set it yourself to override.
    """
    return {"MKL_DEBUG_CPU_TYPE": "5"} if vendor == "AuthenticAMD" else {}


def prepare_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """Apply the environment fixes (to ``os.environ`` unless ``env`` is given); returns the mapping."""
    env = os.environ if env is None else env
    for key, value in mkl_cpu_env(cpu_vendor()).items():
        env.setdefault(key, value)
    env["PYTHONHOME"] = sys.base_prefix
    env["PYSPARK_PYTHON"] = sys.executable
    env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env["SPARK_HOME"] = str(spark_home())
    # TensorFlow in Python workers: quiet, and no oneDNN notice on every worker start.
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return env


class JvmOutputFilter:
    """Which lines of the driver JVM's stdout/stderr a user sees below INFO.

    The JVM writes straight to the terminal (pyspark starts it with our file descriptors), so
    neither log4j nor ``setLogLevel`` reaches BigDL's ``println``s or the JDK's uncaught-exception
    traces.  Hidden: :data:`JVM_CHATTER`, and the ``at …`` lines (with the blank line that ends
    them) under an error line, which itself stays.  Anything else passes, so an unknown message is
    never lost.  One filter per stream: it remembers whether it is inside a stack trace.
    """

    def __init__(self) -> None:
        self.in_trace = False

    def keep(self, line: str) -> bool:
        if _TRACE.match(line):
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
    for stream, out in ((gateway.proc.stdout, sys.stdout), (gateway.proc.stderr, sys.stderr)):
        threading.Thread(target=_forward, args=(stream, out, JvmOutputFilter().keep), daemon=True,
                         name="jvm-output").start()
    SparkContext._ensure_initialized(gateway=gateway, conf=conf)


def bigdl_jars() -> list[str]:
    """BigDL's jar-with-dependencies and bigdl-core's native jar; [] when BigDL is not installed."""
    try:
        from bigdl.dllib.utils.engine import get_bigdl_jars
    except ImportError:
        return []
    return sorted(get_bigdl_jars())


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


@dataclass
class SparkSettings:
    """What a Spark context for the benchmark needs; defaults fit a 2-core machine."""

    master: str = DEFAULT_MASTER
    app_name: str = "iotbench"
    driver_memory: str = "2g"
    executor_memory: str = "2g"
    executor_cores: int = 1  # standalone: one core per executor, as many executors as cores.max allows
    cores_max: int = 2  # standalone: total cores to use (BigDL's engine refuses to start without it)
    log_level: str = "ERROR"
    bigdl: bool = True  # put BigDL on the class path and start its engine (if installed)
    conf: dict[str, str] = field(default_factory=dict)

    @property
    def is_cluster(self) -> bool:
        return self.master.startswith("spark://")


def spark_conf_items(settings: SparkSettings) -> dict[str, str]:
    """All Spark properties for ``settings``: pure, so that tests and the CLI can print them."""
    log4j = f"-Dlog4j2.configurationFile=file:{log4j_file(settings.log_level)}"
    items: dict[str, str] = {}
    jars = bigdl_jars() if settings.bigdl else []
    if jars:
        from bigdl.dllib.utils.engine import get_bigdl_conf

        items.update(_read_conf(Path(get_bigdl_conf())))
        items["spark.driver.extraClassPath"] = ":".join(jars)
        items["spark.jars"] = ",".join(jars)
    items.update({
        "spark.master": settings.master,
        "spark.app.name": settings.app_name,
        "spark.driver.memory": settings.driver_memory,
        "spark.executor.memory": settings.executor_memory,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        # -Xss: stopping a Structured Streaming query during a large socket batch overflowed the default stack.
        "spark.driver.extraJavaOptions": f"-Xss16m {log4j}",
        "spark.executor.extraJavaOptions": log4j,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.shuffle.partitions": "4",
        "spark.python.worker.reuse": "true",
        # local mode: a failed task is a bug, fail at once; a cluster retries a task whose executor was lost
        "spark.task.maxFailures": "4" if settings.is_cluster else "1",
    })
    if settings.is_cluster:
        # Executors get their environment from the worker that launches them, not from the driver.
        for key, value in mkl_cpu_env(cpu_vendor()).items():
            items[f"spark.executorEnv.{key}"] = os.environ.get(key, value)
        items["spark.executor.cores"] = str(settings.executor_cores)
        items["spark.cores.max"] = str(settings.cores_max)
    items.update(settings.conf)
    return items


def _read_conf(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out[key] = value.strip()
    return out


_LOCAL = re.compile(r"local(\[(\d+|\*)(,\d+)?\])?")
_STANDALONE = re.compile(r"spark://[^\s:,/]+:\d{1,5}(,[^\s:,/]+:\d{1,5})*")
#: spark-submit's cluster managers, which need its launcher (and Hadoop/Kubernetes configuration) around them
_UNSUPPORTED = ("yarn", "k8s://", "mesos://", "local-cluster[")
MASTER_HINT = "use --master spark://HOST:PORT (a standalone cluster) or local[N] (N cores, * for all)"


def validate_master(master: str) -> None:
    """Refuse, in one line, a master these programs cannot start: malformed, or a spark-submit-only manager.

    Without this check ``local[x]`` is a page of Py4J trace and ``yarn`` a "Java gateway process exited".
    """
    if _LOCAL.fullmatch(master) or _STANDALONE.fullmatch(master):
        return
    if master.startswith(_UNSUPPORTED):
        raise ValueError(f"--master {master}: spark-submit's cluster managers (yarn, k8s://, mesos://) are not "
                         f"supported here yet; {MASTER_HINT}")
    raise ValueError(f"--master {master!r} is not a Spark master URL; {MASTER_HINT}")


def _python_error(text: str) -> str | None:
    """The exception line of a Python traceback inside a JVM message (a failed Python worker), or None."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if "Traceback (most recent call last)" in line]
    if not starts:
        return None
    found = None
    for line in lines[starts[-1] + 1:]:
        if line.startswith(("\tat ", "\t... ")) or line.startswith(" ") and found:
            break
        if line.strip() and not line.startswith(" "):
            found = line.strip()
    return found


def java_error_line(err: BaseException, root: bool = False) -> str | None:
    """``java.Class: first line of the message`` of a JVM error reaching Python, or None for other errors.

    Covers Py4J's ``Py4JJavaError`` (and its other errors) and pyspark's captured exceptions
    (``StreamingQueryException``, ``AnalysisException``…).  A failed Python worker's traceback is
    reduced to its exception line: a user sees what went wrong, never a page.  ``root``: the innermost
    cause of a captured exception (a failed streaming query's own error, e.g. ``java.net.ConnectException``).
    """
    try:
        from py4j.protocol import Py4JError, Py4JJavaError
        from pyspark.errors.exceptions.captured import CapturedException
    except ImportError:
        return None
    if isinstance(err, CapturedException):
        while root and isinstance(err.cause, CapturedException):
            err = err.cause
        text = err.stackTrace or f"{type(err).__name__}: {err.desc}"
        if not text.strip().startswith(("org.", "java.", "scala.", "com.")):
            text = f"{type(err).__name__}: {err.desc}\n{text}"
    elif isinstance(err, Py4JJavaError):
        try:
            text = str(err.java_exception.toString())
            full = str(err)
        except Exception:  # the gateway is gone: the message Py4J kept
            full = str(err)
            text = full.partition("\n: ")[2] or full
        text = text + "\n" + full
    elif isinstance(err, Py4JError):
        text = str(err)
    else:
        return None
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    if "Traceback (most recent call last)" in first:
        python = _python_error(text)
        first = first.split("Traceback (most recent call last)")[0].rstrip() + (f" {python}" if python else "")
    return first


def check_master(master: str, timeout_s: float = 5.0) -> None:
    """Refuse a malformed master (:func:`validate_master`), and fail fast, with one line naming the URL, when a
    ``spark://`` master does not answer.

    Without this, SparkContext retries for minutes before giving up.
    """
    validate_master(master)
    if not master.startswith("spark://"):
        return
    for hostport in master[len("spark://"):].split(","):
        parsed = urlparse(f"spark://{hostport}")
        try:
            with socket.create_connection((parsed.hostname, parsed.port or 7077), timeout=timeout_s):
                return
        except (OSError, ValueError) as err:
            last = err
    raise ConnectionError(f"cannot reach Spark master {master}: {last}")


def start(settings: SparkSettings | None = None):
    """Start (or return the running) SparkContext for ``settings``; BigDL's engine too when available."""
    settings = settings or SparkSettings()
    check_master(settings.master)
    prepare_environment()
    from pyspark import SparkConf, SparkContext

    active = SparkContext._active_spark_context
    if active is not None:
        if active.master != settings.master:
            raise RuntimeError(f"a SparkContext for {active.master} is running; stop it before using {settings.master}")
        return active
    conf = SparkConf().setAll(list(spark_conf_items(settings).items()))
    if settings.log_level in QUIET_LEVELS:
        launch_quiet_gateway(conf)
    if settings.bigdl and bigdl_jars():
        from bigdl.dllib.nncontext import init_nncontext

        sc = init_nncontext(conf, spark_log_level=settings.log_level, redirect_spark_log=False)
    else:
        sc = SparkContext(conf=conf)
        sc.setLogLevel(settings.log_level)
    return sc


def sql_session(sc):
    """The SparkSession over ``sc`` (DataFrames, Structured Streaming)."""
    from pyspark.sql import SparkSession

    return SparkSession(sc) if SparkSession.getActiveSession() is None else SparkSession.getActiveSession()


def stop() -> None:
    """Stop the running SparkContext, if any (and the SparkSession over it)."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    session = SparkSession.getActiveSession()
    if session is not None:
        session.stop()  # stops the SparkContext under it too
    sc = SparkContext._active_spark_context
    if sc is not None:
        sc.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: The watchdog of a standalone cluster: reads the process groups to guard, one per line, from its stdin (a
#: pipe only the starting process holds); "done" means they were stopped already.  At end of file without it --
#: the starting process died, however -- it stops the groups: SIGTERM (a worker's shutdown stops its
#: executors), then SIGKILL for what is left after 10 s.
_WATCHDOG = """
import os, signal, sys, time
groups = []
for line in sys.stdin:
    if line.strip() == "done":
        sys.exit(0)
    groups.append(int(line))
def alive(g):
    try:
        os.killpg(g, 0)
        return True
    except OSError:
        return False
for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 0.0)):
    for g in groups:
        try:
            os.killpg(g, sig)
        except OSError:
            pass
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(alive(g) for g in groups):
        time.sleep(0.2)
"""


def process_groups_alive(groups: set[int] | list[int]) -> list[int]:
    """Ids of the running processes (zombies excepted) in any of the process ``groups`` (Linux ``/proc``)."""
    wanted, found = set(groups), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if fields and fields[0] != "Z" and int(fields[2]) in wanted:
            found.append(int(stat.parent.name))
    return found


class StandaloneCluster:
    """A Spark standalone master plus ``workers`` workers on loopback, each offering ``cores`` cores.

    Started from the installed pyspark (``bin/spark-class``); logs go to ``log_dir``.  Each daemon runs in
    its own process group (its executors join the worker's), guarded by a watchdog process: if the process
    that started the cluster dies without :meth:`stop` (a killed pytest), the watchdog stops the groups, so
    no JVM outlives it.  :meth:`stop` stops the groups itself and :meth:`survivors` lists what is left.
    """

    MASTER = "org.apache.spark.deploy.master.Master"
    WORKER = "org.apache.spark.deploy.worker.Worker"

    def __init__(self, workers: int = 2, cores: int = 1, memory: str = "3g", log_dir: Path | None = None):
        self.workers, self.cores, self.memory = workers, cores, memory
        self.log_dir = Path(log_dir or tempfile.mkdtemp(prefix="iotbench-spark-cluster-"))
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"spark://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        self.groups: list[int] = []  # process group of each daemon (its pid: started in a new session)
        self.watchdog: subprocess.Popen | None = None

    def _guard(self, pgid: int) -> None:
        """Hand ``pgid`` to the watchdog (started with the first daemon)."""
        if self.watchdog is None:
            self.watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG], stdin=subprocess.PIPE,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                             start_new_session=True, text=True)
        self.watchdog.stdin.write(f"{pgid}\n")
        self.watchdog.stdin.flush()

    def _launch(self, name: str, *args: str) -> Path:
        env = prepare_environment(dict(os.environ))
        env["SPARK_LOG_DIR"] = str(self.log_dir)
        env["SPARK_DAEMON_JAVA_OPTS"] = f"-Dlog4j2.configurationFile=file:{log4j_file('INFO')}"
        log = self.log_dir / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [str(spark_home() / "bin" / "spark-class"), *args],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True,
            )
        self.procs.append(proc)
        self.groups.append(proc.pid)
        self._guard(proc.pid)
        return log

    def start(self, timeout_s: float = 90.0) -> StandaloneCluster:
        prepare_environment()
        master_log = self._launch("master", self.MASTER, "--host", "127.0.0.1", "--port", str(self.port),
                                  "--webui-port", str(free_port()))
        self._wait_for(master_log, re.compile(r"I have been elected leader|Starting Spark master"), timeout_s)
        logs = [self._launch(f"worker-{i}", self.WORKER, "--host", "127.0.0.1", "--cores", str(self.cores),
                             "--memory", self.memory, "--webui-port", str(free_port()),
                             "--work-dir", str(self.log_dir / f"work-{i}"), self.url)
                for i in range(self.workers)]
        for log in logs:
            self._wait_for(log, re.compile(r"Successfully registered with master"), timeout_s)
        return self

    def _wait_for(self, log: Path, pattern: re.Pattern, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if log.is_file() and pattern.search(log.read_text(errors="replace")):
                return
            if any(p.poll() is not None for p in self.procs):
                break
            time.sleep(0.2)
        tail = log.read_text(errors="replace")[-2000:] if log.is_file() else ""
        self.stop()
        raise RuntimeError(f"standalone cluster did not start ({log.name}):\n{tail}")

    def survivors(self) -> list[int]:
        """Processes still running in the cluster's process groups (daemons, executors, their children)."""
        return process_groups_alive(self.groups)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the workers' groups (with their executors), then the master's: SIGTERM, SIGKILL when late."""
        for pgid in reversed(self.groups):
            try:
                os.killpg(pgid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout_s)
        deadline = time.monotonic() + timeout_s
        while self.survivors() and time.monotonic() < deadline:
            time.sleep(0.2)
        if self.survivors():
            for pgid in self.groups:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
        for proc in self.procs:
            proc.wait(5)
        if self.watchdog is not None:
            try:
                self.watchdog.stdin.write("done\n")
                self.watchdog.stdin.close()
            except OSError:  # already gone
                pass
            self.watchdog.wait(5)
            self.watchdog = None
        self.procs.clear()

    def __enter__(self) -> StandaloneCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def run_with_timeout(func, timeout_s: float, what: str):
    """Run ``func()`` in a thread; raise TimeoutError naming ``what`` if it does not return in time."""
    result: dict = {}

    def target():
        try:
            result["value"] = func()
        except BaseException as err:  # re-raised in the caller
            result["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise TimeoutError(f"{what} did not finish within {timeout_s:g} s")
    if "error" in result:
        raise result["error"]
    return result.get("value")
