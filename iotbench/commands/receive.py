"""What every streaming classifier command shares: input options, the main loop, the summary, the exit status.

``iotbench infer null|keras`` (and ``infer_cifar``) call :func:`run_stream_classifier` with their
engine; the engine knows nothing of sockets, and this module nothing of models beyond the input
transform an engine declares (to catch a ``%f`` stream sent on the wrong scale).
"""

from __future__ import annotations

import argparse

from iotbench import metrics, receiver, report
from iotbench.progress import Progress
from iotbench.receiver import parse_endpoint
from iotbench.report import log


def add_receiver_arguments(p: argparse.ArgumentParser, batch: int = 64) -> None:
    """Options every streaming classifier shares: input, batching, reporting."""
    src = p.add_mutually_exclusive_group()
    src.add_argument("--listen", metavar="[HOST:]PORT",
                     help="accept the sender on PORT instead of reading stdin; HOST defaults to 127.0.0.1, "
                          "use 0.0.0.0 to accept senders on other machines")
    src.add_argument("--connect", metavar="HOST:PORT", help="connect to a sender listening on HOST:PORT")
    p.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="with --connect: how long to retry while the sender starts")
    p.add_argument("--idle-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="a stream silent this long is treated as cut (and a client that connects but sends "
                        "nothing this long is dropped); 0 = wait forever")
    p.add_argument("-b", "--batch", type=int, default=batch,
                   help="images per inference call; 1 = the original's one predict per image")
    p.add_argument("--max-wait-ms", type=float, default=20.0,
                   help="a partial batch is classified once its oldest image waited this long")
    p.add_argument("--queue-depth", type=int, default=4,
                   help="decoded blocks buffered between reader and engine (a batch of text lines, or the "
                        "whole binary frames of one read)")
    p.add_argument("-r", "--reportingInterval", dest="reporting_interval", type=int, default=None, metavar="N",
                   help="print a progress line every N images classified, as the original did (here -r is an "
                        "interval in images; for spark-stream and scala-stream -r is seconds). Without it: one "
                        "live line on a terminal, a line every 5 s in a pipe")
    p.add_argument("--strict-input", action="store_true",
                   help="a %%f stream on another scale than the model expects (-s missing or extra) is an error, "
                        "not a warning")
    p.add_argument("--json", metavar="FILE", help="also write the run's summary as JSON")


def open_receiver_input(args: argparse.Namespace) -> receiver.Input:
    if args.listen is not None:
        host, port = parse_endpoint(args.listen)
        log(f"Waiting for the sender on {host}:{port}")
        return receiver.listen_input(port, host=host, first_byte_timeout_s=args.idle_timeout or None)
    if args.connect:
        host, port = parse_endpoint(args.connect)
        return receiver.connect_input(host, port, retry_s=args.connect_timeout)
    return receiver.stdin_input()


def run_stream_classifier(args: argparse.Namespace, engine, extra: dict | None = None) -> int:
    """Shared main loop of the streaming classifiers: warm up, announce, receive, report, exit status.

    The status is :func:`iotbench.metrics.exit_status` of the summary (0 only when the books close and
    something was classified); an interrupted run prints what it did so far and exits 130.
    """
    engine.warmup()
    if not args.connect:
        print("Start send program", flush=True)  # the original's cue to start the sender
    if args.batch < 1:
        raise ValueError("-b/--batch must be at least 1")
    try:
        source = open_receiver_input(args)
    except KeyboardInterrupt:
        return metrics.EXIT_INTERRUPTED
    progress = Progress(every_images=args.reporting_interval, scored=getattr(engine, "name", "") != "null")
    config = receiver.ReceiveConfig(
        batch=args.batch, max_wait_ms=args.max_wait_ms, queue_depth=args.queue_depth,
        progress_every=progress.call_every_images, idle_timeout_s=args.idle_timeout or None,
        expected_transform=getattr(engine, "transform", None), strict_input=args.strict_input)
    try:
        result = receiver.receive(source, engine, config, progress=progress)
    finally:
        progress.close()
    summary = result.summary()
    print(report.inferenced_line(summary), flush=True)
    print(report.extra_line(summary), flush=True)
    status, reason = metrics.exit_status(summary)
    if reason:
        log(reason)
    if args.json:
        report.write_json(args.json, {"engine": engine.name, "model": engine.model, "batch": args.batch,
                                      **(extra or {}), **summary, "exit_status": status,
                                      "machine": report.machine()})
    return status
