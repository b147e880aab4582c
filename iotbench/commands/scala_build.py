"""Build the Scala programs without sbt (``iotbench scala build``), and run the JVM sender (``iotbench scala send``).

``build`` compiles ``scala/src/main/scala`` with the Scala 2.12 compiler shipped in the pyspark wheel
against Spark's and BigDL's jars, into ``build/scala/iotbench-scala-<hash>.jar``; it is a no-op while
the sources, the jars and the compiler are unchanged (``--force`` rebuilds).

``send`` runs ``send_images_cifar_stream`` with plain ``java``; without ``-f`` it uses the CIFAR-10
binary test batch, written once from the Python pickles into the cache when no
``cifar-10-batches-bin`` folder exists.
"""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from iotbench import scala_build
from iotbench.report import log


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="scala_command", required=True, metavar="ACTION")
    b = sub.add_parser("build", help="compile the Scala programs into one jar (cached)", description=__doc__)
    b.add_argument("--force", action="store_true", help="rebuild even when a jar for these sources exists")
    b.set_defaults(scala_func=run_build)
    s = sub.add_parser("send", help="run the JVM sender (send_images_cifar_stream)",
                       description="Arguments are those of send_images_cifar_stream (see --help there).")
    s.add_argument("-f", "--folder", help="cifar-10-batches-bin folder (default: derived from the pickles)")
    s.add_argument("-i", "--imagesPerSec", default="10", help="images per second (0: as fast as possible)")
    s.add_argument("-t", "--totalImages", default="100", help="total images")
    s.add_argument("--format", default="comma", choices=("comma", "v1", "v2", "bigdl08"), help="line format")
    s.add_argument("--arrival", default="lognormal", choices=("lognormal", "constant", "poisson", "max"))
    s.add_argument("--listen", type=int, metavar="PORT", help="serve the stream on PORT (0: any free port)")
    s.add_argument("--pause", type=float, help="seconds before sending (default: 15 to stdout, 0 with --listen)")
    s.set_defaults(scala_func=run_send)
    m = sub.add_parser("import-bigdl08", help="convert the original's BigDL 0.8 model file into BigDL 2.4",
                       description=_import_doc())
    m.add_argument("model", type=Path, help="BigDL 0.8 model file, e.g. ../shared/models/bigdl_resnet_model_887")
    m.add_argument("-o", "--output", type=Path, default=Path("models/bigdl_resnet887.model"), help="BigDL 2.4 file")
    m.add_argument("--bigdl08-jar", type=Path, required=True,
                   help="bigdl-0.8.0-jar-with-dependencies.jar (from `pip download --no-deps BigDL==0.8.0`)")
    m.add_argument("--scala211-library", type=Path, required=True,
                   help="scala-library-2.11.x.jar (from `apt-get download scala-library` on Debian 12)")
    m.set_defaults(scala_func=run_import)


def _import_doc() -> str:
    from iotbench.models import bigdl_resnet

    return bigdl_resnet.import_bigdl08.__doc__ or ""


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
