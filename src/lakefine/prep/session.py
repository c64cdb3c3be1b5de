"""Building a SparkSession: the active one if there is one (Databricks, notebooks,
tests), else a local session tuned for small machines."""

from __future__ import annotations

import os
import sys

from pyspark.sql import SparkSession

from lakefine.core.session import on_databricks


def get_spark(master: str = "local[2]") -> SparkSession:
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if on_databricks():
        return SparkSession.builder.getOrCreate()
    return local_session(master)


def local_session(master: str = "local[2]") -> SparkSession:
    # Workers must use this interpreter (it has pandas/pyarrow), not the system one.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    # Serial GC and C1-only JIT halve JVM start-up on 2 cores.
    jvm_opts = "-XX:+UseSerialGC -XX:TieredStopAtLevel=1"
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
        .getOrCreate()
    )
