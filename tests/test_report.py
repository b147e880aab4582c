"""Reports from saved pytest-benchmark runs: comparison, plot, and the README's table."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from iotbench import results

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def fake_run(tmp_path: Path, name: str, images_per_sec: float, batch: int) -> Path:
    """A pytest-benchmark JSON shaped like the real ones (only the fields the report reads)."""
    payload = {
        "machine_info": {"cpu": {"count": 2, "brand_raw": "Test CPU"}},
        "benchmarks": [{
            "name": "test_stream[resnet20-microbatch-text]",
            "fullname": "benchmarks/test_keras_stream.py::test_stream[resnet20-microbatch-text]",
            "stats": {"median": 1.0},
            "extra_info": {"images": 1000, "images_per_sec": images_per_sec, "accuracy": 0.91, "p50_ms": 10.0,
                           "p99_ms": 30.0, "rejected": 0, "lost": 0, "engine": "keras", "model": "resnet20",
                           "batch": batch, "wire": "v2%f"},
        }],
    }
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(payload))
    return path


def test_compare_gives_the_change_against_the_first_run(tmp_path):
    runs = [results.load_run(fake_run(tmp_path, "b32", 1000, 32)),
            results.load_run(fake_run(tmp_path, "b128", 1500, 128))]
    (key,) = results.compare(runs)
    assert key == ("keras_stream", "test_stream[resnet20-microbatch-text]")
    assert results.compare(runs)[key] == [None, pytest.approx(50.0)]


def test_report_cli_prints_the_change_and_draws_a_png(tmp_path):
    a, b = fake_run(tmp_path, "b32", 1000, 32), fake_run(tmp_path, "b128", 1500, 128)
    png = tmp_path / "cmp.png"
    out = subprocess.run([sys.executable, "-m", "iotbench", "report", str(a), str(b), "--plot", str(png)],
                         capture_output=True, text=True, check=True).stdout
    assert "+50.0%" in out
    assert png.stat().st_size > 5_000 and png.read_bytes()[:4] == b"\x89PNG"


def test_readme_results_table_matches_the_committed_runs():
    runs = sorted(RESULTS.glob("*.json"))
    if not runs:
        pytest.skip("no committed runs under benchmarks/results/")
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- results:begin -->\n(.*?)<!-- results:end -->", readme, re.S)
    assert match, "README.md has no results table between <!-- results:begin --> and <!-- results:end -->"
    generated = subprocess.run([sys.executable, "-m", "iotbench", "report", "--markdown", *map(str, runs)],
                               capture_output=True, text=True, check=True).stdout
    hint = "regenerate with: iotbench report --markdown benchmarks/results/*.json"
    assert match.group(1).strip() == generated.strip(), hint


@pytest.mark.slow
@pytest.mark.keras
def test_ci_gate_fails_when_micro_batching_is_turned_off():
    """The regression the gate exists for: ``--batch 1`` makes the micro-batched path per-image again."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                           str(ROOT / "benchmarks" / "test_keras_stream.py"),
                           "-k", "speedup_and_ceiling_ratios and legacy", "--batch", "1", "--images", "100"],
                          capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "GATE FAILED: microbatch_over_per_image" in proc.stdout, proc.stdout[-3000:]
