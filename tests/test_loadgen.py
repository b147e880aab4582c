"""Our harness against MLPerf LoadGen, on one engine in one run (the Keras CNN, models/cnn.keras).

What is compared, honestly:

* **Offline**: LoadGen issues every sample at once into :class:`iotbench.loadgen.BatchingSUT` (blocks
  of up to 64) for 4 s; its samples/s must be within 15% of our in-memory ceiling (``engine.predict``
  on preloaded blocks of 64, mean rate over 4 s), measured just before and just after it in the same
  test (their mean: neighbours' load moves both by tens of percent within seconds on this machine).
  Up to three attempts: a burst of someone else's job during one window misses once; a harness that
  really disagrees misses all three (all are in the failure message).
* **Server**: our capacity search (:func:`iotbench.capacity.search`, in-process Poisson arrivals into
  the same SUT, p99 ≤ 100 ms, steps of 5 s (at least 600 queries), 10% resolution) gives R; LoadGen's
  Server scenario at **0.9 R** (R less the search's resolution, see ``SERVER_FRACTIONS``), for the
  same 5 s and the same 100 ms bound, must be VALID, or else at **0.8 R** (one step lower: LoadGen's
  issue thread costs Python time per query on the same two cores, so near the knee its tail sits a
  little above ours; a CI run saw p99 112 ms from LoadGen against our 68 ms at the same 0.9 R).
  Both harnesses take their p99 over the same number of queries at the same rate.  On a shared
  2-core machine the tail can still move between runs (another job's burst); so when LoadGen says
  INVALID at both rates, our harness runs the lower rate for the same 5 s at once: if it breaks the
  bound too, the harnesses agree and the machine moved (skip, with both figures); if it holds the
  bound, the harnesses disagree and the test fails.
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.loadgen, pytest.mark.keras]

BOUND_MS = 100.0
#: LoadGen's Server run is offered our capacity less the search's resolution (0.9 × R), then one step lower
#: (0.8 × R): R is only known to within 10% (it passed, 1.1 R failed), and at R itself the run sits on the knee,
#: where a few percent more work per query decides.  LoadGen's issue thread enters Python for every query; at
#: ~2,800 queries/s on the Zen 4 VM that tipped it over (p99 556 ms against our 61 ms at the same R, 2 runs of 3),
#: while at ~1,000/s on the AVX2 VM R itself passed, and a 2-core CI machine at ~1,700/s missed 0.9 R by 12 ms.
SERVER_FRACTIONS = (0.9, 0.8)
OFFLINE_TOLERANCE = 0.15
OFFLINE_ATTEMPTS = 3
SERVER_SECONDS = 5  # LoadGen Server's duration = each of our capacity steps' (the same tail sample size)


@pytest.fixture(scope="module")
def setup(cifar_test):
    pytest.importorskip("mlperf_loadgen", reason="MLPerf LoadGen not installed (pip install mlcommons-loadgen)")
    from fixtures.data import MODELS
    from iotbench.engines.keras_edge import KerasEdgeEngine

    path = MODELS / "cnn.keras"
    if not path.exists():
        pytest.skip(f"model file {path} is not there")
    engine = KerasEdgeEngine(path, batch=64)
    engine.warmup()
    n = 1024
    return engine, cifar_test.images[:n], cifar_test.labels[:n].astype("int64")


@pytest.mark.serial  # a capacity search and a p99 bound: under xdist the other worker's test shares the two cores
def test_loadgen_agrees_with_our_ceiling_and_capacity(setup):
    from iotbench import capacity, loadgen

    engine, images, labels = setup
    attempts = []
    for _ in range(OFFLINE_ATTEMPTS):  # a neighbour's burst during one of the three windows shows as a miss
        before = loadgen.ceiling(engine, images, labels, 64, seconds=4)
        offline = loadgen.run_loadgen(engine, images, labels, scenario="offline", batch=64,
                                      expected_qps=1.5 * before, duration_ms=4000)
        after = loadgen.ceiling(engine, images, labels, 64, seconds=4)
        ours, rate = (before + after) / 2, offline.summary["samples_per_sec"]
        assert rate is not None, offline.text
        attempts.append(f"LoadGen {rate:.0f}/s vs ceiling {ours:.0f} (before {before:.0f}, after {after:.0f})")
        if abs(rate / ours - 1) <= OFFLINE_TOLERANCE:
            break
    else:
        raise AssertionError(f"LoadGen Offline not within {OFFLINE_TOLERANCE:.0%} of our ceiling: {attempts}")
    assert offline.accuracy is not None and offline.accuracy > 0.5  # the SUT really classified

    def run_at(r: float) -> dict:
        return loadgen.inprocess_run(engine, images, labels, 64, r, max(600, int(r * SERVER_SECONDS)), seed=int(r))

    steps = capacity.search(run_at, round(ours / 16), capacity.p99_judge(BOUND_MS), factor=2, resolution=0.1)
    found = capacity.capacity(steps)
    assert found is not None, [s.brief() for s in steps]
    tries = []
    for fraction in SERVER_FRACTIONS:
        server = loadgen.run_loadgen(engine, images, labels, scenario="server", batch=64,
                                     target_qps=fraction * found, latency_ms=BOUND_MS,
                                     duration_ms=int(SERVER_SECONDS * 1000))
        s = server.summary
        tries.append(f"{fraction} × {found:g}/s: {s['result']}, p99 {s['p99_ms']} ms")
        if s["valid"] is True:
            break
    else:  # the same (lower) rate, the same duration, through our harness, right after
        again = loadgen.inprocess_run(engine, images, labels, 64, fraction * found,
                                      int(fraction * found * SERVER_SECONDS), seed=1)
        if again["p99_ms"] is not None and again["p99_ms"] > BOUND_MS:
            pytest.skip(f"the machine's load moved under the test: LoadGen Server {tries} and our own run at "
                        f"{fraction * found:g}/s also broke the bound (p99 {again['p99_ms']} ms): the harnesses "
                        f"agree, the capacity found earlier no longer holds")
        raise AssertionError(f"LoadGen Server below our capacity {found:g}/s: {tries} (bound {BOUND_MS:g} ms), "
                             f"while our run at {fraction * found:g}/s had p99 {again['p99_ms']} ms; "
                             f"steps {[x.brief() for x in steps]}")
    assert s["p99_ms"] <= BOUND_MS


def test_summary_parsing_reads_rates_percentiles_and_the_verdict():
    from iotbench.loadgen import parse_summary

    text = ("================================================\nMLPerf Results Summary\n"
            "Scenario : Server\nMode     : PerformanceOnly\nCompleted samples per second    : 412.37\n"
            "Result is : INVALID\n  Performance constraints satisfied : NO\n"
            "99.00 percentile latency (ns)   : 123456789\n50.00 percentile latency (ns)   : 2000000\n")
    s = parse_summary(text)
    assert s["completed_samples_per_sec"] == 412.37 and s["samples_per_sec"] is None
    assert s["p99_ms"] == 123.457 and s["p50_ms"] == 2.0 and s["p90_ms"] is None
    assert s["valid"] is False and s["result"] == "INVALID"
    assert parse_summary("")["valid"] is None
