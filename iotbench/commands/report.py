"""Show saved benchmark runs as tables of images/s, accuracy and latency; compare runs; plot them.

Reads pytest-benchmark JSON: files written with --benchmark-json, runs autosaved in .benchmarks/
(pass the folder), or the committed runs in benchmarks/results/.  The tables fit the terminal
(its width, or COLUMNS): each benchmark gets a short number, and the legend under its table gives
the full name and the columns that did not fit.  Gate ratios are listed with their floors.  With
two or more runs of the same benchmark, a row shows the change of images/s against the first run.
A figure that was not measured prints n/a.

Exit status: 0 when something was shown, 1 when nothing matched (no benchmarks in the runs, or
none for -k), 2 on an error (a path that does not exist).  A file that is not a benchmark run is
named in one line on stderr and skipped.
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iotbench import results

#: The narrowest layout we try to fit; below it lines may be longer than the terminal.
MIN_WIDTH = 40


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="*", type=Path, default=[Path("benchmarks/results")],
                        help="pytest-benchmark JSON files or folders holding them")
    parser.add_argument("--plot", metavar="PNG", type=Path,
                        help="draw images/s as bars grouped by path and coloured by engine; capacity searches' "
                             "latency-throughput curves go to PNG's name with -capacity added")
    parser.add_argument("--html", metavar="HTML", type=Path,
                        help="write one self-contained page: tables, plots, machines and CPU flags, gates")
    parser.add_argument("--markdown", action="store_true", help="print one Markdown table (for README.md)")
    parser.add_argument("-k", dest="select", metavar="TEXT", help="only benchmarks whose path or name contains TEXT")


# --------------------------------------------------------------------------- cells


def _fmt(key: str, value: Any) -> str:
    """One cell; ``n/a`` for anything not measured (None), whatever the column."""
    if value is None:
        return "n/a"
    if key == "accuracy":
        return f"{100 * value:.2f}%"
    if key in ("images_per_sec", "offered_images_per_sec"):
        return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _fmt_change(change: float | None, first: bool) -> str:
    if first:
        return "base"
    return "n/a" if change is None else f"{change:+.1f}%"


def _rate_cell(row: results.Row) -> str:
    """images/s as measured, with the offered rate beside it where the run set one (sustained-rate search)."""
    measured = _fmt("images_per_sec", row.get("images_per_sec"))
    if row.get("offered_images_per_sec") is None:
        return measured
    return f"{measured} (offered {_fmt('offered_images_per_sec', row.get('offered_images_per_sec'))})"


def _fmt_gate_number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3g}"


# --------------------------------------------------------------------------- selection


def run(args: argparse.Namespace) -> int:
    files = results.find_runs(args.runs)
    where = ", ".join(map(str, args.runs))
    if not files:
        print(f"error: no benchmark runs (JSON files) in {where} "
              "(create one with: pytest benchmarks --benchmark-autosave)", file=sys.stderr)
        return 1
    runs, skipped = results.load_runs(files)
    for line in skipped:
        print(f"warning: skipping {line}", file=sys.stderr)
    if not any(r.rows for r in runs):
        bad = f", {len(skipped)} skipped" if skipped else ""
        print(f"error: no benchmarks in {where} ({len(files)} file(s){bad})", file=sys.stderr)
        return 1
    if args.select:
        for r in runs:
            r.rows = [row for row in r.rows if args.select in row.path or args.select in row.name]
        if not any(r.rows for r in runs):
            print(f"error: no benchmark matches -k {args.select!r} in {len(runs)} run(s)", file=sys.stderr)
            return 1
    runs = [r for r in runs if r.rows]
    changes = results.compare(runs)
    if args.markdown:
        print_markdown(runs, changes)
    else:
        print_tables(runs, changes)
    if args.plot:
        for written in plot(runs, args.plot):
            print(f"plot written to {written}")
    if args.html:
        from iotbench import html_report

        html_report.write(runs, args.html)
        print(f"page written to {args.html}")
    return 0


@dataclass
class _Entry:
    """A row of a table with its short id and which occurrence of its benchmark it is (for Δ)."""

    id: int
    row: results.Row
    change: float | None
    first: bool


def _entries_by_path(runs: list[results.Run], changes) -> dict[str, list[_Entry]]:
    grouped: dict[str, list[_Entry]] = {}
    seen: dict[tuple[str, str], int] = {}
    for r in runs:
        for row in r.rows:
            i = seen.get(row.key, 0)
            seen[row.key] = i + 1
            entries = grouped.setdefault(row.path, [])
            entries.append(_Entry(len(entries) + 1, row, changes[row.key][i], i == 0))
    return grouped


def _compared(runs: list[results.Run]) -> bool:
    """True when some benchmark appears in more than one run (only then is a Δ column worth its width)."""
    keys = [row.key for r in runs for row in r.rows]
    return len(keys) != len(set(keys))


# --------------------------------------------------------------------------- terminal tables


@dataclass
class _Column:
    header: str
    cell: Callable[[_Entry], str]
    justify: str = "right"


def _columns(entries: list[_Entry], compared: bool) -> list[tuple[str, _Column]]:
    """The candidate columns, most important first (the last ones move to the legend when space runs out)."""
    get = lambda key: (lambda e: _fmt(key, e.row.get(key)))  # noqa: E731
    cols: list[tuple[str, _Column]] = [
        ("id", _Column("#", lambda e: str(e.id))),
        ("images_per_sec", _Column("img/s", get("images_per_sec"))),
    ]
    if any(e.row.get("offered_images_per_sec") is not None for e in entries):
        cols.append(("offered_images_per_sec", _Column("offered/s", get("offered_images_per_sec"))))
    cols += [("accuracy", _Column("accuracy", get("accuracy"))),
             ("p99_ms", _Column("p99 ms", get("p99_ms")))]
    if compared:
        cols.append(("change", _Column("change", lambda e: _fmt_change(e.change, e.first))))
    cols += [
        ("rejected", _Column("rejected", get("rejected"))),
        ("lost", _Column("lost", get("lost"))),
        ("p50_ms", _Column("p50 ms", get("p50_ms"))),
        ("batch", _Column("batch", get("batch"))),
        ("wire", _Column("wire", get("wire"), "left")),
        ("engine", _Column("engine", get("engine"), "left")),
        ("model", _Column("model", get("model"), "left")),
    ]
    return cols


#: Never moved to the legend: without them a row says nothing.
_KEEP = ("id", "images_per_sec")


def _ascii_head_box():
    """Rich's SIMPLE_HEAD in ASCII: a dashed line under the header, nothing else (safe to pipe and count)."""
    from rich.box import Box

    return Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)


