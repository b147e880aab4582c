"""Spark max throughput: classify CIFAR-10 from memory for a fixed duration (BigDL or Spark-native engine).

Examples:
  iotbench infer spark-max --engine bigdl --duration 30
  iotbench infer spark-max --engine native -m models/cnn.keras --master spark://127.0.0.1:7077
  iotbench infer spark-max --engine native --runtime onnxruntime --precision int8 --duration 30
  infer_cifar_max --modelDefsPath models/bigdl_cnn.bigdl --modelWeightsPath models/bigdl_cnn.bin --duration 60
"""

from __future__ import annotations

import argparse

from iotbench.commands.spark_options import (
    add_spark_arguments,
    check_model_options,
    jvm_errors,
    loading_line,
    lost_executors,
    make_classifier,
    runtime_words,
    settings,
)


def configure(parser: argparse.ArgumentParser) -> None:
    add_spark_arguments(parser)
    add_max_arguments(parser)


def add_max_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", "--duration", type=float, default=10.0, help="seconds to keep inferring")
    parser.add_argument("--dataset", choices=("test", "train"), default="test",
                        help="CIFAR-10 split to infer (the original used train, which its model was trained on)")
    parser.add_argument("--images", type=int, default=None, help="use only the first N images of the split "
                        "(default: all)")
    parser.add_argument("--partitions", type=int, default=None, help="partitions (default: the master's parallelism)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations before the clock starts")


def configure_compat(parser: argparse.ArgumentParser) -> None:
    """infer_cifar_max -md DEFS -mw WEIGHTS [-d SECONDS]: the original's flags (BigDL engine)."""
    add_spark_arguments(parser, compat=True)
    add_max_arguments(parser)


def make_engine(args: argparse.Namespace):
    from iotbench.engines.registry import create

    return create(f"spark-{args.engine}-max", make_classifier(args))


def run(args: argparse.Namespace) -> int:
    from iotbench import report
    from iotbench.data import cifar10
    from iotbench.engines.spark_max import run_max
    from iotbench.spark import context as spark_context

    check_model_options(args)
    spark_context.check_master(args.master)
    engine = make_engine(args)
    split = cifar10.load(args.dataset)
    images, labels = split.images[: args.images], split.labels[: args.images]
    with jvm_errors("Spark failed"):
        sc = spark_context.start(settings(args, "infer_cifar_max"))
        try:
            print(f"\n{loading_line(args)}", flush=True)
            result = run_max(
                engine, sc, images, labels, args.duration, dataset=args.dataset, partitions=args.partitions,
                warmup=args.warmup,
                on_start=lambda: print(f"{report.timestamp(True)}: Running inference loop for {args.duration:g} "
                                       f"seconds on the {args.dataset} set ({len(labels)} images)", flush=True),
                on_iteration=lambda it: print(
                    f"{report.timestamp(True)}: Iteration {it.index}: {it.images} images inferred. "
                    f"Correct predictions: {it.correct}  Pct correct: {it.correct / max(it.images, 1):.4f}",
                    flush=True),
            )
        finally:
            spark_context.stop()
    print(f"{report.timestamp(True)}: Test completion: {result.images} images inferred in {result.elapsed_s:.1f} sec "
          f"or {result.images_per_sec:.1f} images/second", flush=True)
    print(summary_line(result.summary()), flush=True)
    if args.json:
        report.write_json(args.json, {**result.summary(), "machine": report.machine()})
    return 0


def summary_line(s: dict) -> str:
    acc = "n/a" if s["accuracy"] is None else f"{100 * s['accuracy']:.2f}%"
    return (f"Summary: engine {s['engine']}{runtime_words(s)}, model {s['model']}, master {s['master']} "
            f"({s['partitions']} partitions), {s['dataset']} set: {s['classified']} images in {s['elapsed_s']:.1f} s "
            f"= {s['images_per_sec']:.1f} images/second over {s['iterations']} iterations, accuracy {acc}"
            f"{lost_executors(s)}")
