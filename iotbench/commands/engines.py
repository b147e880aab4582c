"""List every registered engine: its contract, its runtime and whether this machine can run it (and why not).

Nothing heavy is imported: availability is which packages are installed, whether java is on PATH and
whether an NVIDIA driver is loaded.
"""

from __future__ import annotations

import argparse

from iotbench.engines.registry import REGISTRY


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("--available", action="store_true", help="only the engines this machine can run")


def run(args: argparse.Namespace) -> int:
    rows = [("ENGINE", "CONTRACT", "RUNTIME", "AVAILABLE", "WHAT")]
    for e in REGISTRY.values():
        why = e.unavailable()
        if args.available and why:
            continue
        rows.append((e.name, e.contract, e.runtime, "yes" if why is None else f"no: {why}", e.what))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
    return 0
