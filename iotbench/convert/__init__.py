"""Converters: a trained model rewritten for another runtime, checked against the original before it is saved.

- :mod:`~iotbench.convert.bigdl_cnn`: the Keras CNN as a BigDL Keras-API twin (``iotbench convert cnn``);
- :mod:`~iotbench.convert.bigdl_resnet`: a Keras ResNet20 as a BigDL graph for the JVM (``iotbench convert resnet20``);
- :mod:`~iotbench.convert.bigdl08`: the original's BigDL 0.8 model into BigDL 2.4 (``iotbench convert import-bigdl08``,
  also ``iotbench scala import-bigdl08``).

Each one predicts the test set with both models and refuses to save when the accuracies differ by more than
:data:`TOLERANCE`, and prints a progress line per long pass (they take minutes on two cores).
"""

from __future__ import annotations

import sys

#: Largest accepted accuracy difference between a converted model and its source (0.5 point).
TOLERANCE = 0.005


def progress(line: str) -> None:
    """A converter's progress line (stderr, so that stdout keeps the card)."""
    print(line, file=sys.stderr, flush=True)


def run_module(module, argv: list[str] | None = None) -> int:
    """``python -m iotbench.convert.NAME``: the module's ``configure`` and ``run`` behind its own parser."""
    import argparse

    name = module.__spec__.name if module.__spec__ else module.__name__  # "__main__" under python -m
    p = argparse.ArgumentParser(prog=f"python -m {name}", description=module.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    module.configure(p)
    return module.run(p.parse_args(argv))
