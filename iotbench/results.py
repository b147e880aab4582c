"""Reading pytest-benchmark runs as our users think of them: images/s, accuracy, latency per path.

pytest-benchmark stores time per round; every benchmark here also stores its figures under
fixed ``extra_info`` keys (DESIGN.md § Measuring).  This module turns one or more saved runs
(``--benchmark-json`` files or autosaved ``.benchmarks/**.json``) into rows and compares
them; it does not re-implement pytest-benchmark's storage or its timing comparison.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Row:
    """One benchmark of one run."""

    run: str
    path: str  # the benchmark module without test_ (keras_stream, spark, wire, …)
    name: str  # the test name with its parameters
    info: dict[str, Any]
    median_s: float | None
    machine: str

    @property
    def key(self) -> tuple[str, str]:
        return self.path, self.name

    def get(self, key: str) -> Any:
        return self.info.get(key)


@dataclass
class Run:
    label: str
    machine: str
    rows: list[Row] = field(default_factory=list)


def machine_label(machine_info: dict[str, Any]) -> str:
    """``"2-core Intel Xeon …"`` plus the GPU when a benchmark recorded one."""
    cpu = machine_info.get("cpu") or {}
    brand = cpu.get("brand_raw") or machine_info.get("processor") or "cpu"
    count = cpu.get("count")
    return f"{count}-core {brand}" if count else str(brand)


def _path_of(fullname: str) -> str:
    module = fullname.split("::", 1)[0].rsplit("/", 1)[-1]
    return module.removesuffix(".py").removeprefix("test_")


def load_run(path: Path, label: str | None = None) -> Run:
    data = json.loads(Path(path).read_text())
    machine = machine_label(data.get("machine_info") or {})
    run = Run(label or Path(path).stem, machine)
    for bench in data.get("benchmarks", []):
        info = dict(bench.get("extra_info") or {})
        stats = bench.get("stats") or {}
        machine_here = f"{machine} + {info['device']}" if info.get("device") and "cpu" not in str(info["device"]) \
            else machine
        run.rows.append(Row(run.label, _path_of(bench.get("fullname", "")), bench.get("name", ""), info,
                            stats.get("median"), machine_here))
    return run


def find_runs(paths: list[Path]) -> list[Path]:
    """Expand folders (e.g. ``.benchmarks``) to the JSON runs inside, oldest first."""
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found += sorted(p.rglob("*.json"), key=lambda f: f.stat().st_mtime)
        else:
            found.append(p)
    return found


def change_pct(new: float | None, old: float | None) -> float | None:
    """Relative change in percent, None when either side is missing or the baseline is 0."""
    if new is None or old in (None, 0):
        return None
    return 100.0 * (new - old) / old  # type: ignore[operator]


def compare(runs: list[Run], metric: str = "images_per_sec") -> dict[tuple[str, str], list[float | None]]:
    """For each benchmark key: the change of ``metric`` in each run against the first run that has it."""
    changes: dict[tuple[str, str], list[float | None]] = {}
    baseline: dict[tuple[str, str], float | None] = {}
    for run in runs:
        for row in run.rows:
            value = row.get(metric)
            if row.key not in baseline:
                baseline[row.key] = value
                changes[row.key] = [None]
            else:
                changes[row.key].append(change_pct(value, baseline[row.key]))
    return changes
