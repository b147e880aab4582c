"""Convert a trained model for another runtime, checked against the original before it is saved.

  iotbench convert cnn [--keras models/cnn.keras] [--out models/bigdl_cnn]
  iotbench convert resnet20 models/resnet20.keras [models/bigdl_resnet20.model]
  iotbench convert import-bigdl08 bigdl_resnet_model_887 --bigdl08-jar JAR --scala211-library JAR

Each refuses to save when the converted model's accuracy differs from the source's by more than 0.5 point,
and prints a progress line per long pass.
"""

from __future__ import annotations

import argparse
import inspect
import json
from pathlib import Path

from iotbench.report import log


def _doc(func) -> str:
    """A docstring as help text: reST literals (double backquotes) shown as plain text."""
    return inspect.cleandoc(func.__doc__ or "").replace("``", "")


def configure_import_bigdl08(sub, formatter_class, dest: str = "convert_func") -> None:
    """Add ``import-bigdl08`` to ``sub`` (here and, as an alias, under ``iotbench scala``)."""
    from iotbench.convert import bigdl08

    m = sub.add_parser("import-bigdl08", help="convert the original's BigDL 0.8 model file into BigDL 2.4",
                       description=_doc(bigdl08.import_bigdl08), formatter_class=formatter_class)
    m.add_argument("model", type=Path, help="BigDL 0.8 model file, e.g. the original's bigdl_resnet_model_887")
    m.add_argument("-o", "--output", type=Path, default=Path("models/bigdl_resnet887.model"), help="BigDL 2.4 file")
    m.add_argument("--bigdl08-jar", type=Path, required=True, metavar="JAR",
                   help="bigdl-0.8.0-jar-with-dependencies.jar (from `pip download --no-deps BigDL==0.8.0`)")
    m.add_argument("--scala211-library", type=Path, required=True, metavar="JAR",
                   help="scala-library-2.11.x.jar (from `apt-get download scala-library` on Debian 12)")
    m.set_defaults(**{dest: run_import})


def run_import(args: argparse.Namespace) -> int:
    from iotbench.convert import bigdl08

    card = bigdl08.import_bigdl08(args.model, args.output, args.bigdl08_jar, args.scala211_library, log=log)
    print(json.dumps({k: v for k, v in card.items() if k != "correct_bitmap"}, indent=2))
    return 0


def configure(parser: argparse.ArgumentParser) -> None:
    from iotbench.convert import bigdl_cnn, bigdl_resnet

    sub = parser.add_subparsers(dest="convert_command", required=True, metavar="CONVERTER")
    for name, module, what in (("cnn", bigdl_cnn, "the Keras CNN as a BigDL twin (the Spark BigDL engines)"),
                               ("resnet20", bigdl_resnet, "a Keras ResNet20 as a BigDL graph (the Scala JVM path)")):
        p = sub.add_parser(name, help=what, description=module.__doc__, formatter_class=parser.formatter_class)
        module.configure(p)
        p.set_defaults(convert_func=module.run)
    configure_import_bigdl08(sub, parser.formatter_class)


def run(args: argparse.Namespace) -> int:
    return args.convert_func(args)
