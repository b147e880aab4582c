"""Reports from saved pytest-benchmark runs: comparison, plot, and the README's table."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from iotbench import report, results
from iotbench.report import extra_info

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


IN_MEMORY_WIRES = ("in-memory", "memory")


def committed_rows() -> list[results.Row]:
    return [row for f in sorted(RESULTS.glob("*.json")) for row in results.load_run(f).rows]


def report_cli(*args: str, columns: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **({"COLUMNS": str(columns)} if columns else {})}
    return subprocess.run([sys.executable, "-m", "iotbench", "report", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT)


# --------------------------------------------------------------------------- honest figures


def test_extra_info_leaves_what_was_not_measured_as_none():
    streamed = extra_info({"classified": 10, "images_per_sec": 5.0, "rejected": 0, "lost": 2}, engine="null",
                          model="-", batch=8, wire="v2 %d")
    assert (streamed["rejected"], streamed["lost"]) == (0, 2)  # measured: kept, zeros included
    bare = extra_info({"classified": 10, "images_per_sec": 5.0}, engine="null", model="-", batch=8, wire="v2 %d")
    assert bare["rejected"] is None and bare["lost"] is None and bare["p99_ms"] is None
    # an in-memory path's summary may say 0, but nothing was streamed: nothing could be rejected or lost
    for wire in IN_MEMORY_WIRES:
        info = extra_info({"classified": 10, "images_per_sec": 5.0, "rejected": 0, "lost": 0}, engine="torch",
                          model="m", batch=8, wire=wire)
        assert info["rejected"] is None and info["lost"] is None


def test_extra_line_prints_na_and_the_new_counts():
    v1 = {"sent": None, "received": 5, "classified": 5, "rejected": 0, "lost": None, "p50_ms": None}
    line = report.extra_line(v1)
    assert "lost n/a (v1 stream: loss not measurable)" in line
    assert "sent n/a" in line and "p50 n/a ms" in line and "queue high-water n/a" in line
    assert "None" not in line and "duplicated" not in line and "truncated" not in line
    v2 = {**v1, "sent": 7, "lost": 1, "duplicated": 2, "reordered": 3, "garbage_lines": 4, "truncated": True,
          "queue_high_water": 9}
    line = report.extra_line(v2)
    assert "lost 1, duplicated 2, reordered 3, garbage_lines 4, truncated yes" in line
    assert "sent 7" in line and "queue high-water 9" in line
    assert "truncated no" in report.extra_line({**v2, "truncated": False})
    assert "duplicated n/a" in report.extra_line({**v2, "duplicated": None})


def test_committed_runs_have_no_made_up_zeros():
    rows = committed_rows()
    if not rows:
        pytest.skip("no committed runs under benchmarks/results/")
    for row in rows:
        if row.get("wire") in IN_MEMORY_WIRES or row.name.startswith(("test_decode", "test_encode")):
            assert row.get("rejected") is None and row.get("lost") is None, row.name
        if row.get("wire") in ("v1 %f", "v1 %d", "comma") and row.path in ("stream_tcp", "scala"):
            assert row.get("lost") is None, row.name  # no sequence numbers: loss not measurable


def test_sustained_runs_report_the_measured_rate_beside_the_offered_one():
    sustained = [row for row in committed_rows() if row.name.startswith("test_spark_sustained_rate")]
    if not sustained:
        pytest.skip("no committed sustained-rate runs")
    for row in sustained:
        offered = row.get("offered_images_per_sec")
        assert offered is not None and offered == row.get("sustained_rate"), row.name
        (step,) = [s for s in row.get("steps") if s["kept_up"] and s["rate"] == offered]
        assert row.get("images_per_sec") == step["images_per_sec"] < offered, row.name  # measured, not offered
        assert "measured_images_per_sec" not in row.info


def test_markdown_prints_na_and_the_offered_rate(tmp_path):
    path = fake_run(tmp_path, "x", 773.0, 64)
    data = json.loads(path.read_text())
    info = data["benchmarks"][0]["extra_info"]
    info.update(rejected=None, lost=None, p50_ms=None, offered_images_per_sec=949)
    path.write_text(json.dumps(data))
    out = report_cli("--markdown", str(path)).stdout
    (row,) = [line for line in out.splitlines() if "test_stream" in line]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[3] == "773 (offered 949)"
    assert cells[5:9] == ["n/a", "30.0", "n/a", "n/a"]  # p50, p99, rejected, lost
    assert "Δ" not in out  # one run: nothing to compare


def test_readme_table_has_no_zeros_for_in_memory_paths_and_shows_offered_rates():
    readme = (ROOT / "README.md").read_text()
    table = re.search(r"<!-- results:begin -->\n(.*?)<!-- results:end -->", readme, re.S)
    if table is None:
        pytest.skip("README.md has no results table")
    lines = table.group(1).splitlines()
    for line in lines:
        if "| memory |" in line or "in-memory" in line or "test_keras_ceiling" in line or "test_cpu[" in line:
            assert line.count("| n/a | n/a |") >= 1, line
    sustained = [line for line in lines if "test_spark_sustained_rate" in line]
    assert sustained and all("(offered " in line for line in sustained)


# --------------------------------------------------------------------------- the terminal report


@pytest.mark.parametrize("columns", [80, 100])
def test_terminal_report_fits_the_width_and_shows_names_and_gates(columns):
    files = sorted(map(str, RESULTS.glob("*.json")))
    if not files:
        pytest.skip("no committed runs under benchmarks/results/")
    proc = report_cli(*files, columns=columns)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    too_long = [line for line in out.splitlines() if len(line.encode()) > columns]
    assert not too_long, too_long
    assert out.isascii() and "\x1b" not in out  # piped: plain text, countable by bytes
    for row in committed_rows():  # every full name, uncut, so rows never look identical
        assert row.name in out, row.name
    gated = [g for row in committed_rows() for g in results.gates(row)]
    assert gated
    lines = out.splitlines()
    for g in gated:
        value, floor = re.escape(f"{g.value:.3g}"), re.escape(f"{g.floor:g}")
        shown = re.compile(rf"^\s*\d+\s+{g.name}\s+{value}\s+>= {floor}\s+ok$")
        assert any(shown.match(line) for line in lines), (g, out)


def test_terminal_report_drops_columns_to_the_legend_rather_than_cutting(tmp_path):
    path = fake_run(tmp_path, "x", 1000, 64)
    data = json.loads(path.read_text())
    long_name = "test_stream[resnet20-micro-batch-text-b64-wait20ms]"  # 50 characters: the table could not hold it
    data["benchmarks"][0]["name"] = long_name
    data["benchmarks"][0]["extra_info"]["gates"] = {"microbatch_over_ceiling": {"value": 0.5, "floor": 0.65}}
    path.write_text(json.dumps(data))
    wide = report_cli(str(path), columns=200).stdout
    narrow = report_cli(str(path), columns=60).stdout
    assert all(len(line) <= 60 for line in narrow.splitlines()), narrow
    header = next(line for line in narrow.splitlines() if line.lstrip().startswith("#"))
    assert "model" in next(line for line in wide.splitlines() if line.lstrip().startswith("#"))
    assert "model" not in header and "model resnet20" in narrow  # moved to the legend, not lost
    assert long_name in narrow
    assert re.search(r"microbatch_over_ceiling\s+0\.5\s+>= 0\.65\s+FAILED", narrow), narrow


def test_report_compares_runs_of_the_same_benchmark(tmp_path):
    a, b = fake_run(tmp_path, "b32", 1000, 32), fake_run(tmp_path, "b128", 1500, 128)
    out = report_cli(str(a), str(b), columns=100).stdout
    assert "change" in out and "+50.0%" in out and "base" in out


def _one_error_line(proc: subprocess.CompletedProcess, code: int) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr)
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def test_report_says_when_nothing_matched(tmp_path):
    run = fake_run(tmp_path, "x", 1000, 64)
    assert "-k 'no-such-benchmark'" in _one_error_line(report_cli("-k", "no-such-benchmark", str(run)), 1)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert str(empty) in _one_error_line(report_cli(str(empty)), 1)
    blank = tmp_path / "blank.json"
    blank.write_text("{}")
    assert "no benchmarks" in _one_error_line(report_cli(str(blank)), 1)
    assert "no benchmarks" in _one_error_line(report_cli("--markdown", str(blank)), 1)
    assert "no such file" in _one_error_line(report_cli(str(tmp_path / "missing.json")), 2)


def test_report_names_a_bad_file_and_skips_it(tmp_path):
    good = fake_run(tmp_path, "good", 1000, 64)
    bad = tmp_path / "bad.json"
    bad.write_text('{"benchmarks": [')
    proc = report_cli(str(bad), str(good), columns=100)
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("warning: skipping ") and str(bad) in line and "not JSON" in line
    assert "test_stream[resnet20-microbatch-text]" in proc.stdout
    alone = report_cli(str(bad))
    assert alone.returncode == 1 and "error: no benchmarks" in alone.stderr and str(bad) in alone.stderr


@pytest.mark.keras
def test_ci_gate_fails_when_micro_batching_is_turned_off():
    """The regression the gate exists for: ``--batch 1`` makes the micro-batched path per-image again."""
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider",
                           str(ROOT / "benchmarks" / "test_keras_stream.py"),
                           "-k", "speedup_and_ceiling_ratios and legacy", "--batch", "1", "--images", "200"],
                          capture_output=True, text=True, timeout=900, cwd=ROOT,
                          env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")})
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "GATE FAILED: microbatch_over_per_image" in proc.stdout, proc.stdout[-3000:]


def test_the_machine_label_names_the_cpu_flag_that_sets_inference_speed():
    """Two cloud VMs both called "AMD EPYC" (AVX2 only, and AVX-512-BF16) must not read as one machine."""
    from iotbench.results import machine_label

    cpu = {"brand_raw": "AMD EPYC", "count": 2}
    assert machine_label({"cpu": {**cpu, "flags": ["fma", "avx2"]}}) == "2-core AMD EPYC (avx2)"
    zen4 = {**cpu, "flags": ["avx2", "avx512f", "avx512_bf16"]}
    assert machine_label({"cpu": zen4}) == "2-core AMD EPYC (avx512_bf16)"
    assert machine_label({"cpu": cpu}) == "2-core AMD EPYC"


def test_a_round_is_divided_by_the_passes_around_it_and_the_gate_takes_the_median():
    from fixtures.bench import median_index, paired_ratios

    ratios = paired_ratios([90.0, 50.0, 100.0], [100.0, 100.0, 100.0, 100.0])
    assert ratios == [0.9, 0.5, 1.0] and median_index(ratios) == 0  # neither the stalled round nor the lucky one
    assert median_index([3.0, 1.0, 2.0, 4.0]) == 0  # the upper median (3.0) of an even count
    with pytest.raises(ValueError, match="3 rounds need 4 passes"):
        paired_ratios([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])


@pytest.mark.parametrize(("ceiling", "rounds_run"), [(1e12, 4), (1.0, 2)])
def test_a_median_below_its_floor_is_confirmed_by_more_rounds_before_it_fails(ceiling, rounds_run):
    """Real sender, real receiver (null engine); the in-memory pass is scripted so that the median falls
    (a ceiling no stream reaches) or holds: only a fall runs the confirming rounds, and every round still
    has a pass before and after it (the last pass of the first rounds is the first of the confirming)."""
    from fixtures.bench import PairedRounds, StreamCase
    from iotbench.engines.null import NullEngine

    paired = PairedRounds(NullEngine(), StreamCase(images=300, batch=64), lambda: ceiling)
    paired.run(2, floor=0.9, confirm=2)
    assert len(paired.results) == rounds_run and len(paired.passes) == rounds_run + 1
    assert all(r["classified"] == 300 for r in paired.results)
    assert (paired.ratio < 0.9) == (rounds_run == 4)
