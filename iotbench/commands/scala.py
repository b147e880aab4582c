"""Scala programs via spark-submit: scala-stream (Spark Streaming + BigDL ResNet20), scala-imagenet-max (ResNet-50).

iotbench infer scala-stream and iotbench infer scala-imagenet-max build the jar when needed
(iotbench scala build) and run it with pyspark's own spark-submit, BigDL on the class path.
Arguments after the Spark options are the original programs' flags; the programs print the
original's lines (see the seed README) plus our accounting line.

scala-stream's exit status is the one every receiver has (iotbench.metrics.exit_status; the Scala
program applies the same table, ported in scala/.../Accounting.scala): 0 when the books close and at
least one image was classified, 3 truncated, 4 the identity does not close, 5 nothing classified;
1 when the classifier failed, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Sequence

from iotbench import scala_build
from iotbench.report import log
from iotbench.spark.context import BIGDL_ENGINES
from iotbench.spark.logs import run_filtered

DEFAULT_MODEL = "models/bigdl_resnet20.model"


def _spark_options(p: argparse.ArgumentParser, driver_memory: str) -> None:
    g = p.add_argument_group("Spark")
    g.add_argument("--master", default="local[2]", help="Spark master URL")
    g.add_argument("--driver-memory", default=driver_memory, help="spark-submit --driver-memory")
    g.add_argument("--conf", action="append", metavar="KEY=VALUE",
                   help="extra Spark configuration (repeat for several)")
    g.add_argument("--jvm-output", choices=("filtered", "all"), default="filtered",
                   help="filtered (default): the JVM's start-up chatter and the stack traces under one-line errors "
                        "(Java's, and bigdl-core's native frames) are hidden; all: everything spark-submit prints")


def _conf(pairs: Sequence[str] | None) -> dict[str, str]:
    out = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--conf expects KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def submit(main_class: str, program_args: list[str], args: argparse.Namespace) -> int:
    """Build (cached) and spark-submit ``main_class`` with ``program_args`` (a malformed master refused first);
    the program's exit status."""
    from iotbench.commands.spark_options import check_memory
    from iotbench.spark import validate_master

    validate_master(args.master)
    check_memory("--driver-memory", args.driver_memory)
    jar = scala_build.build(log=log).jar
    cmd = scala_build.submit_command(jar, main_class, program_args, master=args.master,
                                     driver_memory=args.driver_memory, conf=_conf(args.conf))
    if args.jvm_output == "filtered":
        return run_filtered(cmd, scala_build.submit_env())
    return subprocess.run(cmd, env=scala_build.submit_env(), text=True, check=False).returncode


def optional_flags(*pairs: tuple[str, object]) -> list[str]:
    """``flag value`` for every pair whose value is set (the Scala programs' defaults, 0 or "", mean none)."""
    return [token for flag, value in pairs if value for token in (flag, str(value))]


# --------------------------------------------------------------------------- scala-stream


def configure_scala_stream(p: argparse.ArgumentParser) -> None:
    """Scala Spark Streaming + BigDL ResNet classifier of a socket stream (the original infer_cifar_stream.scala)."""
    p.add_argument("-r", "--reportingInterval", dest="reporting_interval", type=int, default=1, metavar="SECONDS",
                   help="reporting (batch) interval (here -r is seconds; in iotbench infer keras -r counts images)")
    p.add_argument("-i", "--sourceIPAddress", dest="host", default="127.0.0.1",
                   help="address of the listening sender (here -i is a host; in iotbench send -i is the rate)")
    p.add_argument("-p", "--sourcePort", dest="port", type=int, default=10000, help="port the sender listens on")
    p.add_argument("-m", "--model", default=DEFAULT_MODEL, help="BigDL model file (input: 0-255 RGB, NCHW)")
    p.add_argument("-b", "--batchSize", dest="batch", type=int, default=128,
                   help="images per forward call over all cores, split among them as BigDL's predict "
                        "(the original's 2000 was for 96 cores)")
    p.add_argument("--json", metavar="FILE", help="also write the run's summary as JSON")
    p.add_argument("--connect-timeout", type=int, default=0,
                   help="give up when the sender cannot be reached for this many seconds (0: keep trying)")
    p.add_argument("--max-rate", type=int, default=0, help="cap on lines/s the Spark receiver accepts (0: none)")
    p.add_argument("--bigdl-engine", choices=BIGDL_ENGINES, default="mklblas",
                   help="BigDL's compute engine: mklblas, or mkldnn (the model converted for MKL-DNN inference, "
                        "unfused when MKL-DNN refuses its fused graph, as for our ResNet20 twin; refused in one line, "
                        "before the stream starts, for a model MKL-DNN cannot run, such as the imported BigDL 0.8 "
                        "model)")
    p.add_argument("--initial-rate", type=int, default=200,
                   help="lines/s the receiver accepts until Spark's backpressure has measured the processing rate")
    _spark_options(p, "3g")


