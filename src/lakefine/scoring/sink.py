"""Writing the scores: the I/O edge of scoring, and the row accounting.

Batch: the output is replaced (a full rescore). Incremental: the input is read as a
stream (``prep.sources.read_stream``), run with an ``availableNow`` trigger and a
checkpoint on the volume, and appended, so a rerun scores only the files (Delta: the
rows) that arrived since; the file sink's metadata log and the checkpoint make each
input row land exactly once, even when a run is killed mid-way. Locally tables and
volume paths are Parquet directories (``core.paths``); on Databricks they are Delta.

Rows are never lost: rows out = rows in, checked after every write and reported with
the ``score_error`` counts.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from pyspark.errors import PySparkException

from lakefine.core import paths
from lakefine.core.config import PipelineConfig
from lakefine.core.errors import ConfigError, DataError
from lakefine.core.log import first_line, say
from lakefine.core.session import on_databricks


@dataclass(frozen=True)
class Output:
    table: str | None
    path: str | None

    @classmethod
    def of(cls, table: str | None, path: str | None) -> Output:
        table, path = table or None, path or None  # a job parameter left empty is ""
        if bool(table) == bool(path):
            raise ConfigError(
                "score: give exactly one of --output-table catalog.schema.table or --output-path /Volumes/..."
            )
        if table and len(table.split(".")) != 3:
            raise ConfigError(f"--output-table: {table!r} is not a three-part name catalog.schema.table")
        if path:
            paths.parse_volume_path(path, "--output-path")
        return cls(table, path)

    @property
    def name(self) -> str:
        return self.table or self.path

    def location(self, config: PipelineConfig) -> Path:
        if self.table:
            return paths.table_location(self.table, config.runtime.local_root)
        return paths.resolve(self.path, config.runtime.local_root, key="--output-path")

    @property
    def format(self) -> str:
        return "delta" if on_databricks() else "parquet"


def checkpoint_dir(config: PipelineConfig, input_name: str, output: Output) -> Path:
    """One checkpoint per (pipeline, input, output): another input or output starts its
    own stream. The model is not part of it: a new champion scores only new rows."""
    digest = hashlib.sha256(f"{input_name}\0{output.name}".encode()).hexdigest()[:12]
    return paths.resolve(
        f"{config.runtime.volume}/scoring/checkpoints/{config.name}/{digest}", config.runtime.local_root
    )


def write_batch(spark, input_df, scored, output: Output, config: PipelineConfig) -> dict:
    started = time.perf_counter()
    rows_in = _spark("count the input rows", input_df.count)
    writer = scored.write.mode("overwrite").format(output.format)
    if output.table and on_databricks():
        _spark(f"write {output.name}", writer.saveAsTable, output.table)
    else:
        _spark(f"write {output.name}", writer.save, str(output.location(config)))
    rows_out, errors = _tally(spark, output, config)
    return _accounted(rows_in, rows_out, errors, output, started, {"mode": "batch"})


def write_incremental(spark, scored, input_name: str, output: Output, config: PipelineConfig) -> dict:
    started = time.perf_counter()
    checkpoint = checkpoint_dir(config, input_name, output)
    rows_before, errors_before = _tally(spark, output, config)
    writer = (
        scored.writeStream.format(output.format)
        .outputMode("append")
        .option("checkpointLocation", str(checkpoint))
        .trigger(availableNow=True)
    )
    if output.table and on_databricks():
        query = _spark(f"start the stream into {output.name}", writer.toTable, output.table)
    else:
        query = _spark(f"start the stream into {output.name}", writer.start, str(output.location(config)))
    _spark(f"score the new input into {output.name}", query.awaitTermination)
    progress = list(query.recentProgress)
    rows_after, errors_after = _tally(spark, output, config)
    rows_out = rows_after - rows_before
    # recentProgress keeps the last spark.sql.streaming.numRecentProgressUpdates (100)
    # micro-batches: with more, only the sink's count is complete.
    kept = int(spark.conf.get("spark.sql.streaming.numRecentProgressUpdates", "100"))
    rows_in = sum(int(p["numInputRows"]) for p in progress) if len(progress) < kept else rows_out
    errors = {k: v - errors_before.get(k, 0) for k, v in errors_after.items() if v - errors_before.get(k, 0)}
    extra = {"mode": "incremental", "checkpoint": str(checkpoint), "micro_batches": len(progress)}
    summary = _accounted(rows_in, rows_out, errors, output, started, extra)
    summary["output_rows_total"] = rows_after
    return summary


def _accounted(rows_in: int, rows_out: int, errors: dict, output: Output, started: float, extra: dict) -> dict:
    if rows_out != rows_in:
        raise DataError(
            f"score: {rows_in:,} rows in but {rows_out:,} rows written to {output.name}; scoring never drops"
            " rows: look for another job writing to the same output, and rerun"
        )
    seconds = time.perf_counter() - started
    say(
        f"score: {rows_in:,} rows in, {rows_out:,} rows out to {output.name}"
        f" ({sum(errors.values()):,} with a score_error) in {seconds:.1f} s"
    )
    return {
        "output": output.name,
        "rows_in": rows_in,
        "rows_out": rows_out,
        "score_errors": errors,
        "seconds": round(seconds, 2),
        **extra,
    }


def _tally(spark, output: Output, config: PipelineConfig) -> tuple[int, dict]:
    """Rows in the output and rows per ``score_error``, in one aggregation (a file
    sink is read through its metadata log: only committed files count)."""
    try:
        if output.table and on_databricks():
            written = spark.table(output.table)
        else:
            location = output.location(config)
            if not location.exists():
                return 0, {}
            written = spark.read.format(output.format).load(str(location))
        counts = written.groupBy("score_error").count().collect()
    except PySparkException as exc:
        if output.table and on_databricks() and "TABLE_OR_VIEW_NOT_FOUND" in str(exc):
            return 0, {}  # the first incremental run creates it
        raise DataError(f"score: could not read {output.name} back: {first_line(exc, 300)}") from None
    return sum(r["count"] for r in counts), {r["score_error"]: r["count"] for r in counts if r["score_error"]}


def _spark(what: str, call, *args):
    """A Spark failure (a worker error, a bad path) as one DataError line, not a JVM trace."""
    try:
        return call(*args)
    except PySparkException as exc:
        raise DataError(f"score: could not {what}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    """The Python worker's own error when there is one (the last line of its traceback),
    else the first line of Spark's message."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error:" in line and not line.startswith(("at ", "File ")) and "PythonException" not in line:
            return line[:300]
    return first_line(exc, 300)
