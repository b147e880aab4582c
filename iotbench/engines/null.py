"""The ``null`` engine: classifies nothing, so a run measures the transport alone.

Like MLPerf submitters timing the harness with a fake model, it gives the ceiling that
the sender, the wire format and the receiver allow; an engine's figure divided by this
one tells how much of the budget the model takes.
"""

from __future__ import annotations

import numpy as np

from iotbench.wire import Decoded


class NullEngine:
    name = "null"
    model = "-"
    batch = 0  # takes each block whole, whatever its size

    def describe(self) -> str:
        return "null: classifies nothing (the transport's ceiling)"

    def warmup(self) -> None:
        pass

    def predict(self, batch: Decoded) -> np.ndarray | None:
        return None
