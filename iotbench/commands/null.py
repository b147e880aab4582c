"""Receive and decode a stream without classifying it: the transport ceiling."""

from __future__ import annotations

import argparse

from iotbench.commands.receive import add_receiver_arguments, run_stream_classifier
from iotbench.engines.registry import create


def configure(parser: argparse.ArgumentParser) -> None:
    add_receiver_arguments(parser, batch=256)


def run(args: argparse.Namespace) -> int:
    return run_stream_classifier(args, create("null"))
