"""``iotbench scala send``: the JVM sender (the original send_images_cifar_stream.scala, with our formats)."""

from __future__ import annotations

import argparse
import subprocess

from iotbench import scala_build
from iotbench.report import log

SEND_DOC = """Run the JVM sender (the original send_images_cifar_stream.scala, with our formats).

Without -f it reads the CIFAR-10 binary test batch, written once from the Python pickles into the
cache when no cifar-10-batches-bin folder exists.
"""


def configure(sub, formatter_class) -> None:
    """Add ``send`` to the ``iotbench scala`` actions ``sub``."""
    s = sub.add_parser("send", help="run the JVM sender (send_images_cifar_stream)", description=SEND_DOC,
                       formatter_class=formatter_class)
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
