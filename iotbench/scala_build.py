"""Build the Scala programs in ``scala/`` into one jar without sbt and without a network.

The pyspark wheel ships the Scala compiler its Spark was built with (pyspark 3.5.9: Scala
2.12.18) and BigDL 2.4's Python wheels ship its Scala 2.12 jars, so everything ``sbt
assembly`` would fetch is already on disk.  We run ``scala.tools.nsc.Main`` with those jars on
the class path and zip the class files into ``build/scala/iotbench-scala-<hash>.jar``.

The jar is *thin* (our classes only): ``spark-submit --jars <bigdl jars>`` supplies BigDL at
run time, as the original's ``--jars bigdl-…-jar-with-dependencies.jar`` did.  Compiling takes
a minute or two on a small machine, so the jar is cached under a hash of the sources, the
class-path jar names and the compiler; it is rebuilt only when one of them changes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from iotbench.spark.env import submit_env  # noqa: F401  (scala_build.submit_env: what submit_command runs under)
from iotbench.spark.jars import ToolchainError, bigdl_jar_pair, spark_home
from iotbench.spark.logs import submit_log4j_file

ROOT = Path(__file__).resolve().parents[1]
SCALA_DIR = ROOT / "scala"
SOURCES_DIR = SCALA_DIR / "src" / "main" / "scala"
BUILD_DIR = Path(os.environ.get("IOTBENCH_BUILD", ROOT / "build")) / "scala"
JAR_PREFIX = "iotbench-scala-"

#: Main classes, as in the original's ``--class`` arguments with BigDL 2.4's ``dllib`` package level.
STREAM_CLASS = "com.intel.analytics.bigdl.dllib.models.resnet.infer_cifar_stream"
SENDER_CLASS = "com.intel.analytics.bigdl.dllib.models.resnet.send_images_cifar_stream"
IMAGENET_CLASS = "com.intel.analytics.bigdl.dllib.example.imageclassification.infer_imagenet_max"


#: pyspark's Scala compiler or BigDL's jars are missing; the message says which.
ScalaToolchainError = ToolchainError


@dataclass(frozen=True)
class Toolchain:
    """Where the compiler, Spark and BigDL jars live in this environment."""

    spark_home: Path
    compiler: tuple[Path, ...]  # scala-compiler, scala-library, scala-reflect
    spark_jars: tuple[Path, ...]
    bigdl_jars: tuple[Path, ...]  # dllib jar-with-dependencies, bigdl-core all-*.jar

    @property
    def classpath(self) -> tuple[Path, ...]:
        return self.spark_jars + self.bigdl_jars

    @property
    def scala_library(self) -> Path:
        return next(p for p in self.compiler if p.name.startswith("scala-library"))


def toolchain() -> Toolchain:
    if shutil.which("java") is None:
        raise ScalaToolchainError("java not found on PATH (BigDL 2.4 with pyspark 3.5 runs on Java 8, 11 or 17)")
    home = spark_home()
    jars = tuple(sorted((home / "jars").glob("*.jar")))
    compiler = tuple(next((j for j in jars if j.name.startswith(f"scala-{part}-")), None)
                     for part in ("compiler", "library", "reflect"))
    if None in compiler:
        raise ScalaToolchainError(f"no scala-compiler/library/reflect jars in {home / 'jars'}")
    return Toolchain(home, compiler, jars, bigdl_jar_pair())  # type: ignore[arg-type]


def sources() -> list[Path]:
    found = sorted(SOURCES_DIR.rglob("*.scala"))
    if not found:
        raise ScalaToolchainError(f"no Scala sources under {SOURCES_DIR}")
    return found


def source_hash(srcs: list[Path], tools: Toolchain) -> str:
    """Hash of what determines the jar: source paths and bytes, class-path jar names, compiler."""
    h = hashlib.sha256()
    for src in srcs:
        name = src.relative_to(SCALA_DIR) if src.is_relative_to(SCALA_DIR) else src.name
        h.update(str(name).encode() + b"\0" + src.read_bytes() + b"\0")
    for jar in (*tools.compiler, *tools.classpath):
        h.update(jar.name.encode() + b"\0")
    return h.hexdigest()[:16]


def jar_path(digest: str) -> Path:
    return BUILD_DIR / f"{JAR_PREFIX}{digest}.jar"


def compile_command(tools: Toolchain, srcs: list[Path], out: Path) -> list[str]:
    return [
        "java", "-Xss16m", "-Xmx1g", "-cp", os.pathsep.join(map(str, tools.compiler)),
        "scala.tools.nsc.Main", "-nowarn", "-usejavacp", "-target:jvm-1.8",
        "-classpath", os.pathsep.join(map(str, tools.classpath)), "-d", str(out), *map(str, srcs),
    ]


def _write_jar(classes: Path, dest: Path) -> None:
    tmp = dest.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nCreated-By: iotbench scala build\n\n")
        for f in sorted(classes.rglob("*")):
            if f.is_file():
                zf.write(f, f.relative_to(classes).as_posix())
    tmp.replace(dest)  # atomic: a concurrent reader sees no half-written jar


@contextlib.contextmanager
def _lock():
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    with open(BUILD_DIR / ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # pytest-xdist workers may build at the same time
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@dataclass(frozen=True)
class BuildResult:
    jar: Path
    built: bool  # False when the cached jar was reused
    seconds: float


def build(force: bool = False, log=None) -> BuildResult:
    """Return the jar for the current sources, compiling only when no cached jar matches."""
    tools = toolchain()
    srcs = sources()
    dest = jar_path(source_hash(srcs, tools))
    with _lock():
        if dest.is_file() and not force:
            return BuildResult(dest, False, 0.0)
        start = time.perf_counter()
        if log:
            log(f"Compiling {len(srcs)} Scala sources with {tools.compiler[0].name} (a minute or two)")
        with tempfile.TemporaryDirectory(prefix="iotbench-scalac-") as tmp:
            proc = subprocess.run(compile_command(tools, srcs, Path(tmp)), capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"scalac failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}")
            _write_jar(Path(tmp), dest)
        for old in BUILD_DIR.glob(f"{JAR_PREFIX}*.jar"):
            if old != dest:
                old.unlink(missing_ok=True)
        return BuildResult(dest, True, time.perf_counter() - start)


# --------------------------------------------------------------------------- running the jar


def submit_command(jar: Path, main_class: str, args: list[str], master: str = "local[2]",
                   driver_memory: str = "3g", conf: dict[str, str] | None = None) -> list[str]:
    """``spark-submit`` of pyspark's own Spark, with BigDL on the driver and executor class paths."""
    tools = toolchain()
    bigdl = os.pathsep.join(map(str, tools.bigdl_jars))
    cmd = [str(tools.spark_home / "bin" / "spark-submit"), "--master", master, "--driver-memory", driver_memory,
           "--jars", ",".join(map(str, tools.bigdl_jars)), "--driver-class-path", bigdl,
           "--conf", "spark.ui.enabled=false", "--conf", "spark.ui.showConsoleProgress=false",
           "--conf", f"spark.driver.extraJavaOptions=-Dlog4j2.configurationFile={log4j_config()}"]
    for key, value in (conf or {}).items():
        cmd += ["--conf", f"{key}={value}"]
    return [*cmd, "--class", main_class, str(jar), *args]


def java_command(jar: Path, main_class: str, args: list[str], heap: str = "1g") -> list[str]:
    """Plain ``java`` for the sender, which needs only Scala's library (and no Spark)."""
    tools = toolchain()
    cp = os.pathsep.join(map(str, (jar, tools.scala_library, *tools.bigdl_jars)))
    return ["java", f"-Xmx{heap}", "-cp", cp, main_class, *args]


def log4j_config() -> Path:
    """A log4j2 file that keeps Spark's console at WARN (the original's suggested set-up)."""
    return submit_log4j_file(BUILD_DIR)
