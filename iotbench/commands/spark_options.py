"""The options and checks both Spark commands share (``infer spark-max``, ``infer spark-stream``, the original names).

Engine, master, model files, what runs the native engine's model (``--runtime`` / ``--precision``), the
batch, Spark resources (``--conf``, ``--driver-host``, ``--ship-env``, memory, cores) and logging are the
same for the max and the streaming path, and so is every refusal of a combination that contradicts
itself: each is written here once, and each command adds only the options of its own path.
"""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Iterator
from pathlib import Path

from iotbench.cpu import PRECISIONS
from iotbench.engines.edge_runtime import RUNTIMES
from iotbench.engines.spark_models import DEFAULT_BIGDL_DEFS, DEFAULT_BIGDL_WEIGHTS, DEFAULT_KERAS_MODEL, ROOT
from iotbench.spark import BIGDL_ENGINES, DEFAULT_MASTER, LOG_LEVELS

ENGINES = ("bigdl", "native")


def _shown(path: Path) -> str:
    """A default model path as help shows it: relative to the repository (where ``models/`` lives)."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def add_spark_arguments(p: argparse.ArgumentParser, compat: bool = False) -> None:
    """Options shared by the Spark paths: engine, master, model files and runtime, batch, Spark resources.

    The model options belong to one engine each: ``-md``/``-mw`` to bigdl, ``-m``, ``--runtime`` and
    ``--precision`` to native; giving one to the other engine is refused (:func:`check_model_options`).
    The original programs (``compat``) had no defaults for ``-md``/``-mw``: there they are required with
    ``--engine bigdl``, and only then.
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
    p.add_argument("--runtime", choices=RUNTIMES, default="tf",
                   help="--engine native: what runs the model in the Python workers: TensorFlow, or "
                        "the model converted on the driver once (cached under $IOTBENCH_CACHE or "
                        "~/.cache/iotbench) for ONNX Runtime or OpenVINO")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="--engine native: fp32; int8: calibrated on training images (onnxruntime, "
                        "openvino); bf16: needs a CPU with avx512_bf16 or amx_bf16")
    p.add_argument("--bigdl-engine", choices=BIGDL_ENGINES, default="mklblas",
                   help="--engine bigdl: BigDL's compute engine in every JVM: mklblas (BigDL's default, its layers on "
                        "MKL's BLAS) or mkldnn (MKL-DNN, the model converted for inference in each executor)")
    p.add_argument("-b", "--batch", type=int, default=None,
                   help="BigDL batch per thread (default 64) or native predict_batch_udf batch (256)")
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
    malformed ``--conf`` and a precision this CPU or runtime cannot run here too (both paths call this
    first, before anything slow)."""
    from iotbench.engines.edge_runtime import check_precision
    from iotbench.spark.address import parse_conf

    args.conf_items = parse_conf(getattr(args, "conf", None))
    bigdl_files = [flag for flag, value in (("-md", args.model_defs), ("-mw", args.model_weights)) if value]
    if args.engine == "native":
        if getattr(args, "bigdl_engine", "mklblas") != "mklblas":
            raise ValueError(f"--bigdl-engine {args.bigdl_engine}: BigDL's engine is for --engine bigdl; the native "
                             "engine's model runs in --runtime (add --engine bigdl)")
        if bigdl_files:
            raise ValueError(f"{'/'.join(bigdl_files)}: BigDL model files are not used by --engine native; "
                             "give its Keras model with -m (or choose --engine bigdl)")
        check_precision(args.runtime, args.precision)
        args.model = args.model or str(DEFAULT_KERAS_MODEL)
        return
    if args.model:
        raise ValueError("-m names the Keras model of --engine native; --engine bigdl reads -md/-mw "
                         "(add --engine native to classify with the Keras model)")
    if (args.runtime, args.precision) != ("tf", "fp32"):
        raise ValueError(f"--runtime {args.runtime} --precision {args.precision}: these choose what runs the Keras "
                         "model of --engine native; --engine bigdl runs its fp32 model in the JVM "
                         "(add --engine native)")
    if args.bigdl_files_required and len(bigdl_files) < 2:
        raise ValueError("--engine bigdl (the default) needs both -md/--modelDefsPath and -mw/--modelWeightsPath, "
                         f"e.g. -md {_shown(DEFAULT_BIGDL_DEFS)} -mw {_shown(DEFAULT_BIGDL_WEIGHTS)}; "
                         "or classify with a Keras model: --engine native -m FILE")
    args.model_defs = args.model_defs or str(DEFAULT_BIGDL_DEFS)
    args.model_weights = args.model_weights or str(DEFAULT_BIGDL_WEIGHTS)


def make_classifier(args: argparse.Namespace):
    """The classifier both Spark paths share: model files are checked, and the native engine's model converted
    for its runtime (cached), here, before Spark starts."""
    from iotbench.engines.spark_models import BigDLClassifier, KerasUDFClassifier

    if args.engine == "bigdl":
        return BigDLClassifier(args.model_defs, args.model_weights, batch_per_thread=args.batch or 64,
                               bigdl_engine=getattr(args, "bigdl_engine", "mklblas"))
    classifier = KerasUDFClassifier(args.model, batch=args.batch or 256, runtime=args.runtime,
                                    precision=args.precision)
    classifier.convert()
    return classifier


def loading_line(args: argparse.Namespace) -> str:
    if args.engine == "bigdl":
        engine = "" if getattr(args, "bigdl_engine", "mklblas") == "mklblas" else f", BigDL engine {args.bigdl_engine}"
        return f"Loading trained model from {args.model_defs} (definition) and {args.model_weights} (weights){engine}"
    runtime = "" if (args.runtime, args.precision) == ("tf", "fp32") else f" ({args.runtime} {args.precision})"
    return f"Loading trained model from {args.model}{runtime}"


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
    """The Spark settings of a command line (memory sizes checked first)."""
    from iotbench.spark import SparkSettings
    from iotbench.spark.address import parse_conf

    check_memory("--driver-memory", args.driver_memory)
    check_memory("--executor-memory", args.executor_memory)
    return SparkSettings(master=args.master, app_name=app_name, driver_memory=args.driver_memory,
                         executor_memory=args.executor_memory, cores_max=args.cores_max,
                         log_level=args.log_level, conf=parse_conf(args.conf), driver_host=args.driver_host,
                         ship_env=getattr(args, "ship_env", False),
                         bigdl_engine=getattr(args, "bigdl_engine", "mklblas"))


def runtime_words(s: dict) -> str:
    """`` (onnxruntime int8)`` after the engine in a summary line, when the native engine's model is not
    TensorFlow fp32, or `` (mkldnn)`` when BigDL's is not its default engine ('' otherwise)."""
    if s.get("engine") == "bigdl" and s.get("bigdl_engine") not in (None, "mklblas"):
        return f" ({s['bigdl_engine']})"
    if s.get("engine") != "native" or (s.get("runtime"), s.get("precision")) in (("tf", "fp32"), (None, None)):
        return ""
    return f" ({s['runtime']} {s['precision']})"


def lost_executors(s: dict) -> str:
    """``, 1 executor lost (2 -> 1)`` when executors were lost during the run ('' otherwise or when not measured)."""
    n = s.get("executors_lost")
    if not n:
        return ""
    return (f", {n} executor{'s' if n > 1 else ''} lost ({s['executors_start']} -> {s['executors_end']}; "
            "their tasks were retried)")
