"""Everything about the JVM, Spark and BigDL in one package: the rules each path used to keep its own copy of.

- :mod:`~iotbench.spark.jars`: where ``SPARK_HOME`` and Spark's and BigDL's jars are;
- :mod:`~iotbench.spark.env`: the Python interpreter for Spark, loopback, MKL switches, for pyspark and for
  ``spark-submit``;
- :mod:`~iotbench.spark.logs`: log4j2 files and the filter on the driver JVM's chatter;
- :mod:`~iotbench.spark.context`: settings, Spark properties, masters, contexts and sessions, JVM errors as one line;
- :mod:`~iotbench.spark.cluster`: the standalone cluster launcher.

The names below are re-exported so callers write ``from iotbench.spark import start``; nothing here imports
pyspark or BigDL until a function needs them.  Why each rule exists: ``docs/bigdl.md``.
"""

from iotbench.spark.cluster import StandaloneCluster, free_port, process_groups_alive
from iotbench.spark.context import (
    BIGDL_ENGINES,
    DEFAULT_MASTER,
    MASTER_HINT,
    SparkSettings,
    _python_error,
    check_master,
    java_error_line,
    run_with_timeout,
    spark_conf_items,
    sql_session,
    start,
    stop,
    validate_master,
)
from iotbench.spark.env import cpu_vendor, mkl_cpu_env, prepare_environment, submit_env
from iotbench.spark.jars import ToolchainError, bigdl_jar_pair, bigdl_jars, spark_home
from iotbench.spark.logs import JVM_CHATTER, LOG_LEVELS, QUIET_LEVELS, JvmOutputFilter, log4j_file

__all__ = [
    "BIGDL_ENGINES", "DEFAULT_MASTER", "JVM_CHATTER", "LOG_LEVELS", "MASTER_HINT", "QUIET_LEVELS", "JvmOutputFilter",
    "SparkSettings", "StandaloneCluster", "ToolchainError", "_python_error", "bigdl_jar_pair", "bigdl_jars",
    "check_master", "cpu_vendor", "free_port", "java_error_line", "log4j_file", "mkl_cpu_env",
    "prepare_environment", "process_groups_alive", "run_with_timeout", "spark_conf_items", "spark_home",
    "sql_session", "start", "stop", "submit_env", "validate_master",
]
