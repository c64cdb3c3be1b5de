"""The scoring stage, DataFrame -> DataFrame: every input column, plus ``prediction``
(a struct shaped by the task), ``score_error`` (null when scored) and the lineage
columns ``model_uri``, ``model_version``, ``scored_at``. Lazy: nothing runs until
the result is written, counted or displayed, and it works on a batch or a streaming
DataFrame alike.

An iterator pandas UDF (one value in, one out: Spark itself holds the row count) over
only the text columns, so the other columns never travel to Python.
``pyspark.ml.functions.predict_batch_udf`` is not used: in pyspark 4.3 it refuses map
fields in a struct result and cuts fixed-size batches in arrival order.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator

import pandas as pd
from pyspark.sql import functions as F

from lakefine.core.config import PipelineConfig
from lakefine.core.errors import DataError
from lakefine.scoring import worker
from lakefine.scoring.model import ScoringModel

CLASSIFICATION = "struct<label: string, label_id: int, score: double, probabilities: map<string, double>>"
PREDICTION_TYPES = {
    "classification": CLASSIFICATION,
    "pair_classification": CLASSIFICATION,
    "multi_label": "struct<labels: array<string>, probabilities: map<string, double>>",
    "seq2seq": "struct<answer: string>",
}
OUTPUT_COLUMNS = ("prediction", "score_error", "model_uri", "model_version", "scored_at")
# Each Python worker appends one JSON line per model load here (pid, seconds): how many
# loads a job really paid for, e.g. when sizing partitions. Read on the driver.
LOAD_LOG_ENV = "LAKEFINE_SCORING_LOAD_LOG"
_SCORED = "__lakefine_scored"


def text_columns(config: PipelineConfig) -> dict[str, str]:
    """Config key -> input column the model reads: the text, and the pair (sentence
    pairs) or context (seq2seq) when the pipeline has one."""
    columns = {"source.text_column": config.source.text_column}
    if config.source.text_pair_column and config.task in ("pair_classification", "seq2seq"):
        columns["source.text_pair_column"] = config.source.text_pair_column
    return columns


def score_frame(df, model: ScoringModel, config: PipelineConfig):
    columns = text_columns(config)
    missing = [(key, column) for key, column in columns.items() if column not in df.columns]
    if missing:
        lines = []
        for key, column in missing:
            close = difflib.get_close_matches(column, df.columns, n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            lines.append(
                f"{key}: column {column!r} is not in the input.{hint} Columns: {', '.join(df.columns)};"
                f" set {key}=<column> (an override on the command line) to score another column"
            )
        raise DataError("\n".join(lines))
    taken = [c for c in (*OUTPUT_COLUMNS, _SCORED) if c in df.columns]
    if taken:
        raise DataError(
            f"the input already has the column(s) {', '.join(taken)} that scoring adds;"
            " drop or rename them first (e.g. score the original table, not a scored one)"
        )
    predict = _udf(model, list(columns.values()), config.score.batch_rows, config.score.batch_tokens, config)
    inputs = F.struct(*[F.col(c).cast("string").alias(f"c{i}") for i, c in enumerate(columns.values())])
    return (
        df.withColumn(_SCORED, predict(inputs))
        .withColumns(
            {
                "prediction": F.col(f"{_SCORED}.prediction"),
                "score_error": F.col(f"{_SCORED}.score_error"),
                "model_uri": F.lit(model.uri),
                "model_version": F.lit(model.version).cast("int"),
                "scored_at": F.current_timestamp(),
            }
        )
        .drop(_SCORED)
    )


def _udf(model: ScoringModel, columns: list[str], max_rows: int, max_tokens: int, config: PipelineConfig):
    # Only plain values in the closure: it is pickled to every worker (and, on Spark
    # Connect, through the server).
    path, task, threads = model.path, model.task, config.score.torch_threads
    load_log = os.environ.get(LOAD_LOG_ENV)

    def predict(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        loaded = None
        for batch in batches:
            loaded = loaded or worker.predictor(path, threads, load_log)  # once per process: cached
            yield worker.score_batch(loaded, task, batch, columns, max_rows, max_tokens)

    return F.pandas_udf(predict, f"struct<prediction: {PREDICTION_TYPES[task]}, score_error: string>")
