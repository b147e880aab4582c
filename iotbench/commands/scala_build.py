"""The Scala programs: build them without sbt, run the JVM sender, import the original's BigDL 0.8 model.

  iotbench scala build             compile the jar (cached by source hash)
  iotbench scala send -t 1000 -i 0 --listen 10000
  iotbench scala import-bigdl08 bigdl_resnet_model_887 --bigdl08-jar JAR --scala211-library JAR
"""

from __future__ import annotations

import argparse

from iotbench import scala_build
from iotbench.commands import convert, scala_send
from iotbench.report import log

# One CLI concept a module: ``build`` lives here, ``send`` in commands/scala_send.py, ``import-bigdl08`` is the
# converter of commands/convert.py (``iotbench convert import-bigdl08``), kept here as an alias.

BUILD_DOC = """Compile the Scala programs (scala/src/main/scala) into one jar, without sbt.

The compiler is the Scala 2.12 one shipped inside the pyspark wheel, the class path Spark's and
BigDL's jars; the jar goes to build/scala/iotbench-scala-<hash>.jar.  Nothing is rebuilt while the
sources, the jars and the compiler are unchanged (--force rebuilds).  Prints the jar's path.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="scala_command", required=True, metavar="ACTION")
    b = sub.add_parser("build", help="compile the Scala programs into one jar (cached)", description=BUILD_DOC,
                       formatter_class=parser.formatter_class)
    b.add_argument("--force", action="store_true", help="rebuild even when a jar for these sources exists")
    b.set_defaults(scala_func=run_build)
    scala_send.configure(sub, parser.formatter_class)
    convert.configure_import_bigdl08(sub, parser.formatter_class, dest="scala_func")


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
