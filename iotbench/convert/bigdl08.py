"""The original's BigDL 0.8 ResNet-20 (``bigdl_resnet_model_887``) imported into a BigDL 2.4 model file.

The agreement check is the Scala importer's: it scores the saved file on the whole test set and the card records
the accuracy (88.70%), which the stream tests then hold the JVM classifier to image by image.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from iotbench.convert.bigdl_resnet import correct_bitmap, drop_crc, portable
from iotbench.files import sha256


def import_bigdl08(model: Path, output: Path, bigdl08_jar: Path, scala211_library: Path, log=print) -> dict:
    """Convert the original's ``bigdl_resnet_model_887`` (BigDL 0.8, Java-serialized) into a BigDL 2.4 model file.

    BigDL 2.4 cannot read the file, but BigDL 0.8's own jar still can, with Java 17 and Scala 2.11's library:
    ``scala/tools/DumpBigDL08.java`` dumps its tensors, ``iotbench.ImportBigDL08`` (our jar, BigDL 2.4) loads
    them into the same ResNet-20 and scores the saved file on the test set.  Both jars are one-off downloads
    from package registries (``pip download --no-deps BigDL==0.8.0`` holds ``bigdl/share/lib/*.jar``;
    ``apt-get download scala-library`` holds ``usr/share/java/scala-library-2.11.12.jar``); nothing is fetched here.
    Returns the card written next to ``output``.
    """
    import subprocess
    import tempfile

    from iotbench import scala_build
    from iotbench.data import cifar10_bin

    for path in (model, bigdl08_jar, scala211_library):
        if not path.is_file():
            raise FileNotFoundError(f"not found: {path}")
    tools = scala_build.toolchain()
    spark = [j for j in tools.spark_jars if not j.name.startswith(("scala-library", "scala-reflect", "scala-compiler"))]
    with tempfile.TemporaryDirectory(prefix="iotbench-bigdl08-") as tmp:
        classes, dump, scores = Path(tmp) / "classes", Path(tmp) / "model.dump", Path(tmp) / "scores.json"
        source = scala_build.SCALA_DIR / "tools" / "DumpBigDL08.java"
        subprocess.run(["javac", "-nowarn", "-cp", f"{bigdl08_jar}{os.pathsep}{scala211_library}", "-d", str(classes),
                        str(source)], check=True, capture_output=True)
        cp = os.pathsep.join(map(str, [classes, bigdl08_jar, scala211_library, *spark]))
        log(subprocess.run(["java", "-cp", cp, "DumpBigDL08", str(model), str(dump)], check=True,
                           capture_output=True, text=True).stdout.strip())
        jar = scala_build.build(log=log).jar
        test = cifar10_bin.test_folder() / cifar10_bin.TEST_FILE
        output.parent.mkdir(parents=True, exist_ok=True)
        args = [str(dump), str(output), str(test), str(scores)]
        cmd = scala_build.submit_command(jar, "iotbench.ImportBigDL08", args)
        proc = subprocess.run(cmd, env=scala_build.submit_env(), capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"ImportBigDL08 failed:\n{proc.stderr[-3000:]}")
        log(proc.stdout.strip())
        drop_crc(output)
        result = json.loads(scores.read_text())
    flags = np.frombuffer(result["correct_flags"].encode(), np.uint8) == ord("1")
    card = {
        "name": output.stem, "format": "BigDL 2.4 protobuf (Module.loadModule / Python Model.loadModel)",
        "source": portable(model), "source_sha256": sha256(model),
        "source_format": "BigDL 0.8 Module.save (Java serialization), ResNet-20 CIFAR-10 shortcut A (TrainCIFAR10)",
        "input": "N x 3 x 32 x 32 float32 RGB in 0-255 (CHW); a 1x1 convolution inside does /255, -mean, /std",
        "test_images_checked": int(result["images"]),
        "test_accuracy": float(result["accuracy"]),
        "correct_bitmap": correct_bitmap(flags),
        "sha256": sha256(output),
    }
    output.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return card