def _table(entries: list[_Entry], cols: list[tuple[str, _Column]]):
    from rich.table import Table
    from rich.text import Text

    table = Table(box=_ascii_head_box(), show_edge=False, pad_edge=False, padding=(0, 1, 0, 0), header_style="bold")
    for _, col in cols:
        table.add_column(col.header, justify=col.justify, no_wrap=True)  # type: ignore[arg-type]
    for e in entries:
        table.add_row(*(Text(col.cell(e)) for _, col in cols))
    return table


def _width_of(renderable, console_kwargs: dict) -> int:
    """The widest line ``renderable`` prints when nothing constrains it."""
    from rich.console import Console

    probe = Console(file=io.StringIO(), width=10_000, **console_kwargs)
    probe.print(renderable)
    return max((len(line.rstrip()) for line in probe.file.getvalue().splitlines()), default=0)  # type: ignore[attr-defined]


def _fit(entries: list[_Entry], cols: list[tuple[str, _Column]], width: int, console_kwargs: dict):
    """Drop columns from the end of the priority list until the table fits ``width``; (table, dropped keys)."""
    cols = list(cols)
    dropped: list[str] = []
    while True:
        table = _table(entries, cols)
        droppable = [i for i, (key, _) in enumerate(cols) if key not in _KEEP]
        if _width_of(table, console_kwargs) <= width or not droppable:
            return table, dropped
        key, _ = cols.pop(droppable[-1])
        dropped.insert(0, key)


def _legend(entries: list[_Entry], dropped: list[str], show_run: bool, show_machine: bool):
    """Full names (never cut: they wrap) and the figures whose columns did not fit."""
    from rich.table import Table
    from rich.text import Text

    legend = Table.grid(padding=(0, 2))
    legend.add_column(justify="right", no_wrap=True)
    legend.add_column(overflow="fold")
    for e in entries:
        details = []
        for key in dropped:
            if key == "change":
                details.append(f"change {_fmt_change(e.change, e.first)}")
            else:
                details.append(f"{key.replace('_ms', ' ms').replace('_', ' ')} {_fmt(key, e.row.get(key))}")
        if show_run:
            details.append(f"run {e.row.run}")
        if show_machine:
            details.append(f"machine {e.row.machine}")
        text = Text(e.row.name)
        if details:  # on the name's line when it fits, wrapped at word boundaries otherwise
            text.append("  " + ", ".join(details), style="dim")
        legend.add_row(Text(str(e.id)), text)
    return legend


