"""The Scala programs: build them without sbt, run the JVM sender, import the original's BigDL 0.8 model.

  iotbench scala build             compile the jar (cached by source hash)
  iotbench scala send -t 1000 -i 0 --listen 10000
  iotbench scala import-bigdl08 bigdl_resnet_model_887 --bigdl08-jar JAR --scala211-library JAR
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from iotbench import scala_build
from iotbench.report import log

BUILD_DOC = """Compile the Scala programs (scala/src/main/scala) into one jar, without sbt.

The compiler is the Scala 2.12 one shipped inside the pyspark wheel, the class path Spark's and
BigDL's jars; the jar goes to build/scala/iotbench-scala-<hash>.jar.  Nothing is rebuilt while the
sources, the jars and the compiler are unchanged (--force rebuilds).  Prints the jar's path.
"""

SEND_DOC = """Run the JVM sender (the original send_images_cifar_stream.scala, with our formats).

Without -f it reads the CIFAR-10 binary test batch, written once from the Python pickles into the
cache when no cifar-10-batches-bin folder exists.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="scala_command", required=True, metavar="ACTION")
    b = sub.add_parser("build", help="compile the Scala programs into one jar (cached)", description=BUILD_DOC,
                       formatter_class=parser.formatter_class)
    b.add_argument("--force", action="store_true", help="rebuild even when a jar for these sources exists")
    b.set_defaults(scala_func=run_build)
    s = sub.add_parser("send", help="run the JVM sender (send_images_cifar_stream)", description=SEND_DOC,
                       formatter_class=parser.formatter_class)
    s.add_argument("-f", "--folder", help="cifar-10-batches-bin folder (default: derived from the pickles)")
    s.add_argument("-i", "--imagesPerSec", default="10", metavar="RATE",
                   help="images per second, 0 = as fast as possible (a rate, as in iotbench send; "
                        "in the stream classifiers -i is the sender's host)")
    s.add_argument("-t", "--totalImages", default="100", metavar="N", help="total images to send")
    s.add_argument("--format", default="comma", choices=("comma", "v1", "v2", "bigdl08"),
                   help="line format: comma (label,v1,...), v1/v2 (ours), bigdl08 (the original Scala sender's)")
    s.add_argument("--arrival", default="lognormal", choices=("lognormal", "constant", "poisson", "max"),
                   help="inter-arrival process; max sends as fast as the receiver reads")
    s.add_argument("--listen", type=int, metavar="PORT", help="serve the stream on PORT (0: any free port)")
    s.add_argument("--pause", type=float, help="seconds before sending (default: 15 to stdout, 0 with --listen)")
    s.set_defaults(scala_func=run_send)
    m = sub.add_parser("import-bigdl08", help="convert the original's BigDL 0.8 model file into BigDL 2.4",
                       description=_import_doc(), formatter_class=parser.formatter_class)
    m.add_argument("model", type=Path, help="BigDL 0.8 model file, e.g. the original's bigdl_resnet_model_887")
    m.add_argument("-o", "--output", type=Path, default=Path("models/bigdl_resnet887.model"), help="BigDL 2.4 file")
    m.add_argument("--bigdl08-jar", type=Path, required=True, metavar="JAR",
                   help="bigdl-0.8.0-jar-with-dependencies.jar (from `pip download --no-deps BigDL==0.8.0`)")
    m.add_argument("--scala211-library", type=Path, required=True, metavar="JAR",
                   help="scala-library-2.11.x.jar (from `apt-get download scala-library` on Debian 12)")
    m.set_defaults(scala_func=run_import)


def _import_doc() -> str:
    """The converter's docstring as help text: reST literals (double backquotes) shown as plain text."""
    import inspect

    from iotbench.models import bigdl_resnet

    return inspect.cleandoc(bigdl_resnet.import_bigdl08.__doc__ or "").replace("``", "")


def run_import(args: argparse.Namespace) -> int:
    import json

    from iotbench.models import bigdl_resnet

    card = bigdl_resnet.import_bigdl08(args.model, args.output, args.bigdl08_jar, args.scala211_library, log=log)
    print(json.dumps({k: v for k, v in card.items() if k != "correct_bitmap"}, indent=2))
    return 0


def run(args: argparse.Namespace) -> int:
    return args.scala_func(args)


def run_build(args: argparse.Namespace) -> int:
    result = scala_build.build(force=args.force, log=log)
    if result.built:
        log(f"Built {result.jar} in {result.seconds:.1f} seconds")
    else:
        log(f"Up to date: {result.jar}")
    print(result.jar)
    return 0


def sender_args(args: argparse.Namespace) -> list[str]:
    from iotbench.data import cifar10_bin

    folder = args.folder or str(cifar10_bin.test_folder())
    out = ["-f", folder, "-i", str(args.imagesPerSec), "-t", str(args.totalImages), "--format", args.format,
           "--arrival", args.arrival]
    if args.listen is not None:
        out += ["--listen", str(args.listen)]
    if args.pause is not None:
        out += ["--pause", str(args.pause)]
    return out


def run_send(args: argparse.Namespace) -> int:
    jar = scala_build.build(log=log).jar
    cmd = scala_build.java_command(jar, scala_build.SENDER_CLASS, sender_args(args))
    return subprocess.run(cmd, check=False).returncode
