"""The report's pictures: latency–throughput curves of capacity searches, and bars per path.

(a) A capacity search (rows with ``steps``) is drawn as offered rate → p50 and p99 of each step,
the p99 bound as a horizontal line and the capacity marked: the shape says how sharply latency
turns up at the knee, which one number cannot.  (b) The bars put one bar per benchmark, grouped by
path (the benchmark module) and coloured by engine/runtime, with the value written on each bar, so
a multi-file report stays readable.  Figures are returned as PNG bytes (for the HTML page) or saved.
"""

from __future__ import annotations

import io
from typing import Any

from iotbench import results


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def latest_rows(runs: list[results.Run]) -> list[results.Row]:
    """One row per benchmark (path, name): the last run's, in first-seen order."""
    rows: dict[tuple[str, str], results.Row] = {}
    for r in runs:
        for row in r.rows:
            rows[row.key] = row
    return list(rows.values())


def capacity_rows(runs: list[results.Run]) -> list[results.Row]:
    """Rows of a rate search: ``steps`` with an offered rate and a p99 each."""
    return [row for row in latest_rows(runs) if isinstance(row.get("steps"), list) and row.get("steps")]


def _offered(step: dict[str, Any]) -> float | None:
    return step.get("offered_images_per_sec", step.get("rate"))


def curves_figure(rows: list[results.Row]):
    """(a): one panel per search; None when there is no search to draw."""
    if not rows:
        return None
    plt = _pyplot()
    cols = min(len(rows), 2)
    nrows = (len(rows) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(6.5 * cols, 4.2 * nrows), squeeze=False)
    for ax, row in zip(axes.flat, rows):
        steps = sorted((s for s in row.get("steps") if _offered(s) is not None), key=_offered)
        x = [_offered(s) for s in steps]
        for key, style, label in (("p50_ms", "o--", "p50"), ("p99_ms", "s-", "p99")):
            pts = [(xi, s.get(key)) for xi, s in zip(x, steps) if s.get(key) is not None]
            if pts:
                ax.plot(*zip(*pts), style, label=label)
        failed = [(xi, s.get("p99_ms")) for xi, s in zip(x, steps) if not s.get("kept_up") and s.get("p99_ms")]
        if failed:
            ax.plot(*zip(*failed), "x", color="red", markersize=9, label="did not keep up")
        bound = row.get("p99_bound_ms")
        if bound is not None:
            ax.axhline(bound, color="grey", linestyle=":", label=f"p99 bound {bound:g} ms")
        cap = row.get("capacity_images_per_sec") if "capacity_images_per_sec" in row.info else row.get("sustained_rate")
        if cap is not None:
            ax.axvline(cap, color="green", alpha=0.6, label=f"capacity {cap:g}/s")
        ax.set_yscale("log")
        ax.set_xlabel("offered images / second (Poisson)" if row.get("arrival") == "poisson"
                      else "offered images / second")
        ax.set_ylabel("latency, ms (log)")
        ax.set_title(f"{row.path}: {row.name}", fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(rows):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def _series(row: results.Row) -> str:
    """The colour of a bar: the engine, with the runtime where it is not the engine's own."""
    engine, runtime = str(row.get("engine") or "n/a"), row.get("runtime")
    return engine if not runtime or runtime in (engine, "tf") else f"{engine} ({runtime})"


def bars_figure(rows: list[results.Row], metric: str = "images_per_sec"):
    """(b): horizontal bars grouped by path, one colour per engine/runtime, the value on each bar."""
    rows = [row for row in rows if row.get(metric) is not None]
    if not rows:
        return None
    plt = _pyplot()
    rows = sorted(rows, key=lambda row: row.path)  # stable: first-seen order within a path
    series = list(dict.fromkeys(_series(row) for row in rows))
    cmap = plt.get_cmap("tab10" if len(series) <= 10 else "tab20")
    colours = {s: cmap(i % cmap.N) for i, s in enumerate(series)}
    ys, labels, y, last_path, group_ticks = [], [], 0.0, None, []
    for row in rows:
        if row.path != last_path:
            if last_path is not None:
                y += 0.8  # a gap between groups
            group_ticks.append((y, row.path))
            last_path = row.path
        ys.append(y)
        labels.append(row.name)
        y += 1
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.32 * (y + 1)))
    values = [float(row.get(metric)) for row in rows]
    ax.barh(ys, values, height=0.75, color=[colours[_series(row)] for row in rows])
    log = max(values) / max(min(v for v in values if v > 0), 1e-9) > 20 if any(v > 0 for v in values) else False
    if log:
        ax.set_xscale("log")
    for yi, v in zip(ys, values):
        ax.text(v, yi, f" {v:,.0f}" if v >= 100 else f" {v:.1f}", va="center", fontsize=7)
    ax.set_yticks(ys, labels, fontsize=7)
    for gy, path in group_ticks:
        ax.text(1.0, gy - 0.7, path, transform=ax.get_yaxis_transform(), ha="right", fontsize=8, weight="bold")
    ax.invert_yaxis()
    ax.set_xlabel("images / second, measured (higher is better)" + (" — log scale" if log else ""))
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[s]) for s in series]
    ax.legend(handles, series, title="engine", fontsize=7, loc="lower right")
    ax.margins(x=0.12)
    fig.tight_layout()
    return fig


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    _pyplot().close(fig)
    return buf.getvalue()


def figures(runs: list[results.Run]) -> list[tuple[str, bytes]]:
    """(title, PNG) of every picture the runs have: the curves when there is a search, then the bars."""
    out = []
    curves = curves_figure(capacity_rows(runs))
    if curves is not None:
        out.append(("latency–throughput curves of the capacity searches", png_bytes(curves)))
    bars = bars_figure(latest_rows(runs))
    if bars is not None:
        out.append(("images/s by path and engine", png_bytes(bars)))
    return out
