"""What to score: the pipeline's own source (as configured: ``source.columns`` and
``source.where`` apply), or one table, volume path or SQL query given instead, read as
it is. The text columns are the pipeline's (``source.text_column``, and
``source.text_pair_column`` for pairs and seq2seq contexts)."""

from __future__ import annotations

from lakefine.core.config import PipelineConfig, SourceConfig
from lakefine.core.errors import ConfigError

READ_AS_IS = {"where": None, "columns": {}, "hub": None, "table": None, "sql": None, "path": None}


def input_source(
    config: PipelineConfig,
    table: str | None = None,
    path: str | None = None,
    sql: str | None = None,
    incremental: bool = False,
) -> SourceConfig:
    table, path, sql = table or None, path or None, sql or None  # a job parameter left empty is ""
    given = [flag for flag, value in (("--input-table", table), ("--input-path", path), ("--input-sql", sql)) if value]
    if len(given) > 1:
        raise ConfigError(
            f"score: give at most one of --input-table, --input-path, --input-sql (got {', '.join(given)})"
        )
    source = config.source
    if table:
        if len(table.split(".")) != 3:
            raise ConfigError(f"--input-table: {table!r} is not a three-part name catalog.schema.table")
        source = source.model_copy(update={**READ_AS_IS, "table": table, "format": None, "options": {}})
    elif path:
        source = source.model_copy(update={**READ_AS_IS, "path": path, "format": None, "options": {}})
        # a directory written by Spark has no suffix to tell its format: Parquet
        source = source.model_copy(update={"format": source.file_format or "parquet"})
    elif sql:
        source = source.model_copy(update={**READ_AS_IS, "sql": sql})
    if incremental and (source.sql or source.hub):
        what = "--input-sql" if sql else "the pipeline's source.sql" if source.sql else "the pipeline's source.hub"
        raise ConfigError(
            f"--incremental: {what} cannot be read as a stream (there are no new files or rows to track);"
            " score a table or files incrementally (--input-table catalog.schema.table or --input-path"
            " /Volumes/...), or drop --incremental"
        )
    return source


def input_name(source: SourceConfig) -> str:
    return source.table or source.path or (f"sql:{source.sql}" if source.sql else f"hub:{source.hub}")
