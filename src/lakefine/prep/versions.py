"""The version of the source data, known without reading it: the Delta table version
from the table's history on Databricks, the file listing (names, sizes, modification
times) of files under a volume and of local tables. Lets an unchanged source be a
cache hit before any Spark job runs; the content digest in ``prepare`` stays the final
word when the version is unknown (a DataFrame, a hub dataset, a view)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from pyspark.sql import SparkSession

from lakefine.core import paths
from lakefine.core.config import RuntimeConfig, SourceConfig
from lakefine.core.session import on_databricks


def delta_version(history_rows) -> int | None:
    """The newest version in ``DESCRIBE HISTORY`` rows (dicts or Rows with a
    ``version`` field); None when there is no history (not a Delta table)."""
    versions = []
    for row in history_rows or []:
        value = row["version"] if not hasattr(row, "asDict") else row.asDict().get("version")
        if value is not None:
            versions.append(int(value))
    return max(versions) if versions else None


def file_listing(location: Path) -> str | None:
    """A digest of every data file's relative path, size and mtime under ``location``."""
    if not location.exists():
        return None
    files = (
        [location]
        if location.is_file()
        else sorted(p for p in location.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
    )
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        digest.update(f"{file.relative_to(location.parent)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def table_version(session: Callable[[], SparkSession], full_name: str, runtime: RuntimeConfig) -> str | None:
    if on_databricks():
        try:
            version = delta_version(session().sql(f"DESCRIBE HISTORY {full_name} LIMIT 1").collect())
        except Exception:  # a view or a non-Delta table has no history: no shortcut
            return None
        return None if version is None else f"delta:{full_name}@{version}"
    listing = file_listing(paths.table_location(full_name, runtime.local_root))
    return None if listing is None else f"files:{listing}"


def source_version(session: Callable[[], SparkSession], source: SourceConfig, runtime: RuntimeConfig) -> str | None:
    """None when the version cannot be known without reading the data. ``session()``
    gives the SparkSession, started only when a Delta history is needed: a file listing
    needs none, so an unchanged file source is a cache hit without starting Spark."""
    if source.table:
        return table_version(session, source.table, runtime)
    if source.sql:
        parts = [table_version(session, table, runtime) for table in source.tables.values()]
        return None if not parts or None in parts else "sql:" + ",".join(parts)
    if source.path:
        listing = file_listing(paths.resolve(source.path, runtime.local_root, key="source.path"))
        return None if listing is None else f"files:{listing}"
    return None
