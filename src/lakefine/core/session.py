"""The one module that knows where we run: local pyspark, a classic Databricks
cluster, or Spark Connect (serverless / shared access mode). It tells the kind of a
session without importing pyspark (building sessions is the Spark side's job:
``lakefine.prep.session``)."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Literal

SessionKind = Literal["local", "classic", "connect"]


def on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def session_kind(spark) -> SessionKind:
    """``connect`` for a Spark Connect session (no sparkContext, no RDDs)."""
    if type(spark).__module__.startswith("pyspark.sql.connect"):
        return "connect"
    return "classic" if on_databricks() else "local"


def configure_hf_caches(volume: str) -> None:
    """On Databricks: the datasets cache on the volume (``HF_DATASETS_CACHE``: it
    survives cluster termination), ``HF_HOME`` on local SSD, and soft file locks,
    because datasets' fcntl locks can hang on network file systems (/Volumes, /dbfs).
    A no-op in local mode. Works whether or not ``datasets`` is imported already: its
    config reads the environment once, at import, so the paths are set there too."""
    if not on_databricks():
        return
    os.environ.setdefault("HF_DATASETS_CACHE", f"{volume}/hf_cache/datasets")
    if os.path.isdir("/local_disk0"):
        os.environ.setdefault("HF_HOME", "/local_disk0/hf_home")
    import datasets.config as datasets_config  # Databricks only; the core stays light

    cache = Path(os.environ["HF_DATASETS_CACHE"])
    downloads = cache / datasets_config.DOWNLOADED_DATASETS_DIR
    datasets_config.HF_DATASETS_CACHE = cache
    datasets_config.DOWNLOADED_DATASETS_PATH = downloads
    datasets_config.EXTRACTED_DATASETS_PATH = downloads / datasets_config.EXTRACTED_DATASETS_DIR
    use_soft_file_locks()


def use_soft_file_locks() -> None:
    """Swap datasets' FileLock for filelock's SoftFileLock (a lock file, no fcntl)."""
    from filelock import SoftFileLock  # Databricks only, with datasets

    class SoftLock(SoftFileLock):
        def __init__(self, lock_file, *args, **kwargs):
            kwargs.pop("mode", None)
            super().__init__(lock_file, *args, **kwargs)

    for module in (
        "datasets.builder",
        "datasets.utils.file_utils",
        "datasets.utils.extract",
        "datasets.utils.filelock",
    ):
        importlib.import_module(module).FileLock = SoftLock
