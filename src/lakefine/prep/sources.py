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
from lakefine.core.assets import bundled_dataset_for
from lakefine.core.config import RuntimeConfig, SourceConfig
from lakefine.core.errors import ConfigError, DataError
from lakefine.core.log import first_line, say
from lakefine.core.session import on_databricks
from lakefine.prep.clean import CORRUPT_RECORD
from lakefine.prep.hub import read_hub

# Real-world CSVs quote multi-line fields (review texts, SMS bodies): read them whole.
# PERMISSIVE always (the config refuses another mode): a line that cannot be parsed
# stays a row, with its raw text in the corrupt-record column, and is quarantined.
CSV_DEFAULTS = {"header": "true", "multiLine": "true", "escape": '"', "mode": "PERMISSIVE"}
JSON_DEFAULTS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_RECORD}


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
    return read_parquet(spark, location, {}, f"table {full_name}")


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
    location = check_source_exists(source, runtime)
    options = {k: str(v) for k, v in source.options.items()}
    if fmt == "parquet":
        return _not_empty(read_parquet(spark, location, options, f"source.path {source.path}"), source.path)
    if fmt == "csv":
        reader = spark.read.options(**{**CSV_DEFAULTS, **options}).csv
    elif fmt == "json":  # one JSON document (usually an array) per file
        reader = spark.read.options(**{**JSON_DEFAULTS, "multiLine": "true", **options}).json
    elif fmt == "jsonl":
        reader = spark.read.options(**{**JSON_DEFAULTS, **options}).json
    else:  # text: one row per line, in a column named value
        reader = spark.read.options(**options).text
    df = _analysed(lambda: reader(str(location)), f"source.path {source.path}")
    corrupt = options.get("columnNameOfCorruptRecord", CORRUPT_RECORD)
    if fmt in ("json", "jsonl") and corrupt != CORRUPT_RECORD and corrupt in df.columns:
        df = df.withColumnRenamed(corrupt, CORRUPT_RECORD)
    if CORRUPT_RECORD in df.columns and len(df.columns) == 1:
        raise DataError(
            f"source.path {source.path}: no row could be parsed as {fmt}; check source.format and source.options"
        )
    df = _not_empty(df, source.path)
    if fmt == "csv":
        df = _with_corrupt_record(spark, df, {**CSV_DEFAULTS, **options}, location, source.path)
    return df


def _not_empty(df, path: str):
    if not df.columns:
        raise DataError(
            f"source.path {path}: the files are empty; check source.path"
            " points at the data files (and the export that wrote them)"
        )
    return df


def check_source_exists(source: SourceConfig, runtime: RuntimeConfig) -> Path | None:
    """The local location of ``source.path``; a missing one is a DataError that names
    the ``lakefine stage-data`` command when it is a bundled dataset's place. Cheap:
    ``prepare`` calls it before starting Spark."""
    if not source.path:
        return None
    location = paths.resolve(source.path, runtime.local_root, key="source.path")
    if not location.exists():
        bundled = bundled_dataset_for(source.path)
        stage = (
            f"; it is where `lakefine stage-data {bundled}` puts a bundled dataset: run that first" if bundled else ""
        )
        raise DataError(f"source.path: nothing at {source.path} (local: {location}){stage}{_nearby(location)}")
    return location


# ---------------------------------------------------------------- Parquet: one type per column

_INTEGERS = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32")
_NUMBERS = (*_INTEGERS, "halffloat", "float", "double", "uint64")
_SCALARS = (*_NUMBERS, "string", "large_string", "bool")


def read_parquet(spark, location: Path, options: dict, what: str):
    """Read Parquet files whose schemas may differ. Spark reads every file with the
    schema of one of them, so a column that is int64 in one file and string in another
    fails inside a task. The footers are read first (pyarrow, no data); a column with
    several scalar types is read per group of files and cast to one type, the stated
    policy: all integers -> bigint, all numbers -> double, otherwise string (numeric
    labels then get one spelling in cleaning). Any other mix (a struct in one file, a
    string in another) is one DataError naming the column, the types and two files."""
    groups = _schema_groups(location)
    drift = _drifting_columns(groups)
    if not drift:
        return _analysed(lambda: spark.read.options(**options).parquet(str(location)), what)
    problems, casts = [], {}
    for column, by_type in drift.items():
        types = sorted(by_type)
        example = [
            f"{by_type[t][0].relative_to(location) if location.is_dir() else by_type[t][0].name} ({t})" for t in types
        ]
        if not all(t in _SCALARS for t in types):
            problems.append(
                f"{what}: column {column!r} has the types {', '.join(types)} in different files"
                f" (e.g. {example[0]} and {example[1]}); write the files with one type for it"
                f" (e.g. df.withColumn({column!r}, F.col({column!r}).cast('string'))), or read only"
                " the files of one kind with source.path"
            )
            continue
        cast = (
            "bigint"
            if all(t in _INTEGERS for t in types)
            else "double"
            if all(t in _NUMBERS for t in types)
            else "string"
        )
        casts[column] = cast
        say(
            f"prepare: {what}: column {column!r} has the types {', '.join(types)} in different files"
            f" (e.g. {example[0]} and {example[1]}): read as {cast}"
        )
    if problems:
        raise DataError("\n".join(problems))
    parts = []
    reader = (
        spark.read.options(**{"basePath": str(location), **options})
        if location.is_dir()
        else spark.read.options(**options)
    )
    for files in groups.values():
        part = _analysed(lambda files=files: reader.parquet(*[str(f) for f in files]), what)
        parts.append(part.withColumns({c: F.col(c).cast(t) for c, t in casts.items() if c in part.columns}))
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part, allowMissingColumns=True)
    return union


def _schema_groups(location: Path) -> dict[tuple, list[Path]]:
    """Parquet files grouped by their schema ((column, arrow type) pairs), from the footers."""
    import pyarrow.parquet as pq  # footers only

    files = (
        [location]
        if location.is_file()
        else sorted(
            p
            for p in location.rglob("*")
            if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(location).parts)
        )
    )
    groups: dict[tuple, list[Path]] = {}
    for file in files:
        try:
            schema = pq.read_schema(file)
        except Exception:  # not a Parquet file (a stray README): Spark will say so
            continue
        key = tuple((field.name, str(field.type)) for field in schema)
        groups.setdefault(key, []).append(file)
    return groups


def _drifting_columns(groups: dict[tuple, list[Path]]) -> dict[str, dict[str, list[Path]]]:
    types: dict[str, dict[str, list[Path]]] = {}
    for schema, files in groups.items():
        for column, arrow_type in schema:
            types.setdefault(column, {}).setdefault(arrow_type, []).extend(files)
    return {column: by_type for column, by_type in types.items() if len(by_type) > 1}


def _with_corrupt_record(spark, df, options: dict, location: Path, path: str):
    """Re-read a CSV with Spark's corrupt-record column, so a line that cannot be parsed
    (too many fields, an unclosed quote) stays a row with its raw text and is quarantined
    (reason malformed_row) instead of being silently cut or dropped. The header read
    above gives the column names (and types, with inferSchema)."""
    name = options.get("columnNameOfCorruptRecord", CORRUPT_RECORD)
    if name in df.columns:
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
