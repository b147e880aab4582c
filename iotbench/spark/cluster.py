"""A Spark standalone cluster on loopback, started and stopped by us.

Started from the installed pyspark's own launcher (``bin/spark-class …deploy.master.Master`` /
``…deploy.worker.Worker``, which is what ``sbin/start-master.sh`` and ``start-worker.sh`` run; the pip wheel
ships no ``start-*.sh``), loopback only, each JVM in its own process group under a watchdog that stops the
groups when the process that started them dies (a killed pytest leaves no JVM behind), and stopped by those
process groups.
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
import time
from pathlib import Path

from iotbench.spark.env import prepare_environment
from iotbench.spark.jars import spark_home
from iotbench.spark.logs import log4j_file


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
