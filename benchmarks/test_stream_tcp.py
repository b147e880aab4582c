"""Sender → TCP → receiver at max rate with the ``null`` engine: the transport ceiling per wire format.

Every classifier path's streamed figure is bounded by this one; dividing by it tells how
much of the budget the model takes.
"""

from __future__ import annotations

import pytest

from fixtures.bench import StreamCase
from iotbench.engines.registry import create

WIRES = {"v1-float": ("%f", False), "v2-int": ("%d", True), "binary": ("binary", False)}


@pytest.mark.parametrize("wire", list(WIRES))
def test_tcp_stream_null(stream_benchmark, sizes, wire):
    fmt, v2 = WIRES[wire]
    case = StreamCase(images=sizes.images, fmt=fmt, v2=v2, batch=256)
    summary = stream_benchmark(create("null"), case)
    assert summary["received"] == sizes.images
    if summary["lost"] is None:  # v1: no sequence numbers, so the sender's count is the only check of loss
        assert summary["classified"] + summary["rejected"] == summary["sender"]["sent"]
    else:
        assert summary["classified"] + summary["rejected"] + summary["lost"] == summary["sender"]["sent"]
