"""``iotbench report --html``: one self-contained page a person opens in a browser.

Everything is inside the file (tables, the pictures of :mod:`iotbench.plots` as inline base64 PNG,
the machine and its CPU flags, the gates with their floors), so it can be mailed or attached to a
CI run without the folder it came from.  Figures not measured read ``n/a``.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

from iotbench import plots, results

#: Columns of each path's table: (extra_info key, header).
COLUMNS = (("images_per_sec", "images/s"), ("offered_images_per_sec", "offered/s"), ("p99_bound_ms", "p99 bound ms"),
           ("accuracy", "accuracy"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"), ("backlog_p99_ms", "backlog p99 ms"),
           ("rejected", "rejected"), ("lost", "lost"), ("engine", "engine"), ("runtime", "runtime"),
           ("model", "model"), ("batch", "batch"), ("wire", "wire"))

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.85em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}th{background:#f0f0f0}
td.name,td.text{text-align:left}img{max-width:100%;border:1px solid #ddd;margin:0.5em 0}
.fail{color:#b00;font-weight:bold}.ok{color:#070}code{font-size:0.9em}"""


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "n/a"
    if key == "accuracy":
        return f"{100 * value:.2f}%"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"
    return str(value)


def _esc(value: Any) -> str:
    return html.escape(str(value))


def _table(rows: list[results.Row]) -> str:
    keys = [(k, h) for k, h in COLUMNS if any(row.get(k) is not None for row in rows)]
    head = "<tr><th>benchmark</th>" + "".join(f"<th>{_esc(h)}</th>" for _, h in keys) + "</tr>"
    body = []
    for row in rows:
        cells = "".join(f'<td class="{"text" if isinstance(row.get(k), str) else "num"}">'
                        f'{_esc(_cell(k, row.get(k)))}</td>' for k, _ in keys)
        body.append(f'<tr class="result"><td class="name"><code>{_esc(row.name)}</code></td>{cells}</tr>')
    return f"<table>{head}{''.join(body)}</table>"


def _capacity_lines(rows: list[results.Row]) -> str:
    items = [f"<li><code>{_esc(r.name)}</code>: {_esc(r.get('headline'))}</li>" for r in rows if r.get("headline")]
    return f"<h2>Capacity at a p99 bound</h2><ul>{''.join(items)}</ul>" if items else ""


def _gates(rows: list[results.Row]) -> str:
    lines = []
    for row in rows:
        for g in results.gates(row):
            verdict = {True: ('ok', 'ok'), False: ('FAILED', 'fail'), None: ('n/a', '')}[g.passed]
            lines.append(f'<tr class="gate"><td class="name"><code>{_esc(row.name)}</code></td>'
                         f'<td class="text">{_esc(g.name)}</td><td>{_esc(_cell("", g.value))}</td>'
                         f'<td>&ge; {_esc(_cell("", g.floor))}</td><td class="{verdict[1]}">{verdict[0]}</td></tr>')
    if not lines:
        return ""
    return ("<h2>Gates (same-run ratio &ge; floor)</h2><table><tr><th>benchmark</th><th>gate</th><th>value</th>"
            f"<th>floor</th><th>verdict</th></tr>{''.join(lines)}</table>")


def _machines(runs: list[results.Run]) -> str:
    """Each run's machine, with the CPU model, flags and load its benchmarks recorded."""
    items = []
    for r in runs:
        recorded = next((row for row in r.rows if row.get("cpu_flags") is not None), None)
        more = ""
        if recorded is not None:
            load = recorded.get("load_average")
            more = (f"; CPU {_esc(recorded.get('cpu_model'))}, flags {_esc(' '.join(recorded.get('cpu_flags')))}"
                    f"; load average at the time {_esc(load if load is not None else 'n/a')}")
        items.append(f"<li><code>{_esc(r.label)}</code>: {_esc(r.machine)}{more}</li>")
    from iotbench.cpu import cpu_flags, cpu_model, relevant_flags

    here = f"{_esc(cpu_model())}, flags {_esc(' '.join(relevant_flags(cpu_flags())) or 'n/a')}"
    return f"<h2>Machines</h2><ul>{''.join(items)}</ul><p>Report written on: {here}</p>"


def page(runs: list[results.Run]) -> str:
    """The whole page as one string."""
    sections = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>iotbench report</title>"
                f"<style>{STYLE}</style></head><body><h1>iotbench report</h1>"]
    rows = plots.latest_rows(runs)
    sections.append(_capacity_lines(rows))
    for title, png in plots.figures(runs):
        data = base64.b64encode(png).decode("ascii")
        sections.append(f"<h2>{_esc(title)}</h2><img class='plot' alt='{_esc(title)}' "
                        f"src='data:image/png;base64,{data}'>")
    by_path: dict[str, list[results.Row]] = {}
    for row in rows:
        by_path.setdefault(row.path, []).append(row)
    for path, path_rows in by_path.items():
        sections.append(f"<h2>{_esc(path)}</h2>{_table(path_rows)}")
    sections.append(_gates(rows))
    sections.append(_machines(runs))
    sections.append("</body></html>")
    return "\n".join(s for s in sections if s)


def write(runs: list[results.Run], out: Path) -> None:
    out.write_text(page(runs), encoding="utf-8")
