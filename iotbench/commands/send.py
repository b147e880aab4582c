"""``iotbench send`` / ``send_images_cifar``: the sender's options and main (stdout, ``--listen``, ``--connect``)."""

from __future__ import annotations

import argparse
import os
import sys
import time

from iotbench import sender
from iotbench.receiver import parse_endpoint
from iotbench.report import log


def add_send_arguments(p: argparse.ArgumentParser, fmt: str = "%f", pause: float = 0.0) -> None:
    p.add_argument("-i", "--imagesPerSec", "--rate", dest="rate", type=float, default=10.0,
                   help="images per second to send (mean rate; 0 = as fast as the receiver reads). "
                        "Here -i is a rate; for the Spark and Scala receivers -i is the sender's host")
    p.add_argument("-t", "--totalImages", "--total", dest="total", type=int, default=100,
                   help="total number of images to send (the test set is cycled)")
    p.add_argument("-s", "--subtractMean", dest="subtract_mean", action="store_true",
                   help="subtract the training-set per-pixel mean (%%f only; use for ResNet models)")
    p.add_argument("--arrival", choices=sender.ARRIVALS, default="lognormal",
                   help="inter-arrival process; 'max' sends as fast as the receiver reads")
    p.add_argument("--format", dest="fmt", choices=sender.FORMATS, default=fmt,
                   help="payload: %%f floats in [0,1] (Keras edge), %%d integers 0-255 (streaming), "
                        "binary frames (fast path; always sequenced), scala (label,v1,... as the Scala sender)")
    p.add_argument("--v2", action="store_true",
                   help="prefix each line with a sequence number and send time (latency, loss detection); "
                        "text formats only")
    p.add_argument("--split", choices=("test", "train"), default="test", help="CIFAR-10 split to send")
    p.add_argument("--seed", type=int, default=0, help="seed of the inter-arrival schedule")
    p.add_argument("--pause", type=float, default=pause, help="seconds to wait before sending (stdout mode)")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="with --connect: how long to retry while the receiver starts")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--listen", metavar="[HOST:]PORT",
                     help="serve the stream to the client connecting to PORT (what `nc -lk PORT` did); PORT 0 = any "
                          "free port; HOST defaults to 127.0.0.1, use 0.0.0.0 to accept other machines")
    out.add_argument("--connect", metavar="HOST:PORT", help="connect to a listening receiver and stream to it")


def config_from(args: argparse.Namespace) -> sender.SendConfig:
    """The sender's configuration from parsed options; ValueError for contradictory combinations."""
    if args.subtract_mean and args.fmt != "%f":
        raise ValueError("-s/--subtractMean applies to the %f format only")
    if args.v2 and args.fmt == "binary":
        raise ValueError("--v2 is for text formats; binary frames always carry a sequence number and send time")
    if args.total < 0:
        raise ValueError("-t/--totalImages must be 0 or more")
    return sender.SendConfig(
        total=args.total, rate=args.rate, arrival="max" if args.rate == 0 else args.arrival, fmt=args.fmt,
        v2=args.v2, subtract_mean=args.subtract_mean, split=args.split, seed=args.seed,
    )


def run_send(args: argparse.Namespace) -> int:
    config = config_from(args)
    listen = parse_endpoint(args.listen) if args.listen is not None else None
    connect = parse_endpoint(args.connect) if args.connect else None
    log("Loading and normalizing the CIFAR10 data")
    source = sender.ImageSource(config)  # load (and fail on missing data) before announcing anything
    source.preencode(config.total)
    if args.pause and not (listen or connect):
        log(f"Pausing {args.pause:g} seconds - start the receiver")
        time.sleep(args.pause)
    log(sender.describe(config))
    if listen:
        result = sender.serve(config, listen[1], host=listen[0], source=source)
    elif connect:
        result = sender.to_connection(config, connect[0], connect[1], retry_s=args.connect_timeout, source=source)
    else:
        result = sender.to_stdout(config, source=source)
    state = "Image stream interrupted" if result.interrupted else "Image stream ended"
    log(f"{state}: sent {result.sent} images in {result.elapsed_s:.1f} seconds or {result.rate:.1f} images/second")
    if warning := sender.behind_schedule(result, config):
        log(f"WARNING: {warning}")
    if result.interrupted:
        print(f"error: {result.reason or 'the stream stopped early'} after {result.sent} of {config.total} images",
              file=sys.stderr)
        _silence_stdout()
        return 1
    return 0


def _silence_stdout() -> None:
    """After a broken pipe, keep Python's exit-time flush of stdout from printing a traceback."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
