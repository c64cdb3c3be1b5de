"""The one module that knows where we run: local pyspark, a classic Databricks
cluster, or Spark Connect (serverless / shared access mode)."""

from __future__ import annotations

import os
import sys
from typing import Literal

SessionKind = Literal["local", "classic", "connect"]


def on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def session_kind(spark) -> SessionKind:
    """``connect`` for a Spark Connect session (no sparkContext, no RDDs)."""
    try:
        from pyspark.sql.connect.session import SparkSession as ConnectSession
    except ImportError:  # pyspark without the connect extra
        ConnectSession = ()
    if ConnectSession and isinstance(spark, ConnectSession):
        return "connect"
    return "classic" if on_databricks() else "local"


def get_spark(master: str = "local[2]"):
    """The active session if there is one (Databricks, notebooks, tests), else a
    local session tuned for small machines."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if on_databricks():
        return SparkSession.builder.getOrCreate()
    return local_session(master)


def local_session(master: str = "local[2]"):
    from pyspark.sql import SparkSession

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


def configure_hf_caches(volume: str) -> None:
    """On Databricks: the datasets cache on the volume (``HF_DATASETS_CACHE``: it
    survives cluster termination), ``HF_HOME`` on local SSD, and soft file locks,
    because datasets' fcntl locks can hang on network file systems (/Volumes, /dbfs).
    Must run before ``datasets`` is imported; a no-op in local mode."""
    if not on_databricks():
        return
    os.environ.setdefault("HF_DATASETS_CACHE", f"{volume}/hf_cache/datasets")
    if os.path.isdir("/local_disk0"):
        os.environ.setdefault("HF_HOME", "/local_disk0/hf_home")
    use_soft_file_locks()


def use_soft_file_locks() -> None:
    """Swap datasets' FileLock for filelock's SoftFileLock (a lock file, no fcntl)."""
    import importlib

    from filelock import SoftFileLock

    class SoftLock(SoftFileLock):
        def __init__(self, lock_file, *args, **kwargs):
            kwargs.pop("mode", None)
            super().__init__(lock_file, *args, **kwargs)

    for module in ("datasets.builder", "datasets.utils.file_utils", "datasets.utils.extract",
                   "datasets.utils.filelock"):
        importlib.import_module(module).FileLock = SoftLock
