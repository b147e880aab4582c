"""The executors a SparkContext has right now: counted before and after a run, so a summary can say one was lost.

Why: Spark's task retry hides a lost executor (the run completes, only slower); the benchmark must report it.
``getExecutorMemoryStatus`` lists one block manager per executor plus the driver's own, which is left out.
"""

from __future__ import annotations


def executor_hosts(sc) -> list[str]:
    """``host`` of each block manager but the driver's, sorted ([] in local mode, where the driver runs the tasks).

    The driver's is told apart by its address and port (the driver's advertised host and the block manager's port), so
    an executor on the driver's host still counts.
    """
    driver = _driver_host_port(sc)
    status = sc._jsc.sc().getExecutorMemoryStatus()
    keys = status.keySet().iterator()
    hosts = []
    while keys.hasNext():
        key = str(keys.next())
        if key != driver:
            hosts.append(key.rsplit(":", 1)[0])
    return sorted(hosts)


def _driver_host_port(sc) -> str | None:
    """The driver's block manager as ``host:port``, from the status store's ``driver`` entry.

    Not through ``SparkEnv``: on Spark 4 Py4J cannot call its methods (reflecting on the class loads a signature
    that names unshaded protobuf, ``NoClassDefFoundError: com/google/protobuf/MessageOrBuilder``, and kills the
    gateway's thread).  The status store answers alike on Spark 3.5 and 4.
    """
    entries = sc._jsc.sc().statusStore().executorList(True).iterator()
    while entries.hasNext():
        entry = entries.next()
        if str(entry.id()) == "driver":
            return str(entry.hostPort())
    return None


def executor_count(sc) -> int | None:
    """Live executors; None when the count cannot be read (the context is gone)."""
    try:
        return len(executor_hosts(sc))
    except Exception:  # py4j errors once the JVM is stopping: not measured, not 0
        return None


def lost_between(before: int | None, after: int | None) -> int | None:
    """Executors lost during a run (never negative: an executor may also be added); None when not measured."""
    if before is None or after is None:
        return None
    return max(before - after, 0)
