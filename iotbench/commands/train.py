"""Train a CIFAR-10 model with our recipe (``iotbench train cnn|resnet20 --epochs N [--resume]``).

Arguments are those of ``python -m iotbench.models.train``; run ``iotbench train -- --help`` to see them.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("args", nargs=argparse.REMAINDER,
                        help="model name (cnn | resnet20) and training options, e.g. cnn --epochs 24 --resume")


def run(args: argparse.Namespace) -> int:
    from iotbench.models import train

    forwarded = [a for a in args.args if a != "--"]
    return int(train.main(forwarded) or 0)
