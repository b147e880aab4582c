"""What a run tells its user: the original's console lines, our summary line, JSON, machine facts.

The final line keeps the original's wording so that scripts scraping it keep working::

    Inferenced 10000 images in 58.8 seconds or 170.0 images/second, with 9147 or 91.5% correctly classified
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from typing import Any

from iotbench.summary import Summary


def timestamp(millis: bool = False) -> str:
    """UTC time as the original printed it (``2019-01-31T02:44:45Z``; Spark programs with ms)."""
    now = time.time()
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
    return f"{base}.{int(now * 1000) % 1000:03d}Z" if millis else f"{base}Z"


def log(message: str, millis: bool = False) -> None:
    """A timestamped progress line on stderr (stdout may be the image stream)."""
    print(f"{timestamp(millis)}: {message}", file=sys.stderr, flush=True)


def inferenced_line(summary: dict[str, Any]) -> str:
    """The original ``infer_cifar.py`` final line."""
    n, secs, rate = summary["classified"], summary["elapsed_s"], summary["images_per_sec"]
    rate_text = "n/a" if rate is None else f"{rate:.1f}"
    line = f"Inferenced {n} images in {secs:.1f} seconds or {rate_text} images/second"
    if summary.get("accuracy") is None:
        return line + ", accuracy n/a"
    return line + f", with {summary['correct']} or {100 * summary['accuracy']:.1f}% correctly classified"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _count(value: Any) -> str:
    """A count, or ``n/a`` when it was not measured (never a made-up 0)."""
    return "n/a" if value is None else str(value)


#: Counts shown after ``lost`` only when the summary carries them (v2 and binary streams, newer receivers).
OPTIONAL_COUNTS = ("duplicated", "reordered", "garbage_lines")


def extra_line(summary: dict[str, Any]) -> str:
    """Our addition after the original's line: latency, rejections, loss, backpressure.

    Every figure the receiver could not measure prints ``n/a``: ``sent`` without a v2 trailer,
    ``lost`` on a v1 stream (no sequence numbers, so a missing image leaves no trace).
    """
    reasons = summary.get("rejected_by_reason") or {}
    detail = f" ({', '.join(f'{k}: {v}' for k, v in sorted(reasons.items()))})" if reasons else ""
    lost = summary.get("lost")
    lost_text = "n/a (v1 stream: loss not measurable)" if lost is None else str(lost)
    more = "".join(f", {key} {_count(summary[key])}" for key in OPTIONAL_COUNTS if key in summary)
    if "truncated" in summary:
        truncated = summary["truncated"]
        more += f", truncated {'n/a' if truncated is None else 'yes' if truncated else 'no'}"
    return (
        f"Latency p50 {_ms(summary.get('p50_ms'))} ms, p90 {_ms(summary.get('p90_ms'))} ms, "
        f"p99 {_ms(summary.get('p99_ms'))} ms, max {_ms(summary.get('max_ms'))} ms; "
        f"sent {_count(summary.get('sent'))}, received {_count(summary.get('received'))}, "
        f"rejected {_count(summary.get('rejected'))}{detail}, lost {lost_text}{more}; "
        f"queue high-water {_count(summary.get('queue_high_water'))}"
    )


def machine() -> dict[str, Any]:
    """Facts about the machine a figure was measured on."""
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "system": platform.system(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def machine_load() -> dict[str, Any]:
    """What else ran and on what CPU: the load average and the CPU model and flags a figure depends on.

    Other people's jobs share the machine; a figure measured at load 4 on 2 cores says so beside it.
    """
    from iotbench.cpu import cpu_flags, cpu_model, relevant_flags

    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {"load_average": load, "cpu_model": cpu_model(), "cpu_flags": relevant_flags(cpu_flags()),
            "cpu_count": os.cpu_count()}


def write_json(path: str, payload: dict[str, Any]) -> None:
    with open(path, "w") as f:
        json.dump(payload, f, indent=2, default=str)


def extra_info(summary: dict[str, Any], *, engine: str, model: str, batch: int, wire: str,
               **more: Any) -> dict[str, Any]:
    """A run's summary dict as pytest-benchmark's ``extra_info``: ``Summary.from_run(...).extra_info()``.

    For the paths that hold a summary dict rather than a result object (the Summary constructors
    ``from_receive``, ``from_spark_max``, ``from_torch``... take those).  A key the summary does not have is
    None, an in-memory path's ``rejected`` / ``lost`` are None whatever its summary says, and a run at max rate
    reports its p99 as ``backlog_p99_ms`` (:meth:`iotbench.summary.Summary.labelled_backlog`).
    """
    return Summary.from_run(summary, engine=engine, model=model, batch=batch, wire=wire, **more).extra_info()
