"""Spark streaming: classify images from a socket, interval by interval (BigDL or Spark-native; DStreams or Structured).

Examples:
  iotbench send --listen 10000 --format %d --v2 --arrival max -t 20000 &
  iotbench infer spark-stream --engine bigdl -i 127.0.0.1 -p 10000 -r 5
  iotbench infer spark-stream --engine native --api structured -p 10000 -r 5
  iotbench infer spark-stream --engine native --runtime openvino --precision int8 --api structured -p 10000 -r 5
  send_images_cifar_stream -i 1000 -t 10000 | nc -lk 10000 &
  infer_cifar_stream -md models/bigdl_cnn.bigdl -mw models/bigdl_cnn.bin -i 127.0.0.1 -p 10000 -r 10

Exit status (as every receiver, see iotbench.metrics.exit_status): 0 when every image is accounted for
and at least one was classified; 3 when the stream went quiet without its end marker (truncated);
4 when sent != classified + rejected + lost; 5 when nothing was classified; 2 for errors.
"""

from __future__ import annotations

import argparse

from iotbench.commands import spark_options as shared


def configure(parser: argparse.ArgumentParser) -> None:
    shared.add_spark_arguments(parser)
    add_stream_arguments(parser)


def add_stream_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api", choices=("dstream", "structured"), default="dstream",
                        help="dstream: socketTextStream + foreachRDD (the original's); "
                             "structured: Structured Streaming socket source + foreachBatch")
    parser.add_argument("-r", "--reportingInterval", dest="interval", type=float, default=10.0,
                        metavar="SECONDS",
                        help="streaming interval, one report line per interval (here -r is seconds; "
                             "in iotbench infer keras -r counts images)")
    parser.add_argument("-i", "--sourceIPAddress", dest="host", default="127.0.0.1",
                        help="address of the listening sender (here -i is a host; in iotbench send -i is the rate)")
    parser.add_argument("-p", "--sourcePort", dest="port", type=int, default=10000,
                        help="port the sender listens on")
    parser.add_argument("--empty-intervals", type=int, default=1,
                        help="stop after this many consecutive empty intervals once images have arrived")
    parser.add_argument("--first-data-timeout", type=float, default=None,
                        help="give up if no image arrives within this many seconds (default: wait)")
    parser.add_argument("--max-rate", type=int, default=None,
                        help="DStreams: spark.streaming.receiver.maxRate (lines/s) to bound the receiver's backlog")


def configure_compat(parser: argparse.ArgumentParser) -> None:
    """infer_cifar_stream -md DEFS -mw WEIGHTS [-r S] [-i HOST] [-p PORT]: the original's flags."""
    shared.add_spark_arguments(parser, compat=True)
    add_stream_arguments(parser)


def make_engine(args: argparse.Namespace):
    from iotbench.engines.registry import create

    return create(f"spark-{args.engine}-stream", shared.make_classifier(args))


def run(args: argparse.Namespace) -> int:
    from iotbench import metrics, report
    from iotbench.engines.spark_stream import StreamConfig
    from iotbench.spark import context as spark_context

    shared.check_model_options(args)
    if args.empty_intervals < 1:
        raise ValueError(f"--empty-intervals {args.empty_intervals}: the stream stops after N >= 1 empty intervals")
    if args.max_rate and args.api != "dstream":
        raise ValueError("--max-rate bounds a DStream receiver; Structured Streaming's socket source has no rate "
                         "limit (use --api dstream, or throttle the sender with iotbench send -i RATE)")
    spark_context.check_master(args.master)
    engine = make_engine(args)
    spark_settings = shared.settings(args, "infer_cifar_stream")
    if args.max_rate:
        spark_settings.conf["spark.streaming.receiver.maxRate"] = str(args.max_rate)
    config = StreamConfig(host=args.host, port=args.port, interval=args.interval, api=args.api,
                          empty_intervals=args.empty_intervals, first_data_timeout=args.first_data_timeout)
    with shared.jvm_errors("Spark failed"):
        result = _stream(args, engine, spark_settings, config)
    summary = result.summary()
    print(f"\n{completion_line(summary)}", flush=True)
    print(report.extra_line(summary), flush=True)
    status, reason = metrics.exit_status(summary)
    if reason:
        report.log(reason)
    if args.json:
        report.write_json(args.json, {**summary, "exit_status": status, "machine": report.machine()})
    return status


def _stream(args: argparse.Namespace, engine, spark_settings, config):
    """Start Spark, classify the stream with the original's console lines, stop Spark; returns the StreamResult."""
    from iotbench import report
    from iotbench.engines.spark_stream import run_stream
    from iotbench.spark import context as spark_context

    sc = spark_context.start(spark_settings)
    try:
        loaded = shared.loading_line(args).replace("Loading trained model from", "Loaded trained model")
        print(f"{report.timestamp(True)}: {loaded}", flush=True)
        result = run_stream(
            engine, sc, config,
            on_start=lambda: print(f"{report.timestamp(True)}: Starting reading streaming data from "
                                   f"{args.host}:{args.port} at interval {args.interval:g} seconds ({args.api})",
                                   flush=True),
            on_interval=lambda it: print(f"{report.timestamp(True)}: Interval {it.index}:  images received="
                                         f"{it.received}   images correctly predicted={it.correct}", flush=True),
            on_empty=lambda: print(f"{report.timestamp(True)}: No images received in interval", flush=True),
            log_rejected=lambda reason, sample: report.log(f"Rejected line ({reason}): {sample[:60]!r}…"),
        )
        print(f"{report.timestamp(True)}: Stopping stream", flush=True)
    finally:
        spark_context.stop()
    return result


def completion_line(s: dict) -> str:
    """The original's final line, with our measured active time instead of its fixed subtractions."""
    pct = "n/a" if s["accuracy"] is None else f"{100 * s['accuracy']:.1f}"
    rate = "n/a" if s["images_per_sec"] is None else f"{s['images_per_sec']:.0f}"
    return (f"{_ts()}: {s['classified']} images received in {s['elapsed_s']:.1f} seconds ({s['intervals']} intervals), "
            f"or {rate} images/second  Correct predictions: {s['correct']}  Pct correct: {pct}"
            f"  [engine {s['engine']}{shared.runtime_words(s)}, {s['api']}, master {s['master']}; "
            f"empty tail {s['empty_tail_s']:.1f} s not counted{shared.lost_executors(s)}]")


def _ts() -> str:
    from iotbench.report import timestamp

    return timestamp(True)
