"""Where Spark's and BigDL's jars live: the one place that looks them up.

pyspark's wheel is a complete ``SPARK_HOME`` (``bin/``, ``jars/``); BigDL 2.4's wheels ship their Scala 2.12
jars under ``bigdl/share/*/lib``.  The Python engines (driver class path, ``spark.jars``), the Scala build
(compile class path, ``spark-submit --jars``) and the converters all take them from here, so a change of
BigDL's layout is one edit.
"""

from __future__ import annotations

from pathlib import Path


class ToolchainError(FileNotFoundError):
    """pyspark, Java, the Scala compiler or BigDL's jars are missing; the message says which and how to install."""


def spark_home() -> Path:
    """The pyspark package folder, which is a complete ``SPARK_HOME`` (bin/, jars/)."""
    try:
        import pyspark
    except ImportError as err:
        raise ToolchainError("pyspark is not installed: pip install 'pyspark==3.5.9'") from err
    return Path(pyspark.__file__).resolve().parent


def bigdl_jars() -> list[str]:
    """BigDL's jars (dllib's jar-with-dependencies, bigdl-core's native ``all-*.jar``), sorted; [] without BigDL."""
    try:
        from bigdl.dllib.utils.engine import get_bigdl_jars
    except ImportError:
        return []
    return sorted(get_bigdl_jars())


def bigdl_jar_pair() -> tuple[Path, Path]:
    """BigDL dllib's jar-with-dependencies and bigdl-core's native ``all-*.jar`` (MKL), in that order.

    The Scala build needs both and refuses, with the install line, when either is missing.
    """
    jars = [Path(j) for j in bigdl_jars()]
    if not jars:
        raise ToolchainError("BigDL is not installed: pip install --no-deps 'bigdl-dllib-spark3==2.4.0' "
                             "'bigdl-core==2.4.0.dev0'")
    dllib = [j for j in jars if j.parent.parent.name == "dllib" and j.name.endswith("-jar-with-dependencies.jar")]
    core = [j for j in jars if j.parent.parent.name == "core" and j.name.startswith("all-")]
    if not dllib or not core:
        raise ToolchainError(f"BigDL jars not found (need dllib/lib/*-jar-with-dependencies.jar and "
                             f"core/lib/all-*.jar; found {', '.join(map(str, jars))})")
    return dllib[-1], core[-1]


def bigdl_spark_conf() -> dict[str, str]:
    """BigDL's own Spark properties (``spark-bigdl.conf``); {} without BigDL."""
    try:
        from bigdl.dllib.utils.engine import get_bigdl_conf
    except ImportError:
        return {}
    out = {}
    for line in Path(get_bigdl_conf()).read_text(encoding="latin-1").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            out[key] = value.strip()
    return out
