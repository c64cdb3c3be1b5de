"""Reading the labelled rows: the I/O edge of preparation.

A source is a UC table (a local Parquet directory in local mode), a SQL query
(``{name}`` placeholders bound to tables), files under a volume, or a DataFrame
handed in from Python. Every failure becomes a DataError/ConfigError that names
the table, path or column and the fix.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from pyspark.errors import PySparkException
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakefine.core import paths
from lakefine.core.config import RuntimeConfig, SourceConfig
from lakefine.core.errors import ConfigError, DataError
from lakefine.core.log import first_line
from lakefine.core.session import on_databricks
from lakefine.prep.clean import CORRUPT_RECORD
from lakefine.prep.hub import read_hub

# Real-world CSVs quote multi-line fields (review texts, SMS bodies): read them whole.
CSV_DEFAULTS = {"header": "true", "multiLine": "true", "escape": '"', "mode": "PERMISSIVE"}


def read_source(spark, source: SourceConfig, runtime: RuntimeConfig):
    """Return the raw DataFrame the config points at, with ``source.where`` applied."""
    if source.table:
        df = read_table(spark, source.table, runtime)
    elif source.sql:
        df = _read_sql(spark, source, runtime)
    elif source.hub:
        df = read_hub(spark, source, runtime)
    else:
        df = _read_files(spark, source, runtime)
    return _derived_and_filtered(df, source)


def read_stream(spark, source: SourceConfig, runtime: RuntimeConfig, max_files_per_trigger: int | None = None):
    """The same source read as a stream, for incremental scoring: a table (a Delta
    table on Databricks, locally its Parquet directory) or files under a volume, with
    ``source.columns`` and ``source.where`` applied as in ``read_source``. A file
    stream needs its schema up front: it is taken from a batch read of what is there
    now (which also gives the same errors for a bad path or table)."""
    if source.sql or source.hub:
        kind = "source.sql" if source.sql else "source.hub"
        raise ConfigError(
            f"--incremental: a {kind} input cannot be read as a stream; give a table or files"
            " (--input-table catalog.schema.table or --input-path /Volumes/...), or score without --incremental"
        )
    options = {"maxFilesPerTrigger": str(max_files_per_trigger)} if max_files_per_trigger else {}
    if source.table and on_databricks():
        df = _analysed(lambda: spark.readStream.options(**options).table(source.table), f"table {source.table}")
        return _derived_and_filtered(df, source)
    if source.table:
        batch = read_table(spark, source.table, runtime)
        location, fmt, reader_options = paths.table_location(source.table, runtime.local_root), "parquet", {}
    else:
        batch = _read_files(spark, source, runtime)
        location = paths.resolve(source.path, runtime.local_root, key="source.path")
        fmt = {"jsonl": "json"}.get(source.file_format, source.file_format)
        reader_options = {k: str(v) for k, v in source.options.items()}
        if fmt == "csv":
            reader_options = {**CSV_DEFAULTS, **reader_options}
            if CORRUPT_RECORD in batch.columns:
                reader_options["columnNameOfCorruptRecord"] = CORRUPT_RECORD
        elif fmt == "json" and source.file_format == "json":
            reader_options = {"multiLine": "true", **reader_options}
    reader = spark.readStream.format(fmt).options(**reader_options, **options).schema(batch.schema)
    df = _analysed(lambda: reader.load(str(location)), f"source {source.table or source.path} (as a stream)")
    return _derived_and_filtered(df, source)


def _derived_and_filtered(df, source: SourceConfig):
    if source.columns:
        derived = [F.expr(str(expression)).alias(name) for name, expression in source.columns.items()]
        df = _analysed(lambda: df.select("*", *derived), f"source.columns {source.columns!r}")
    if source.where:
        df = _analysed(lambda: df.where(source.where), f"source.where {source.where!r}")
    return df


def read_table(spark, full_name: str, runtime: RuntimeConfig):
    if on_databricks():
        return _analysed(
            lambda: spark.table(full_name), f"table {full_name}", fix="check the name and that you have SELECT on it"
        )
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
    return _analysed(
        lambda: spark.sql(source.sql, **bound),
        "source.sql",
        fix="bind tables as {name} with source.tables: {name: catalog.schema.table}",
    )


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
    elif fmt == "text":  # one row per line, in a column named value
        reader = spark.read.options(**options).text
    else:
        reader = spark.read.options(**options).parquet
    df = _analysed(lambda: reader(str(location)), f"source.path {source.path}")
    if CORRUPT_RECORD in df.columns and len(df.columns) == 1:
        raise DataError(
            f"source.path {source.path}: no row could be parsed as {fmt}; check source.format and source.options"
        )
    if not df.columns:
        raise DataError(
            f"source.path {source.path}: the files are empty; check source.path"
            " points at the data files (and the export that wrote them)"
        )
    if fmt == "csv":
        df = _with_corrupt_record(spark, df, {**CSV_DEFAULTS, **options}, location, source.path)
    return df


def _with_corrupt_record(spark, df, options: dict, location: Path, path: str):
    """Re-read a CSV with Spark's corrupt-record column, so a line that cannot be parsed
    (too many fields, an unclosed quote) stays a row with its raw text and is quarantined
    (reason malformed_row) instead of being silently cut or dropped. The header read
    above gives the column names (and types, with inferSchema)."""
    name = options.get("columnNameOfCorruptRecord", CORRUPT_RECORD)
    if options.get("mode", "PERMISSIVE").upper() != "PERMISSIVE" or name in df.columns:
        return df
    schema = T.StructType(df.schema.fields + [T.StructField(name, T.StringType(), True)])
    reader = spark.read.options(**{**options, "columnNameOfCorruptRecord": name}).schema(schema)
    df = _analysed(lambda: reader.csv(str(location)), f"source.path {path}")
    return df.withColumnRenamed(name, CORRUPT_RECORD) if name != CORRUPT_RECORD else df


def require_columns(df, needed: dict[str, str | None], arrays_ok: tuple[str, ...] = ()) -> None:
    """``needed`` maps config keys (``source.text_column``) to column names; the keys in
    ``arrays_ok`` may be array columns (multi-label labels)."""
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
        problems.append(f"{key}: column {column!r} is not in the source.{hint} Columns: {', '.join(available)}")
    problems += _unusable_types(df, {k: c for k, c in needed.items() if c is not None and c in available}, arrays_ok)
    if problems:
        raise DataError("\n".join(problems))


def _unusable_types(df, needed: dict[str, str], arrays_ok: tuple[str, ...] = ()) -> list[str]:
    """Text, label and id columns must hold scalars: a map/array/struct/variant or a
    void (all-null, e.g. ``F.lit(None)``) column cannot become text or a class name.
    Columns that are not configured are never looked at (they are not carried)."""
    problems = []
    for key, column in needed.items():
        data_type = df.schema[column].dataType
        if isinstance(data_type, T.NullType):
            problems.append(
                f"{key}: column {column!r} has type void (every value is null, e.g. F.lit(None));"
                f" point {key} at the column that holds the values, or cast it to a string"
            )
        elif isinstance(data_type, T.ArrayType) and key in arrays_ok:
            continue
        elif isinstance(data_type, (T.MapType, T.ArrayType, T.StructType, T.VariantType)):
            problems.append(
                f"{key}: column {column!r} has type {data_type.simpleString()}, not a string or"
                f" number; point {key} at a scalar column, or extract one with source.sql"
                f" (e.g. SELECT {column}['key'] AS {column}_value ...)"
            )
    return problems


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
    try:
        df = build()
        df.isStreaming  # noqa: B018 -- Spark Connect analyses lazily (and reuses cached schemas): force it here
        return df
    except PySparkException as exc:
        raise DataError(f"{what}: Spark could not read it: {first_line(exc, 300)}; {fix}") from None
