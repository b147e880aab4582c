"""Spark max throughput: classify CIFAR-10 from memory for a fixed duration (BigDL or Spark-native engine).

Examples:
  iotbench infer spark-max --engine bigdl --duration 30
  iotbench infer spark-max --engine native -m models/cnn.keras --master spark://127.0.0.1:7077
  infer_cifar_max --modelDefsPath models/bigdl_cnn.bigdl --modelWeightsPath models/bigdl_cnn.bin --duration 60
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from iotbench.engines.spark_models import DEFAULT_BIGDL_DEFS, DEFAULT_BIGDL_WEIGHTS, DEFAULT_KERAS_MODEL, ROOT
from iotbench.spark import DEFAULT_MASTER, LOG_LEVELS

ENGINES = ("bigdl", "native")


def _shown(path: Path) -> str:
    """A default model path as help shows it: relative to the repository (where ``models/`` lives)."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def add_spark_arguments(p: argparse.ArgumentParser, compat: bool = False) -> None:
    """Options shared by the Spark paths: engine, master, model files, Spark resources.

    The model options belong to one engine each: ``-md``/``-mw`` to bigdl, ``-m`` to native; giving one
    to the other engine is refused (:func:`check_model_options`).  The original programs (``compat``)
    had no defaults for ``-md``/``-mw``: there they are required with ``--engine bigdl``, and only then.
    """
    p.add_argument("--engine", choices=ENGINES, default="bigdl",
                   help="bigdl: BigDL Keras-API model on RDDs of Samples; native: Keras model in predict_batch_udf")
    p.add_argument("--master", default=DEFAULT_MASTER, help="Spark master URL (local[N] or spark://HOST:PORT)")
    if compat:
        defs_help = "BigDL model definition file; required with --engine bigdl (the default), not used by native"
        weights_help = "BigDL model weights file; required with --engine bigdl (the default), not used by native"
    else:
        defs_help = f"BigDL model definition file, --engine bigdl only (default: {_shown(DEFAULT_BIGDL_DEFS)})"
        weights_help = f"BigDL model weights file, --engine bigdl only (default: {_shown(DEFAULT_BIGDL_WEIGHTS)})"
    p.add_argument("-md", "--modelDefsPath", dest="model_defs", metavar="FILE", help=defs_help)
    p.add_argument("-mw", "--modelWeightsPath", dest="model_weights", metavar="FILE", help=weights_help)
    p.add_argument("-m", "--model", metavar="FILE",
                   help=f"Keras .keras model, --engine native only (default: {_shown(DEFAULT_KERAS_MODEL)})")
    p.set_defaults(bigdl_files_required=compat)
    p.add_argument("--driver-memory", default="2g", help="Spark driver memory")
    p.add_argument("--executor-memory", default="2g", help="Spark executor memory (cluster)")
    p.add_argument("--cores-max", "--total-executor-cores", dest="cores_max", type=int, default=2,
                   help="cluster: total executor cores to use (spark.cores.max; 1 core per executor)")
    p.add_argument("--conf", action="append", metavar="KEY=VALUE", default=[],
                   help="a Spark property, as spark-submit's --conf (repeatable; applied after ours)")
    p.add_argument("--driver-host", metavar="HOST",
                   help="address executors reach the driver at (default: loopback for local masters, else the "
                        "local address that routes to the master)")
    p.add_argument("--ship-env", action="store_true",
                   help="cluster: pack this Python environment (venv-pack, cached) and our package and ship them to "
                        "the executors (spark.archives); workers then need only the same Python. Without it they "
                        "need this .venv at the same path")
    p.add_argument("--log-level", choices=LOG_LEVELS, default="ERROR",
                   help="Spark/JVM log level; below INFO the JVM's start-up chatter and stack traces are hidden")
    p.add_argument("--json", metavar="FILE", help="also write the run's summary as JSON")


def check_model_options(args: argparse.Namespace) -> None:
    """Refuse model options that the chosen engine would ignore, and fill in the defaults it uses; refuse a
    malformed ``--conf`` here too (both paths call this first, before anything slow)."""
    from iotbench.spark.address import parse_conf

    args.conf_items = parse_conf(getattr(args, "conf", None))
    bigdl_files = [flag for flag, value in (("-md", args.model_defs), ("-mw", args.model_weights)) if value]
    if args.engine == "native":
        if bigdl_files:
            raise ValueError(f"{'/'.join(bigdl_files)}: BigDL model files are not used by --engine native; "
                             "give its Keras model with -m (or choose --engine bigdl)")
        args.model = args.model or str(DEFAULT_KERAS_MODEL)
        return
    if args.model:
        raise ValueError("-m names the Keras model of --engine native; --engine bigdl reads -md/-mw "
                         "(add --engine native to classify with the Keras model)")
    if args.bigdl_files_required and len(bigdl_files) < 2:
        raise ValueError("--engine bigdl (the default) needs both -md/--modelDefsPath and -mw/--modelWeightsPath, "
                         f"e.g. -md {_shown(DEFAULT_BIGDL_DEFS)} -mw {_shown(DEFAULT_BIGDL_WEIGHTS)}; "
                         "or classify with a Keras model: --engine native -m FILE")
    args.model_defs = args.model_defs or str(DEFAULT_BIGDL_DEFS)
    args.model_weights = args.model_weights or str(DEFAULT_BIGDL_WEIGHTS)