def stream_args(args: argparse.Namespace) -> list[str]:
    return ["-r", str(args.reporting_interval), "-i", args.host, "-p", str(args.port), "-m", args.model,
            "-b", str(args.batch),
            *optional_flags(("--json", args.json), ("--connectTimeout", args.connect_timeout),
                            ("--maxRate", args.max_rate)),
            "--initialRate", str(args.initial_rate), "--bigdlEngine", args.bigdl_engine]


def run_scala_stream(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.max_rate and args.initial_rate > args.max_rate:
        raise ValueError(f"--initial-rate {args.initial_rate} is above --max-rate {args.max_rate}: the receiver "
                         "never accepts more than --max-rate lines/s (lower --initial-rate or raise --max-rate)")
    if not Path(args.model).is_file():
        raise FileNotFoundError(f"model file not found: {args.model} "
                                "(convert one: iotbench convert resnet20 KERAS_FILE)")
    return submit(scala_build.STREAM_CLASS, stream_args(args), args)


# --------------------------------------------------------------------------- scala-imagenet-max


def configure_scala_imagenet_max(p: argparse.ArgumentParser) -> None:
    """Scala BigDL ResNet-50 over ImageNet folders in a timed loop (the original infer_imagenet_max.scala)."""
    p.add_argument("-f", "--folder", required=True, help="ImageNet images: DIR/<wnid>/*.JPEG or DIR/val/<wnid>/...")
    p.add_argument("-m", "--modelPath", dest="model", default="",
                   help="model file (BigDL or Torch .t7); default: ResNet-50 with random weights, accuracy not scored")
    p.add_argument("-d", "--duration", type=int, default=60, help="seconds of the timed loop")
    p.add_argument("-b", "--batchSize", dest="batch", type=int, default=0,
                   help="images per forward call over all cores (0: 4 per core)")
    p.add_argument("--images", type=int, default=0, help="use only the first N images (0: all)")
    p.add_argument("--repeat", type=int, default=5, help="use each image this many times per iteration")
    p.add_argument("--depth", type=int, help="ResNet depth of the random-weight model, without -m only (default: 50)")
    p.add_argument("--json", metavar="FILE", help="also write the run's summary as JSON")
    _spark_options(p, "3g")


def imagenet_args(args: argparse.Namespace) -> list[str]:
    return ["-f", args.folder, "-d", str(args.duration), "--repeat", str(args.repeat), "--depth", str(args.depth or 50),
            *optional_flags(("-m", args.model), ("-b", args.batch), ("--images", args.images), ("--json", args.json))]


def run_scala_imagenet_max(args: argparse.Namespace) -> int:
    if args.model and args.depth:
        raise ValueError("--depth shapes the random-weight ResNet used without -m; with -m the model file "
                         "defines the network (drop one of them)")
    return submit(scala_build.IMAGENET_CLASS, imagenet_args(args), args)


configure = configure_scala_stream
run = run_scala_stream
