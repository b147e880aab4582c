"""Wire formats: how many CIFAR-10 lines per second one core decodes and encodes.

The original receiver parsed with ``[float(x) for x in line.split()]``; ``np.fromstring``
is the obvious improvement; ``wire.decode_lines`` is ours (vectorised over a block).  All
three run here on the same real images so the ratio is meaningful on any machine.
"""

from __future__ import annotations

import numpy as np
import pytest

from iotbench import wire
from iotbench.data import cifar10

BLOCK = 256
FORMATS = {"float-mean": ("%f", True), "float": ("%f", False), "int": ("%d", False)}


def _lines(cifar_test, name: str) -> list[bytes]:
    fmt, subtract = FORMATS[name]
    images = cifar_test.images[:BLOCK]
    values = images if fmt == "%d" else images.astype("float32") / 255 - (cifar10.pixel_mean() if subtract else 0)
    return [wire.encode_v1(int(label), img, fmt)[:-1] for label, img in zip(cifar_test.labels[:BLOCK], values)]


def _original(lines):
    return [[float(x) for x in line[1:].split()] for line in lines]


def _fromstring(lines):
    return [np.fromstring(line[1:], dtype=np.float32, sep=" ") for line in lines]


DECODERS = {"original-float": _original, "np.fromstring": _fromstring, "iotbench": wire.decode_lines}


@pytest.mark.parametrize("decoder", list(DECODERS))
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_decode(benchmark, cifar_test, fmt, decoder):
    lines = _lines(cifar_test, fmt)
    result = benchmark.pedantic(DECODERS[decoder], args=(lines,), rounds=5, warmup_rounds=1)
    rate = BLOCK / benchmark.stats.stats.median
    rejected = len(result.rejected) if decoder == "iotbench" else None  # the others do not say
    benchmark.extra_info.update(images=BLOCK, images_per_sec=round(rate, 1), accuracy=None, p50_ms=None,
                                p99_ms=None, rejected=rejected, lost=None, engine=f"decode:{decoder}", model="-",
                                batch=BLOCK, wire=f"v1 {FORMATS[fmt][0]}{' -s' if FORMATS[fmt][1] else ''}")


@pytest.mark.parametrize("fmt", ["%f", "%d"], ids=["float", "int"])
def test_encode(benchmark, cifar_test, fmt):
    images = cifar_test.images[:BLOCK]
    values = images if fmt == "%d" else images.astype("float32") / 255
    labels = cifar_test.labels[:BLOCK]
    benchmark.pedantic(lambda: [wire.encode_v1(int(lb), im, fmt) for lb, im in zip(labels, values)],
                       rounds=3, warmup_rounds=1)
    benchmark.extra_info.update(images=BLOCK, images_per_sec=round(BLOCK / benchmark.stats.stats.median, 1),
                                accuracy=None, p50_ms=None, p99_ms=None, rejected=None, lost=None,
                                engine="encode", model="-", batch=BLOCK, wire=f"v1 {fmt}")


@pytest.mark.parametrize("fmt", ["float-mean", "int"])
def test_decode_speedup_gate(benchmark, cifar_test, fmt):
    """Gate: our block decoder ÷ ``np.fromstring`` per line, both timed in this test (best of 5)."""
    import time

    from fixtures.bench import assert_ratio

    lines = _lines(cifar_test, fmt)

    def best(fn) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            fn(lines)
            times.append(time.perf_counter() - start)
        return min(times)

    baseline = best(_fromstring)
    decoded = benchmark.pedantic(wire.decode_lines, args=(lines,), rounds=5, warmup_rounds=1)
    ours = benchmark.stats.stats.min
    assert len(decoded) == BLOCK and decoded.rejected == []
    benchmark.extra_info.update(images=BLOCK, images_per_sec=round(BLOCK / ours, 1), accuracy=None, p50_ms=None,
                                p99_ms=None, rejected=0, lost=None, engine="decode:iotbench", model="-", batch=BLOCK,
                                wire=f"v1 {FORMATS[fmt][0]}", fromstring_images_per_sec=round(BLOCK / baseline, 1))
    assert_ratio(benchmark, "decode_over_fromstring", baseline / ours, 1.5)