def _gates(entries: list[_Entry]):
    """One line per recorded gate: the ratio, its floor, and whether it held."""
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_column(justify="right", no_wrap=True)
    grid.add_column(no_wrap=True)
    grid.add_column(no_wrap=True)
    count = 0
    for e in entries:
        for g in results.gates(e.row):
            count += 1
            verdict = {True: ("ok", "green"), False: ("FAILED", "bold red"), None: ("n/a", "")}[g.passed]
            grid.add_row(Text(str(e.id)), Text(g.name), Text(_fmt_gate_number(g.value)),
                         Text(f">= {_fmt_gate_number(g.floor)}"), Text(verdict[0], style=verdict[1]))
    return grid if count else None


def terminal_width() -> int:
    """The terminal's width (COLUMNS first, as ``shutil`` reads it; 80 when piped without COLUMNS)."""
    return max(shutil.get_terminal_size().columns, MIN_WIDTH)


def print_tables(runs: list[results.Run], changes, width: int | None = None, file=None) -> None:
    """One table per benchmark module, fitted to ``width``, each followed by its legend and its gates."""
    from rich.console import Console
    from rich.text import Text

    width = width or terminal_width()
    out = file or sys.stdout
    console_kwargs = {"highlight": False, "emoji": False}
    styled = Console(file=out, **console_kwargs).is_terminal
    # Rendered into a buffer, then written: plain text (no trailing padding) when piped, styled on a terminal.
    console = Console(file=io.StringIO(), width=width, force_terminal=styled, **console_kwargs)
    compared = _compared(runs)
    for n, (path, entries) in enumerate(_entries_by_path(runs, changes).items()):
        run_labels = {e.row.run for e in entries}
        machines = {e.row.machine for e in entries}
        title = Text(path, style="bold")
        if len(run_labels) == 1:
            title.append(f"  run {next(iter(run_labels))}")
        if len(machines) == 1:
            title.append(f"  on {next(iter(machines))}")
        if n:
            console.print()
        console.print(title)
        table, dropped = _fit(entries, _columns(entries, compared), width, console_kwargs)
        console.print(table)
        console.print(_legend(entries, dropped, len(run_labels) > 1, len(machines) > 1))
        gates = _gates(entries)
        if gates is not None:
            console.print(Text("gates (same-run ratio >= floor)", style="bold"))
            console.print(gates)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    out.write(text if styled else "\n".join(line.rstrip() for line in text.splitlines()) + "\n")
    out.flush()


# --------------------------------------------------------------------------- Markdown


def print_markdown(runs: list[results.Run], changes) -> None:
    """One table for README.md: images/s is measured; a sustained-rate row adds the offered rate in brackets."""
    compared = _compared(runs)
    head = ["path", "benchmark", "run", "images/s", "accuracy", "p50 ms", "p99 ms",
            "rejected", "lost", *(["Δ images/s"] if compared else []), "machine"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for path, entries in _entries_by_path(runs, changes).items():
        for e in entries:
            row = e.row
            cells = [path, f"`{row.name}`", row.run, _rate_cell(row)]
            cells += [_fmt(k, row.get(k)) for k in ("accuracy", "p50_ms", "p99_ms", "rejected", "lost")]
            if compared:
                cells.append(_fmt_change(e.change, e.first))
            cells.append(row.machine)
            print("| " + " | ".join(cells) + " |")


# --------------------------------------------------------------------------- plot


def plot(runs: list[results.Run], out: Path) -> list[Path]:
    """Bars to ``out`` (grouped by path, coloured by engine/runtime, values on them); the curves of any
    capacity search to ``<out stem>-capacity.png``.  Returns the files written."""
    from iotbench import plots

    written = []
    bars = plots.bars_figure(plots.latest_rows(runs))
    if bars is not None:
        out.write_bytes(plots.png_bytes(bars))
        written.append(out)
    curves = plots.curves_figure(plots.capacity_rows(runs))
    if curves is not None:
        path = out.with_name(f"{out.stem}-capacity{out.suffix or '.png'}")
        path.write_bytes(plots.png_bytes(curves))
        written.append(path)
    return written
