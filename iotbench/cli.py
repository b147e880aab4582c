"""Command line: ``iotbench send | infer PATH | train | report | scala``, and the original program names.

Each classifier path lives in its own module under ``iotbench.commands`` with two functions,
``configure(parser)`` and ``run(args) -> int``; this file only wires them into one parser.
The original programs (``send_images_cifar``, ``infer_cifar``, …) are thin aliases at the
bottom that accept the original flags.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from iotbench.commands.send import add_send_arguments, run_send

#: ``iotbench infer <path>`` -> module in iotbench.commands
INFER_PATHS = {
    "null": "null",
    "keras": "keras",
    "spark-max": "spark_max",
    "spark-stream": "spark_stream",
    "torch-imagenet": "torch_imagenet",
    "scala-stream": "scala",
    "scala-imagenet-max": "scala",
}


SEND_DESCRIPTION = """Stream CIFAR-10 images at a requested rate: to stdout (pipe it into nc), to the client that
connects (--listen, what `nc -lk PORT` did) or to a listening receiver (--connect).

Each image has a due time on a schedule drawn up front, so the achieved rate matches the requested one;
the last line says how many images were sent, and a warning says so when the receiver did not keep up.
Formats: %f floats (the Keras edge classifier; -s for ResNet models), %d integers (Spark and Scala),
binary frames (the fast path); --v2 adds a sequence number and send time to each text line."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows a flag's default once: not for required flags, flags without one, or help that already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (action.required or default in (None, False, argparse.SUPPRESS) or "default" in text
                or "%(default)" in text or not action.option_strings):
            return text
        shown = ", ".join(str(v) for v in default) if isinstance(default, list | tuple) else default
        return f"{text} (default: {str(shown).replace('%', '%%')})"


# --------------------------------------------------------------------------- main parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iotbench", formatter_class=_Formatter,
        description="Benchmark deep-learning image classifiers on a stream of IoT images.",
        epilog="Examples:\n"
               "  iotbench send -s -t 2000 -i 1000 --listen 10000 &\n"
               "  iotbench infer keras -m models/resnet20.keras --connect 127.0.0.1:10000\n"
               "  iotbench send -t 2000 --arrival max | iotbench infer keras -m models/cnn.keras\n"
               "  iotbench report benchmarks/results/*.json\n"
               "(-s subtracts the training mean: ResNet models expect it, the CNN does not.)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("send", help="stream CIFAR-10 images", formatter_class=_Formatter, description=SEND_DESCRIPTION)
    add_send_arguments(p)
    p.set_defaults(func=run_send)

    infer = sub.add_parser("infer", help="run a classifier path", formatter_class=_Formatter)
    paths = infer.add_subparsers(dest="path", required=True, metavar="PATH")
    for path, module in INFER_PATHS.items():
        mod = importlib.import_module(f"iotbench.commands.{module}")  # a broken import is a bug: let it show
        configure = getattr(mod, f"configure_{path.replace('-', '_')}", None) or mod.configure
        text = configure.__doc__ or mod.__doc__  # a module with several paths documents each configure_*
        doc = (text or "").strip().splitlines()
        pp = paths.add_parser(path, help=doc[0] if doc else path, description=text, formatter_class=_Formatter)
        configure(pp)
        pp.set_defaults(func=getattr(mod, f"run_{path.replace('-', '_')}", None) or mod.run)

    for name, module in (("train", "train"), ("report", "report"), ("scala", "scala_build"), ("loadgen", "loadgen"),
                         ("engines", "engines"), ("convert", "convert")):
        mod = importlib.import_module(f"iotbench.commands.{module}")
        doc = (mod.__doc__ or "").strip().splitlines()
        pp = sub.add_parser(name, help=doc[0] if doc else name, description=mod.__doc__, formatter_class=_Formatter)
        mod.configure(pp)
        pp.set_defaults(func=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return _call(args.func, args)


def _call(func, args: argparse.Namespace) -> int:
    """Run a command; expected failures become one clear line, not a traceback."""
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, ConnectionError, ValueError, RuntimeError) as err:
        if os.environ.get("IOTBENCH_DEBUG"):
            raise
        print(f"error: {_one_line(err)}", file=sys.stderr)
        return 2


def _one_line(err: BaseException) -> str:
    """The first line of an error's message (Py4J and engines raise pages), or its type when it has none."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _alias(prog: str, description: str, configure, run, argv: Sequence[str] | None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=description, formatter_class=_Formatter)
    configure(parser)
    args = parser.parse_args(argv)
    return _call(run, args)


# --------------------------------------------------------------------------- the original program names


def send_images_cifar(argv: Sequence[str] | None = None) -> int:
    """``send_images_cifar [-s] [-i N] [-t N] | nc HOST PORT`` — %f floats for the Keras edge classifier."""
    return _alias("send_images_cifar", send_images_cifar.__doc__, add_send_arguments, run_send, argv)


def send_images_cifar_stream(argv: Sequence[str] | None = None) -> int:
    """``send_images_cifar_stream [-i N] [-t N] | nc -lk PORT`` — %d integers for Spark Streaming."""
    return _alias("send_images_cifar_stream", send_images_cifar_stream.__doc__,
                  lambda p: add_send_arguments(p, fmt="%d", pause=15.0), run_send, argv)


def _command_alias(prog: str, module: str, configure: str, run: str, argv: Sequence[str] | None) -> int:
    mod = importlib.import_module(f"iotbench.commands.{module}")
    return _alias(prog, mod.__doc__, getattr(mod, configure), getattr(mod, run), argv)


def infer_cifar(argv: Sequence[str] | None = None) -> int:
    """``nc -lk PORT | infer_cifar -m MODEL [-r N]`` — the Keras edge classifier."""
    return _command_alias("infer_cifar", "keras", "configure_compat", "run", argv)


def infer_cifar_max(argv: Sequence[str] | None = None) -> int:
    return _command_alias("infer_cifar_max", "spark_max", "configure_compat", "run", argv)


def infer_cifar_stream(argv: Sequence[str] | None = None) -> int:
    return _command_alias("infer_cifar_stream", "spark_stream", "configure_compat", "run", argv)


def infer_imagenet_pytorch_max(argv: Sequence[str] | None = None) -> int:
    return _command_alias("infer_imagenet_pytorch_max", "torch_imagenet", "configure_compat", "run", argv)


if __name__ == "__main__":
    sys.exit(main())


