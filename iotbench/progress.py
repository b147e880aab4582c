"""Progress of a streaming run, sized for a person: one live line on a terminal, a few plain lines in a pipe.

The original printed a line every ``-r`` images (100 lines per 10,000-image run at its default).
Here, without ``-r``, a terminal shows one line rewritten in place (images, rate, accuracy so far,
rejected) and a pipe or log file gets a plain line every ``every_s`` seconds; ``-r N`` keeps the
original's line every N images for those who parse it.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from iotbench.metrics import RunMetrics
from iotbench.report import log


def progress_text(metrics: RunMetrics, elapsed_s: float, scored: bool = True) -> str:
    """``N images classified, R images/s, accuracy A%, rejected K`` (``n/a`` for what is unknown)."""
    rate = f"{metrics.classified / elapsed_s:.0f} images/s" if elapsed_s > 0 else "n/a images/s"
    acc = "n/a" if metrics.accuracy is None or not scored else f"{100 * metrics.accuracy:.1f}%"
    return f"{metrics.classified} images classified, {rate}, accuracy {acc}, rejected {metrics.rejected_total}"


class Progress:
    """Callable handed to :func:`iotbench.receiver.receive`; call :meth:`close` at the end."""

    def __init__(self, every_images: int | None = None, every_s: float = 5.0, stream: TextIO | None = None,
                 scored: bool = True):
        self.every_images = every_images
        self.every_s = every_s
        self.stream = stream or sys.stderr
        self.scored = scored
        self.start = time.monotonic()
        self.last = self.start
        self.live = None
        self.next_line = every_images or 0
        if every_images is None and self.stream.isatty():
            from rich.console import Console
            from rich.live import Live

            self.live = Live("", console=Console(file=self.stream), refresh_per_second=4, transient=True)
            self.live.start()

    @property
    def call_every_images(self) -> int:
        """How often the receiver should call: every batch for time-based progress, else every N images."""
        return self.every_images or 1

    def __call__(self, metrics: RunMetrics) -> None:
        now = time.monotonic()
        if self.every_images is not None:  # the original's lines, one per multiple of -r crossed
            while self.next_line <= metrics.classified:
                log(f"{self.next_line} images classified")
                self.next_line += self.every_images
            return
        text = progress_text(metrics, now - self.start, self.scored)
        if self.live is not None:
            self.live.update(text)
        elif now - self.last >= self.every_s:
            self.last = now
            log(text)

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
