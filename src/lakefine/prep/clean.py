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

from lakefine.core.config import LabelConfig, SourceConfig
from lakefine.core.errors import DataError

REPLACEMENT_CHAR = "\ufffd"  # what Spark's decoders put where bytes were not valid UTF-8
# Spark's column for lines a CSV/JSON reader could not parse (PERMISSIVE mode); the
# raw line is kept and the row quarantined as malformed_row.
CORRUPT_RECORD = "_corrupt_record"
# Mojibake: UTF-8 text decoded as Latin-1/cp1252. Policy: detect and quarantine
# (reason mojibake_<column>), never guess a repair. The rule matches the tell-tale
# pairs: "Ã" or "Â" followed by a Latin-1 continuation character (U+0080-U+00BF:
# "Ã©" for é, "Â°" for °), "Ã" followed by a cp1252 rendering of bytes 0x80-0x9F
# ("Ã‰" for É, "ÃŸ" for ß), and "â€"/"â\x80" (UTF-8 punctuation such as ’ “ – …).
# Legitimate text almost never contains these pairs; other scripts are not covered.
_CP1252_HIGH = "\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122"
MOJIBAKE_PATTERN = f"[\u00c2\u00c3][\u0080-\u00bf]|\u00c3[{_CP1252_HIGH}]|\u00e2[\u20ac\u0080]"


def normalize_whitespace(column: Column) -> Column:
    """Trim, and collapse every run of whitespace (incl. newlines, NBSP) to one space."""
    return F.trim(F.regexp_replace(column, r"[\s\u00a0\u2000-\u200b\u3000]+", " "))


def to_canonical(df: DataFrame, source: SourceConfig, task: str = "classification") -> DataFrame:
    """Select the configured columns under canonical names; cast labels to strings
    (integral numbers without a trailing ``.0``). For multi_label the label column is
    an array: ``labels`` holds its distinct, trimmed values and ``label`` their sorted
    join (one string per label set, for counting and conflict checks)."""
    label = df[source.label_column]
    labels_column = None
    if task == "multi_label":
        if not isinstance(df.schema[source.label_column].dataType, T.ArrayType):
            raise DataError(
                f"source.label_column: column {source.label_column!r} is"
                f" {df.schema[source.label_column].dataType.simpleString()}; task multi_label needs"
                " array<string> labels (build one with source.columns, e.g. split(tags, ','))"
            )
        values = F.array_distinct(
            F.filter(
                F.transform(label, lambda x: normalize_whitespace(x.cast("string"))),
                lambda x: x.isNotNull() & (x != ""),
            )
        )
        labels_column = F.when(label.isNull(), F.lit(None)).otherwise(F.array_sort(values)).alias("labels")
        label = F.array_join(F.array_sort(values), "\u0001")
        label = F.when(df[source.label_column].isNull(), F.lit(None)).otherwise(label)
    if isinstance(df.schema[source.label_column].dataType, (T.FloatType, T.DoubleType, T.DecimalType)):
        label = F.when(label == F.floor(label), label.cast("long").cast("string")).otherwise(label.cast("string"))
        if not isinstance(df.schema[source.label_column].dataType, T.DecimalType):
            label = F.when(F.isnan(df[source.label_column]), F.lit(None)).otherwise(label)  # pandas' NaN = missing
    columns = [
        normalize_whitespace(df[source.text_column].cast("string")).alias("text"),
        label.cast("string").alias("label"),
    ]
    if labels_column is not None:
        columns.append(labels_column)
    if source.text_pair_column:
        columns.append(normalize_whitespace(df[source.text_pair_column].cast("string")).alias("text_pair"))
    if source.id_column:
        columns.append(df[source.id_column].cast("string").alias("id"))
    if CORRUPT_RECORD in df.columns:
        columns.append(df[CORRUPT_RECORD].cast("string").alias(CORRUPT_RECORD))
    return df.select(*columns)


def mark_unusable(df: DataFrame, labels: LabelConfig) -> DataFrame:
    """Add ``reason`` (null = usable) and apply the label case policy."""
    label = F.col("label")
    if labels.case == "normalize":
        label = F.lower(normalize_whitespace(label))
        if "labels" in df.columns:
            df = df.withColumn("labels", F.array_sort(F.array_distinct(F.transform("labels", F.lower))))
    df = df.withColumn("label", label)
    text_columns = ["text"] + (["text_pair"] if "text_pair" in df.columns else [])
    checks = []
    if CORRUPT_RECORD in df.columns:  # the reader could not parse the line: nothing in it is trusted
        checks.append((F.col(CORRUPT_RECORD).isNotNull(), "malformed_row"))
    for name in text_columns:
        column = F.col(name)
        checks += [
            (column.isNull(), f"null_{name}"),
            (column == "", f"empty_{name}"),
            (F.instr(column, REPLACEMENT_CHAR) > 0, f"invalid_utf8_{name}"),
            (column.rlike(MOJIBAKE_PATTERN), f"mojibake_{name}"),
        ]
    checks += [(label.isNull(), "null_label"), (normalize_whitespace(label) == "", "empty_label")]
    if "id" in df.columns:  # a null id would put all such rows under one split key
        checks += [(F.col("id").isNull(), "null_id"), (F.trim(F.col("id")) == "", "empty_id")]
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
