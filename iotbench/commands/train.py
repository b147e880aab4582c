"""Train a CIFAR-10 model with our recipe and write it, its card and its sha256 under models/.

    iotbench train cnn --epochs 24
    iotbench train resnet20 --epochs 30 --resume      # continue an interrupted run (or warm-start a finished one)

The same options as python -m iotbench.models.train; see models/MODELS.md for the recipes.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    from iotbench.models import train

    train.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from iotbench.models import train

    return train.run(args)
