"""Reading pytest-benchmark runs as our users think of them: images/s, accuracy, latency per path.

pytest-benchmark stores time per round; every benchmark here also stores its figures under
fixed ``extra_info`` keys (docs/ARCHITECTURE.md, "The result type").  This module turns one or more saved runs
(``--benchmark-json`` files or autosaved ``.benchmarks/**.json``) into rows and compares
them; it does not re-implement pytest-benchmark's storage or its timing comparison.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iotbench.summary import Summary


@dataclass
class Row:
    """One benchmark of one run: its stored figures read back as the one result type."""

    run: str
    path: str  # the benchmark module without test_ (keras_stream, spark, wire, …)
    name: str  # the test name with its parameters
    summary: Summary
    median_s: float | None
    machine: str

    @property
    def key(self) -> tuple[str, str]:
        return self.path, self.name

    @property
    def info(self) -> dict[str, Any]:
        """The figures as stored (``extra_info``): the fixed keys, then the others in their stored order."""
        return self.summary.extra_info()

    def get(self, key: str) -> Any:
        """A figure by its key, None when not measured or not stored."""
        return self.summary.get(key)


@dataclass
class Run:
    label: str
    machine: str
    rows: list[Row] = field(default_factory=list)


#: The CPU flags that set an inference figure's level, best first: the one a CPU has is named in its label.
ISA_LEVELS = ("amx_bf16", "avx512_bf16", "avx512f", "avx2")


def machine_label(machine_info: dict[str, Any]) -> str:
    """``"2-core AMD EPYC (avx512_bf16)"``: cores, brand and the best of :data:`ISA_LEVELS` the CPU has.

    A cloud VM's brand is often just "AMD EPYC" for CPUs of different generations, while the flag is what
    decides a runtime's speed (and the edge gate's floor), so two such runs must not read as one machine.
    """
    cpu = machine_info.get("cpu") or {}
    brand = cpu.get("brand_raw") or machine_info.get("processor") or "cpu"
    count = cpu.get("count")
    label = f"{count}-core {brand}" if count else str(brand)
    flags = set(cpu.get("flags") or ())
    level = next((flag for flag in ISA_LEVELS if flag in flags), None)
    return f"{label} ({level})" if level else label


def _path_of(fullname: str) -> str:
    module = fullname.split("::", 1)[0].rsplit("/", 1)[-1]
    return module.removesuffix(".py").removeprefix("test_")


class BadRun(ValueError):
    """A file that is not a pytest-benchmark run; the message names the file, in one line."""


def load_run(path: Path, label: str | None = None) -> Run:
    """One saved run; :class:`BadRun` when the file is not JSON or not shaped like a pytest-benchmark run."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise BadRun(f"{path}: not JSON ({err})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise BadRun(f"{path}: cannot read ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks", []), list):
        raise BadRun(f"{path}: not a pytest-benchmark run (no list of benchmarks)")
    machine = machine_label(data.get("machine_info") or {})
    run = Run(label or path.stem, machine)
    for bench in data.get("benchmarks", []):
        if not isinstance(bench, dict):
            raise BadRun(f"{path}: not a pytest-benchmark run (a benchmark is not an object)")
        info = bench.get("extra_info") or {}
        if not isinstance(info, dict):
            raise BadRun(f"{path}: not a pytest-benchmark run (extra_info is not an object)")
        summary = Summary.from_extra_info(info)
        stats = bench.get("stats") or {}
        device = summary.get("device")
        machine_here = f"{machine} + {device}" if device and "cpu" not in str(device) else machine
        run.rows.append(Row(run.label, _path_of(bench.get("fullname", "")), bench.get("name", ""), summary,
                            stats.get("median"), machine_here))
    return run


def load_runs(paths: list[Path]) -> tuple[list[Run], list[str]]:
    """Every readable run among ``paths``, and one line per file skipped (a bad file does not hide the others)."""
    runs: list[Run] = []
    skipped: list[str] = []
    for path in paths:
        try:
            runs.append(load_run(path))
        except BadRun as err:
            skipped.append(str(err))
    return runs, skipped


def find_runs(paths: list[Path]) -> list[Path]:
    """Expand folders (e.g. ``.benchmarks``) to the JSON runs inside, oldest first.

    A path that does not exist is an error (FileNotFoundError naming it), not an empty report.
    """
    found: list[Path] = []
    for p in paths:
        if p.is_dir():
            found += sorted(p.rglob("*.json"), key=lambda f: f.stat().st_mtime)
        elif p.exists():
            found.append(p)
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return found


@dataclass
class Gate:
    """A same-run ratio gate as ``fixtures.bench.assert_ratio`` records it: ``value`` must be ≥ ``floor``."""

    name: str
    value: float | None
    floor: float | None

    @property
    def passed(self) -> bool | None:
        if self.value is None or self.floor is None:
            return None
        return self.value >= self.floor


def gates(row: Row) -> list[Gate]:
    """The gates recorded in a row's ``extra_info["gates"]`` (``{name: {"value": v, "floor": f}}``)."""
    recorded = row.get("gates") or {}
    if not isinstance(recorded, dict):
        return []
    return [Gate(name, g.get("value"), g.get("floor")) for name, g in recorded.items() if isinstance(g, dict)]


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
