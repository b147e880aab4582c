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
import time
from collections.abc import Sequence

from iotbench import sender
from iotbench.report import log

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


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


# --------------------------------------------------------------------------- send


def add_send_arguments(p: argparse.ArgumentParser, fmt: str = "%f", pause: float = 0.0) -> None:
    p.add_argument("-i", "--imagesPerSec", "--rate", dest="rate", type=float, default=10.0,
                   help="images per second to send (mean rate)")
    p.add_argument("-t", "--totalImages", "--total", dest="total", type=int, default=100,
                   help="total number of images to send (the test set is cycled)")
    p.add_argument("-s", "--subtractMean", dest="subtract_mean", action="store_true",
                   help="subtract the training-set per-pixel mean (%%f only; use for ResNet models)")
    p.add_argument("--arrival", choices=sender.ARRIVALS, default="lognormal",
                   help="inter-arrival process; 'max' sends as fast as the receiver reads")
    p.add_argument("--format", dest="fmt", choices=sender.FORMATS, default=fmt,
                   help="payload: %%f floats in [0,1] (Keras edge), %%d integers 0-255 (streaming), "
                        "binary frames (fast path), scala (label,v1,... as the Scala sender)")
    p.add_argument("--v2", action="store_true",
                   help="prefix each line with a sequence number and send time (latency, loss detection)")
    p.add_argument("--split", choices=("test", "train"), default="test", help="CIFAR-10 split to send")
    p.add_argument("--seed", type=int, default=0, help="seed of the inter-arrival schedule")
    p.add_argument("--pause", type=float, default=pause, help="seconds to wait before sending (stdout mode)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--listen", type=int, metavar="PORT",
                     help="serve the stream to the client connecting to PORT (what `nc -lk PORT` did); 0 = any")
    out.add_argument("--connect", metavar="HOST:PORT", help="connect to a listening receiver and stream to it")


def run_send(args: argparse.Namespace) -> int:
    config = sender.SendConfig(
        total=args.total, rate=args.rate, arrival="max" if args.rate == 0 else args.arrival, fmt=args.fmt,
        v2=args.v2, subtract_mean=args.subtract_mean, split=args.split, seed=args.seed,
    )
    if config.subtract_mean and config.fmt != "%f":
        raise SystemExit("error: -s/--subtractMean applies to the %f format only")
    log("Loading and normalizing the CIFAR10 data")
    source = sender.ImageSource(config)  # load (and fail on missing data) before announcing anything
    source.preencode(config.total)
    if args.pause and not (args.listen is not None or args.connect):
        log(f"Pausing {args.pause:g} seconds - start the receiver")
        time.sleep(args.pause)
    log(sender.describe(config))
    if args.listen is not None:
        result = sender.serve(config, args.listen, source=source)
    elif args.connect:
        host, _, port = args.connect.rpartition(":")
        result = sender.to_connection(config, host or "127.0.0.1", int(port), source=source)
    else:
        result = sender.to_stdout(config, source=source)
    state = "Image stream interrupted" if result.interrupted else "Image stream ended"
    log(f"{state}: sent {result.sent} images in {result.elapsed_s:.1f} seconds or {result.rate:.1f} images/second")
    if result.interrupted:
        _silence_stdout()
    return 0 if not result.interrupted else 1


def _silence_stdout() -> None:
    """After a broken pipe, keep Python's exit-time flush of stdout from printing a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


# --------------------------------------------------------------------------- receiver options


def add_receiver_arguments(p: argparse.ArgumentParser, batch: int = 64) -> None:
    """Options every streaming classifier shares: input, batching, reporting."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--listen", type=int, metavar="PORT", help="accept the sender on PORT (default: read stdin)")
    src.add_argument("--connect", metavar="HOST:PORT", help="connect to a sender listening on HOST:PORT")
    p.add_argument("-b", "--batch", type=int, default=batch,
                   help="images per inference call; 1 = the original's one predict per image")
    p.add_argument("--max-wait-ms", type=float, default=20.0,
                   help="a partial batch is classified once its oldest image waited this long")
    p.add_argument("--queue-depth", type=int, default=4, help="decoded batches buffered between reader and engine")
    p.add_argument("-r", "--reportingInterval", dest="reporting_interval", type=int, default=100,
                   help="print progress every N images classified")
    p.add_argument("--json", metavar="FILE", help="also write the run's summary as JSON")


def open_receiver_input(args: argparse.Namespace):
    from iotbench import receiver

    if args.listen is not None:
        log(f"Waiting for the sender on 127.0.0.1:{args.listen}")
        return receiver.listen_input(args.listen)
    if args.connect:
        host, _, port = args.connect.rpartition(":")
        return receiver.connect_input(host or "127.0.0.1", int(port))
    return receiver.stdin_input()


def run_stream_classifier(args: argparse.Namespace, engine, extra: dict | None = None) -> int:
    """Shared main loop of the streaming classifiers: warm up, announce, receive, report."""
    from iotbench import receiver, report

    engine.warmup()
    print("Start send program", flush=True)
    source = open_receiver_input(args)
    config = receiver.ReceiveConfig(batch=args.batch, max_wait_ms=args.max_wait_ms,
                                    queue_depth=args.queue_depth, progress_every=args.reporting_interval)
    result = receiver.receive(source, engine, config, progress=lambda n: log(f"{n} images classified"))
    summary = result.summary()
    if not result.ended_cleanly:
        log("Stream ended without its end marker (sender stopped or connection dropped): partial report")
    print(report.inferenced_line(summary), flush=True)
    print(report.extra_line(summary), flush=True)
    if args.json:
        report.write_json(args.json, {"engine": engine.name, "model": engine.model, "batch": args.batch,
                                      **(extra or {}), **summary, "machine": report.machine()})
    return 0


# --------------------------------------------------------------------------- main parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iotbench", formatter_class=_Formatter,
        description="Benchmark deep-learning image classifiers on a stream of IoT images.",
        epilog="Examples:\n"
               "  iotbench send -t 10000 -i 2000 | nc -q1 127.0.0.1 10000\n"
               "  nc -lk 10000 | iotbench infer keras -m models/resnet20.keras\n"
               "  iotbench report benchmarks/results/*.json",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("send", help="stream CIFAR-10 images", formatter_class=_Formatter,
                       description=sender.__doc__)
    add_send_arguments(p)
    p.set_defaults(func=run_send)

    infer = sub.add_parser("infer", help="run a classifier path", formatter_class=_Formatter)
    paths = infer.add_subparsers(dest="path", required=True, metavar="PATH")
    for path, module in INFER_PATHS.items():
        try:
            mod = importlib.import_module(f"iotbench.commands.{module}")
        except ImportError:  # a path whose command module is not installed in this build
            continue
        configure = getattr(mod, f"configure_{path.replace('-', '_')}", None) or mod.configure
        text = configure.__doc__ or mod.__doc__  # a module with several paths documents each configure_*
        doc = (text or "").strip().splitlines()
        pp = paths.add_parser(path, help=doc[0] if doc else path, description=text, formatter_class=_Formatter)
        configure(pp)
        pp.set_defaults(func=getattr(mod, f"run_{path.replace('-', '_')}", None) or mod.run)

    for name, module in (("train", "train"), ("report", "report"), ("scala", "scala_build")):
        try:
            mod = importlib.import_module(f"iotbench.commands.{module}")
        except ImportError:
            continue
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
    except (FileNotFoundError, ConnectionError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


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


