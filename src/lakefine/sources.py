"""Reading the labelled rows: the I/O edge of preparation.

A source is a UC table (a local Parquet directory in local mode), a SQL query
(``{name}`` placeholders bound to tables), files under a volume, or a DataFrame
handed in from Python. Every failure becomes a DataError/ConfigError that names
the table, path or column and the fix.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from lakefine import paths
from lakefine.config import RuntimeConfig, SourceConfig
from lakefine.errors import ConfigError, DataError
from lakefine.session import on_databricks

# Real-world CSVs quote multi-line fields (review texts, SMS bodies): read them whole.
CSV_DEFAULTS = {"header": "true", "multiLine": "true", "escape": '"', "mode": "PERMISSIVE"}


def read_source(spark, source: SourceConfig, runtime: RuntimeConfig):
    """Return the raw DataFrame the config points at, with ``source.where`` applied."""
    if source.table:
        df = read_table(spark, source.table, runtime)
    elif source.sql:
        df = _read_sql(spark, source, runtime)
    else:
        df = _read_files(spark, source, runtime)
    if source.where:
        df = _analysed(lambda: df.where(source.where), f"source.where {source.where!r}")
    return df


def read_table(spark, full_name: str, runtime: RuntimeConfig):
    if on_databricks():
        return _analysed(lambda: spark.table(full_name), f"table {full_name}",
                         fix="check the name and that you have SELECT on it")
    location = paths.table_location(full_name, runtime.local_root)
    if not location.exists():
        raise DataError(
            f"table {full_name} not found: in local mode it is the Parquet directory {location};"
            " write it there (df.write.parquet) or point source.path at your files"
        )
    return spark.read.parquet(str(location))


def write_local_table(df, full_name: str, runtime: RuntimeConfig) -> Path:
    """Local mode: save a DataFrame where ``source.table`` will find it."""
    location = paths.table_location(full_name, runtime.local_root)
    df.write.mode("overwrite").parquet(str(location))
    return location


def _read_sql(spark, source: SourceConfig, runtime: RuntimeConfig):
    bound = {}
    for name, table in (source.tables).items():
        bound[name] = read_table(spark, table, runtime)
    return _analysed(lambda: spark.sql(source.sql, **bound), "source.sql",
                     fix="bind tables as {name} with source.tables: {name: catalog.schema.table}")


def _read_files(spark, source: SourceConfig, runtime: RuntimeConfig):
    fmt = source.file_format
    if fmt is None:
        raise ConfigError(
            f"source.format: cannot tell the format of {source.path!r}; set source.format to one"
            " of csv, json, jsonl, parquet"
        )
    location = paths.resolve(source.path, runtime.local_root, key="source.path")
    if not location.exists():
        raise DataError(f"source.path: nothing at {source.path} (local: {location}){_nearby(location)}")
    options = {k: str(v) for k, v in source.options.items()}
    if fmt == "csv":
        reader = spark.read.options(**{**CSV_DEFAULTS, **options}).csv
    elif fmt == "json":  # one JSON document (usually an array) per file
        reader = spark.read.options(**{"multiLine": "true", **options}).json
    elif fmt == "jsonl":
        reader = spark.read.options(**options).json
    else:
        reader = spark.read.options(**options).parquet
    df = _analysed(lambda: reader(str(location)), f"source.path {source.path}")
    if "_corrupt_record" in df.columns and len(df.columns) == 1:
        raise DataError(
            f"source.path {source.path}: no row could be parsed as {fmt}; check source.format"
            " and source.options"
        )
    if not df.columns:
        raise DataError(f"source.path {source.path}: the files are empty")
    return df


def require_columns(df, needed: dict[str, str | None]) -> None:
    """``needed`` maps config keys (``source.text_column``) to column names."""
    available = df.columns
    problems = []
    for key, column in needed.items():
        if column is None or column in available:
            continue
        close = difflib.get_close_matches(column, available, n=1, cutoff=0.5)
        if not close:
            lowered = {c.lower(): c for c in available}
            close = [lowered[column.lower()]] if column.lower() in lowered else []
        hint = f" Did you mean {close[0]!r}?" if close else ""
        problems.append(
            f"{key}: column {column!r} is not in the source.{hint} Columns: {', '.join(available)}"
        )
    if problems:
        raise DataError("\n".join(problems))


def _nearby(location: Path) -> str:
    parent = location.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    entries = sorted(p.name for p in parent.iterdir())[:10] if parent.is_dir() else []
    close = difflib.get_close_matches(location.name, entries, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} ({parent} holds: {', '.join(entries) or 'nothing'})"


def _analysed(build, what: str, fix: str = "check the name and the syntax"):
    """Run a reader/transform and turn Spark's analysis errors into a DataError."""
    from pyspark.errors import PySparkException

    try:
        return build()
    except PySparkException as exc:
        first_line = str(exc).strip().splitlines()[0][:300]
        raise DataError(f"{what}: Spark could not read it: {first_line}; {fix}") from None
