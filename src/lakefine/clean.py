"""Cleaning: pure DataFrame -> DataFrame stages.

``to_canonical`` renames the configured columns to the names every later stage
uses (text, text_pair, label, key); ``mark_unusable`` adds a ``reason`` column that
is null for usable rows. Nothing is dropped here: the caller splits used from
quarantined rows and counts both.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakefine.config import LabelConfig, SourceConfig

REPLACEMENT_CHAR = "\ufffd"  # what Spark's decoders put where bytes were not valid UTF-8


def normalize_whitespace(column: Column) -> Column:
    """Trim, and collapse every run of whitespace (incl. newlines, NBSP) to one space."""
    return F.trim(F.regexp_replace(column, r"[\s\u00a0\u2000-\u200b\u3000]+", " "))


def to_canonical(df: DataFrame, source: SourceConfig) -> DataFrame:
    """Select the configured columns under canonical names; cast labels to strings
    (integral numbers without a trailing ``.0``)."""
    label = df[source.label_column]
    if isinstance(df.schema[source.label_column].dataType, (T.FloatType, T.DoubleType, T.DecimalType)):
        label = F.when(label == F.floor(label), label.cast("long").cast("string")).otherwise(
            label.cast("string"))
    columns = [
        normalize_whitespace(df[source.text_column].cast("string")).alias("text"),
        label.cast("string").alias("label"),
    ]
    if source.text_pair_column:
        columns.append(normalize_whitespace(df[source.text_pair_column].cast("string")).alias("text_pair"))
    if source.id_column:
        columns.append(df[source.id_column].cast("string").alias("id"))
    return df.select(*columns)


def mark_unusable(df: DataFrame, labels: LabelConfig) -> DataFrame:
    """Add ``reason`` (null = usable) and apply the label case policy."""
    label = F.col("label")
    if labels.case == "normalize":
        label = F.lower(F.trim(label))
    df = df.withColumn("label", label)
    text_columns = ["text"] + (["text_pair"] if "text_pair" in df.columns else [])
    checks = []
    for name in text_columns:
        column = F.col(name)
        checks += [
            (column.isNull(), f"null_{name}"),
            (column == "", f"empty_{name}"),
            (F.instr(column, REPLACEMENT_CHAR) > 0, f"invalid_utf8_{name}"),
        ]
    checks += [(label.isNull(), "null_label"), (F.trim(label) == "", "empty_label")]
    reason = F.lit(None).cast("string")
    for condition, name in reversed(checks):
        reason = F.when(condition, F.lit(name)).otherwise(reason)
    return df.withColumn("reason", reason)


def with_key(df: DataFrame) -> DataFrame:
    """The stable key that decides the split and the row order: the id column if
    there is one, else the normalised text (so duplicates share a split)."""
    if "id" in df.columns:
        key = F.col("id")
    elif "text_pair" in df.columns:
        key = F.concat_ws("\u0001", "text", "text_pair")
    else:
        key = F.col("text")
    return df.withColumn("key", key)
