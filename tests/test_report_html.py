"""``iotbench report --html`` opened in headless Chromium: the tables and the pictures render.

The page is written from the committed runs (benchmarks/results/); Chromium loads it from a file
with no network, runs a tiny inline script that writes each image's naturalWidth into the DOM, and
the dumped DOM is checked for the table rows, the capacity curve and those widths.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--virtual-time-budget=5000")
PROBE = """<script>window.addEventListener('load', function () {
  var out = document.createElement('pre'); out.id = 'probe';
  out.textContent = Array.prototype.map.call(document.images, function (i) {
    return 'IMG ' + i.naturalWidth + 'x' + i.naturalHeight; }).join('\\n') +
    '\\nROWS ' + document.querySelectorAll('tr.result').length;
  document.body.appendChild(out); });</script>"""


def chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        pytest.skip("chromium is not installed (scripts/setup.sh installs Debian's chromium)")
    return found


def write_page(tmp_path: Path) -> Path:
    if not any(RESULTS.glob("capacity_*.json")):
        pytest.skip("no committed capacity runs under benchmarks/results/")
    out = tmp_path / "report.html"
    subprocess.run([sys.executable, "-m", "iotbench", "report", str(RESULTS), "--html", str(out)],
                   check=True, capture_output=True, text=True)
    return out


def test_html_page_is_self_contained_with_tables_plots_machines_and_gates(tmp_path):
    page = write_page(tmp_path).read_text()
    assert "<table>" in page and "tr class=\"result\"" in page
    assert "latency–throughput curves" in page and page.count("data:image/png;base64,") >= 2
    assert "Machines" in page and "flags" in page and "Gates" in page
    assert not re.search(r"""(src|href)=['"]https?://""", page)  # nothing loaded from elsewhere
    assert "capacity = " in page


def test_html_page_renders_in_headless_chromium(tmp_path):
    browser = chromium()
    page = write_page(tmp_path)
    probed = page.with_name("probed.html")
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    profile = tmp_path / "profile"
    run = subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--dump-dom", probed.as_uri()],
                         capture_output=True, text=True, timeout=120)
    dom = run.stdout
    assert 'id="probe"' in dom, run.stderr[-2000:]
    probe = dom.split('id="probe">', 1)[1].split("</pre>", 1)[0]
    widths = [int(w) for w in re.findall(r"IMG (\d+)x\d+", probe)]
    assert len(widths) >= 2 and all(w > 0 for w in widths), probe  # every image decoded
    rows = int(re.search(r"ROWS (\d+)", probe).group(1))
    assert rows == page.read_text().count('<tr class="result">') and rows > 0
    assert "test_capacity[" in dom
    shot = tmp_path / "page.png"
    subprocess.run([browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--screenshot={shot}",
                    "--window-size=1200,2000", page.as_uri()], capture_output=True, timeout=120)
    assert shot.exists() and shot.stat().st_size > 10_000