def configure(parser: argparse.ArgumentParser) -> None:
    add_spark_arguments(parser)
    add_max_arguments(parser)


def add_max_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-d", "--duration", type=float, default=10.0, help="seconds to keep inferring")
    parser.add_argument("--dataset", choices=("test", "train"), default="test",
                        help="CIFAR-10 split to infer (the original used train, which its model was trained on)")
    parser.add_argument("--images", type=int, default=None, help="use only the first N images of the split "
                        "(default: all)")
    parser.add_argument("-b", "--batch", type=int, default=None,
                        help="BigDL batch per thread (default 64) or native predict_batch_udf batch (default 256)")
    parser.add_argument("--partitions", type=int, default=None, help="partitions (default: the master's parallelism)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations before the clock starts")


def configure_compat(parser: argparse.ArgumentParser) -> None:
    """infer_cifar_max -md DEFS -mw WEIGHTS [-d SECONDS]: the original's flags (BigDL engine)."""
    add_spark_arguments(parser, compat=True)
    add_max_arguments(parser)


def make_classifier(args: argparse.Namespace):
    """The classifier both Spark paths share (model files are checked here, before Spark starts)."""
    from iotbench.engines.spark_models import BigDLClassifier, KerasUDFClassifier

    if args.engine == "bigdl":
        return BigDLClassifier(args.model_defs, args.model_weights, batch_per_thread=args.batch or 64)
    return KerasUDFClassifier(args.model, batch=args.batch or 256)


def make_engine(args: argparse.Namespace):
    from iotbench.engines.spark_max import BigDLMax, NativeMax

    return (BigDLMax if args.engine == "bigdl" else NativeMax)(make_classifier(args))


def loading_line(args: argparse.Namespace) -> str:
    if args.engine == "bigdl":
        return f"Loading trained model from {args.model_defs} (definition) and {args.model_weights} (weights)"
    return f"Loading trained model from {args.model}"


@contextlib.contextmanager
def jvm_errors(what: str) -> Iterator[None]:
    """JVM failures (Py4J errors, pyspark's captured exceptions) as one-line errors: ``what: java.Class: message``.

    The CLI prints a RuntimeError as ``error: <its first line>`` (exit 2); a Py4J error would otherwise be
    a Python traceback wrapped around a Java one.
    """
    from iotbench.spark import java_error_line

    try:
        yield
    except Exception as err:
        line = java_error_line(err)
        if line is None:
            raise
        raise RuntimeError(f"{what}: {line}") from None


def check_memory(flag: str, value: str) -> str:
    """A JVM memory size (``512m``, ``2g``); anything else is refused here, where spark-submit would only say that
    the Java gateway exited."""
    if not re.fullmatch(r"\d+[kmgtp]?b?", value.strip().lower()):
        raise ValueError(f"{flag} {value!r}: expected a JVM memory size such as 512m or 2g")
    return value.strip()


def settings(args: argparse.Namespace, app_name: str):
    from iotbench.spark import SparkSettings

    check_memory("--driver-memory", args.driver_memory)
    check_memory("--executor-memory", args.executor_memory)

    from iotbench.spark.address import parse_conf

    return SparkSettings(master=args.master, app_name=app_name, driver_memory=args.driver_memory,
                         executor_memory=args.executor_memory, cores_max=args.cores_max,
                         log_level=args.log_level, conf=parse_conf(args.conf), driver_host=args.driver_host,
                         ship_env=getattr(args, "ship_env", False))


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
    return (f"Summary: engine {s['engine']}, model {s['model']}, master {s['master']} ({s['partitions']} partitions), "
            f"{s['dataset']} set: {s['classified']} images in {s['elapsed_s']:.1f} s = {s['images_per_sec']:.1f} "
            f"images/second over {s['iterations']} iterations, accuracy {acc}{lost_executors(s)}")


def lost_executors(s: dict) -> str:
    """``, 1 executor lost (2 -> 1)`` when executors were lost during the run ('' otherwise or when not measured)."""
    n = s.get("executors_lost")
    if not n:
        return ""
    return (f", {n} executor{'s' if n > 1 else ''} lost ({s['executors_start']} -> {s['executors_end']}; "
            "their tasks were retried)")
