"""Building a SparkSession: the active one if there is one (Databricks, notebooks,
tests), else a local session tuned for small machines."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from pyspark.sql import SparkSession

from lakefine.core.session import on_databricks

# A class-data-sharing archive of the classes a local prepare loads, kept in the
# environment that holds pyspark (scripts/bootstrap.sh builds it): the JVM maps them
# instead of loading and verifying them one by one. Only ever read here, and only a
# finished archive is moved to this name (a truncated one would crash the JVM).
CLASS_ARCHIVE = Path(sys.prefix) / "lakefine-spark-classes.jsa"


def get_spark(master: str = "local[2]") -> SparkSession:
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if on_databricks():
        return SparkSession.builder.getOrCreate()
    return local_session(master)


def local_java_options(class_archive: Path | None = CLASS_ARCHIVE) -> str:
    """JVM options of a local driver: serial GC and C1-only JIT halve JVM start-up on
    2 cores; the class archive, when there is one, saves another ~5 CPU seconds."""
    options = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"
    if class_archive is not None and class_archive.is_file():
        options += f" -XX:SharedArchiveFile={class_archive}"
    return options


def local_session(master: str = "local[2]", java_options: str | None = None) -> SparkSession:
    # Workers must use this interpreter (it has pandas/pyarrow), not the system one.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    jvm_opts = local_java_options() if java_options is None else java_options
    return (
        SparkSession.builder.master(master)
        .appName("lakefine")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "4")
        .config("spark.driver.extraJavaOptions", jvm_opts)
        .config("spark.executor.extraJavaOptions", jvm_opts)
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.python.worker.reuse", "true")
        .config("spark.python.daemon.module", "lakefine.prep.worker_daemon")
        .getOrCreate()
    )
