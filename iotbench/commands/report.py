"""Show saved benchmark runs as tables of images/s, accuracy and latency; compare runs; plot them.

Reads pytest-benchmark JSON: files written with ``--benchmark-json``, runs autosaved in
``.benchmarks/`` (pass the folder), or the committed runs in ``benchmarks/results/``.
With two or more runs, each row shows the change of images/s against the first run.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from iotbench import results

COLUMNS = ("images_per_sec", "accuracy", "p50_ms", "p99_ms", "rejected", "lost", "engine", "model", "batch", "wire")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="*", type=Path, default=[Path("benchmarks/results")],
                        help="pytest-benchmark JSON files or folders holding them")
    parser.add_argument("--plot", metavar="PNG", type=Path,
                        help="draw images/s (and p99 latency) per benchmark and run")
    parser.add_argument("--markdown", action="store_true", help="print one Markdown table (for README.md)")
    parser.add_argument("-k", dest="select", metavar="TEXT", help="only benchmarks whose path or name contains TEXT")


def _fmt(key: str, value) -> str:
    if value is None:
        return "n/a" if key in ("accuracy", "p50_ms", "p99_ms") else "-"
    if key == "accuracy":
        return f"{100 * value:.2f}%"
    if key == "images_per_sec":
        return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _fmt_change(change: float | None) -> str:
    return "" if change is None else f"{change:+.1f}%"


def run(args: argparse.Namespace) -> int:
    files = results.find_runs(args.runs)
    if not files:
        raise FileNotFoundError(f"no benchmark runs found in {', '.join(map(str, args.runs))} "
                                "(create one with: pytest benchmarks --benchmark-autosave)")
    runs = [results.load_run(f) for f in files]
    if args.select:
        for r in runs:
            r.rows = [row for row in r.rows if args.select in row.path or args.select in row.name]
    changes = results.compare(runs)
    if args.markdown:
        print_markdown(runs, changes)
    else:
        print_tables(runs, changes)
    if args.plot:
        plot(runs, args.plot)
        print(f"plot written to {args.plot}")
    return 0


def _rows_by_path(runs: list[results.Run]) -> dict[str, list[results.Row]]:
    grouped: dict[str, list[results.Row]] = {}
    for r in runs:
        for row in r.rows:
            grouped.setdefault(row.path, []).append(row)
    return grouped


def print_tables(runs: list[results.Run], changes) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(width=200)
    multi = len(runs) > 1
    seen_count: dict[tuple[str, str], int] = {}
    for path, rows in _rows_by_path(runs).items():
        table = Table(title=f"{path}", title_justify="left", show_lines=False)
        table.add_column("benchmark")
        if multi:
            table.add_column("run")
        for col in COLUMNS:
            table.add_column(col.replace("_per_sec", "/s").replace("images", "img"), justify="right")
        if multi:
            table.add_column("Δ img/s", justify="right")
        table.add_column("machine")
        for row in rows:
            i = seen_count.get(row.key, 0)
            seen_count[row.key] = i + 1
            cells = [escape(row.name)] + ([row.run] if multi else []) + [escape(_fmt(c, row.get(c))) for c in COLUMNS]
            if multi:
                cells.append(_fmt_change(changes[row.key][i]))
            table.add_row(*cells, row.machine)
        console.print(table)


def print_markdown(runs: list[results.Run], changes) -> None:
    multi = len(runs) > 1
    head = ["path", "benchmark", *(["run"] if multi else []), "images/s", "accuracy", "p50 ms", "p99 ms",
            "rejected", "lost", *(["Δ images/s"] if multi else []), "machine"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    seen_count: dict[tuple[str, str], int] = {}
    for path, rows in _rows_by_path(runs).items():
        for row in rows:
            i = seen_count.get(row.key, 0)
            seen_count[row.key] = i + 1
            cells = [path, f"`{row.name}`", *([row.run] if multi else [])]
            cells += [_fmt(k, row.get(k)) for k in ("images_per_sec", "accuracy", "p50_ms", "p99_ms", "rejected",
                                                      "lost")]
            if multi:
                cells.append(_fmt_change(changes[row.key][i]))
            cells.append(row.machine)
            print("| " + " | ".join(cells) + " |")


def plot(runs: list[results.Run], out: Path) -> None:
    """Grouped horizontal bars: images/s per benchmark, one colour per run; p99 latency beside it if any."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    keys: list[tuple[str, str]] = []
    for r in runs:
        for row in r.rows:
            if row.key not in keys:
                keys.append(row.key)
    values = {(r.label, row.key): row for r in runs for row in r.rows}
    has_latency = any(row.get("p99_ms") is not None for r in runs for row in r.rows)
    fig, axes = plt.subplots(1, 2 if has_latency else 1, figsize=(14 if has_latency else 9, 1 + 0.45 * len(keys)),
                             squeeze=False, sharey=True)
    y = np.arange(len(keys))
    height = 0.8 / len(runs)
    for i, r in enumerate(runs):
        offset = (i - (len(runs) - 1) / 2) * height
        for ax, metric in zip(axes[0], ("images_per_sec", "p99_ms")):
            data = [(values.get((r.label, k)).get(metric) if values.get((r.label, k)) else None) or 0 for k in keys]
            ax.barh(y + offset, data, height=height, label=r.label)
    axes[0][0].set_yticks(y, [f"{p}: {n}" for p, n in keys], fontsize=8)
    axes[0][0].set_xlabel("images / second (higher is better)")
    rates = [row.get("images_per_sec") for r in runs for row in r.rows if row.get("images_per_sec")]
    if rates and max(rates) / min(rates) > 20:  # paths differ by orders of magnitude: log scale
        axes[0][0].set_xscale("log")
    if has_latency:
        axes[0][1].set_xlabel("p99 latency, ms (lower is better)")
    axes[0][0].invert_yaxis()
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="upper center", ncol=min(len(runs), 4), fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.92))
    fig.savefig(out, dpi=110)
    plt.close(fig)
