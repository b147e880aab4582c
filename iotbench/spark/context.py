"""Spark contexts and sessions for the Spark paths: one SparkContext that hosts both BigDL and Spark-native engines.

Both the CLI commands and the pytest fixtures start Spark through :func:`start`, so they apply exactly the same
rules: the environment of :mod:`iotbench.spark.env`, the jars of :mod:`iotbench.spark.jars` (BigDL's on the driver
class path, ``spark.driver.extraClassPath``, and, for a cluster, to the executors, ``spark.jars``; BigDL's Spark
properties, ``spark-bigdl.conf``), the log configuration of :mod:`iotbench.spark.logs`.  The driver listens on and
advertises loopback for local masters, otherwise the address that routes to the master (:mod:`iotbench.spark.address`).

Masters are checked before anything starts (:func:`validate_master`): ``local[N]`` and
``spark://HOST:PORT`` only, so a typo or spark-submit's ``yarn``/``k8s://`` is one line, not a Py4J
page; JVM failures become one line naming the Java class (:func:`java_error_line`).
"""

from __future__ import annotations

import os
import re
import socket
import sys
import threading
from dataclasses import dataclass, field
from urllib.parse import urlparse

from iotbench.spark.address import bind_address, driver_address
from iotbench.spark.env import cpu_vendor, mkl_cpu_env, prepare_environment, use_executor_python
from iotbench.spark.jars import bigdl_jars, bigdl_spark_conf
from iotbench.spark.logs import QUIET_LEVELS, launch_quiet_gateway, log4j_file

DEFAULT_MASTER = "local[2]"

#: BigDL's compute engines: mklblas (its default, BigDL's layers on MKL's BLAS) and mkldnn (MKL-DNN primitives
#: on a model converted for inference, ``EngineMax.scala``); see docs/bigdl.md.
BIGDL_ENGINES = ("mklblas", "mkldnn")


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
    conf: dict[str, str] = field(default_factory=dict)  # --conf KEY=VALUE, applied last (as spark-submit does)
    driver_host: str | None = None  # --driver-host: the address executors reach the driver at (default: routed)
    ship_env: bool = False  # --ship-env: pack this environment and ship it to the executors (iotbench.spark.ship)
    bigdl_engine: str = "mklblas"  # --bigdl-engine: BigDL's compute engine in every JVM (fixed when a JVM starts)

    @property
    def is_cluster(self) -> bool:
        return self.master.startswith("spark://")


def spark_conf_items(settings: SparkSettings) -> dict[str, str]:
    """All Spark properties for ``settings``: pure, so that tests and the CLI can print them."""
    log4j = f"-Dlog4j2.configurationFile=file:{log4j_file(settings.log_level)}"
    driver = driver_address(settings.master, settings.driver_host)
    if settings.bigdl_engine not in BIGDL_ENGINES:
        raise ValueError(f"unknown BigDL engine {settings.bigdl_engine!r}; choose from {', '.join(BIGDL_ENGINES)}")
    # BigDL reads its engine once per JVM, when its Engine object is first touched: a launch option, or nothing
    engine = "" if settings.bigdl_engine == "mklblas" else f" -Dbigdl.engineType={settings.bigdl_engine}"
    items: dict[str, str] = {}
    jars = bigdl_jars() if settings.bigdl else []
    if jars:
        items.update(bigdl_spark_conf())
        items["spark.driver.extraClassPath"] = ":".join(jars)
        items["spark.jars"] = ",".join(jars)
    items.update({
        "spark.master": settings.master,
        "spark.app.name": settings.app_name,
        "spark.driver.memory": settings.driver_memory,
        "spark.executor.memory": settings.executor_memory,
        # executors connect back here: loopback for local masters, else the address that routes to the master
        "spark.driver.host": driver,
        "spark.driver.bindAddress": bind_address(driver),
        # -Xss: stopping a Structured Streaming query during a large socket batch overflowed the default stack.
        "spark.driver.extraJavaOptions": f"-Xss16m {log4j}{engine}",
        "spark.executor.extraJavaOptions": f"{log4j}{engine}",
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


def add_jvm_classes(items: dict[str, str]) -> None:
    """Our Scala classes beside BigDL's jars (driver class path and ``spark.jars``), built on first use.

    The BigDL stream parses and classifies its lines in the JVM (``iotbench.JvmLines``); without a
    Scala compiler (pyspark's own) the other paths still run, and that one says why it cannot.
    """
    from iotbench import scala_build
    from iotbench.report import log

    try:
        jar = str(scala_build.build(log=log).jar)
    except (scala_build.ScalaToolchainError, RuntimeError, OSError) as err:
        log(f"WARNING: iotbench's JVM classes are not available ({str(err).splitlines()[0]}); "
            "the BigDL stream cannot run")
        return
    items["spark.driver.extraClassPath"] = f"{items['spark.driver.extraClassPath']}:{jar}"
    items["spark.jars"] = f"{items['spark.jars']},{jar}"


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
    items = spark_conf_items(settings)
    if settings.bigdl and bigdl_jars():
        add_jvm_classes(items)
    shipped = None
    if settings.ship_env and settings.is_cluster:
        from iotbench.spark.ship import environment_pack

        shipped = environment_pack()
        items.update({**shipped.conf(), **settings.conf})  # --conf still comes last
        use_executor_python(items["spark.pyspark.python"])
    conf = SparkConf().setAll(list(items.items()))
    if settings.log_level in QUIET_LEVELS:
        launch_quiet_gateway(conf)
    if settings.bigdl and bigdl_jars():
        from bigdl.dllib.nncontext import init_nncontext

        sc = init_nncontext(conf, spark_log_level=settings.log_level, redirect_spark_log=False)
    else:
        sc = SparkContext(conf=conf)
        sc.setLogLevel(settings.log_level)
    if settings.is_cluster:
        from iotbench.spark.ship import check_executors

        try:
            if shipped is not None:
                shipped.add_package(sc)
            check_executors(sc, items.get("spark.pyspark.python", sys.executable), shipped is not None)
        except BaseException:
            stop()
            raise
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
