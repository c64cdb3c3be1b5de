"""Cleaning: pure DataFrame -> DataFrame stages, in the order ``prepare`` runs them.

``to_canonical`` renames the configured columns to the names every later stage uses
(text, text_pair, label, key), cuts texts at ``source.max_text_chars`` and gives each
label its one canonical spelling (``lakefine.core.labels.canonical_label``);
``fix_mojibake`` applies the ``source.mojibake`` policy; ``mark_unusable`` adds a
``reason`` column that is null for usable rows; ``unify_numeric_labels`` merges the
spellings of one number; ``with_key`` adds the split key and the key the duplicate and
conflict checks compare; ``quarantine_duplicates`` / ``quarantine_conflicts`` mark
those rows. Nothing is dropped here: the caller splits used from quarantined rows and
counts both. Columns starting with ``_`` are per-row flags the data card counts.
"""

from __future__ import annotations

import re

import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from lakefine.core.config import LabelConfig, SourceConfig
from lakefine.core.errors import DataError
from lakefine.core.labels import canonical_label

REPLACEMENT_CHAR = "\ufffd"  # what Spark's decoders put where bytes were not valid UTF-8
# Spark's column for lines a CSV/JSON reader could not parse (PERMISSIVE mode); the
# raw line is kept and the row quarantined as malformed_row.
CORRUPT_RECORD = "_corrupt_record"
# Mojibake: UTF-8 text decoded as Latin-1/cp1252 upstream. The rule matches the
# tell-tale pairs: "Ã" or "Â" followed by a Latin-1 continuation character
# (U+0080-U+00BF: "Ã©" for é, "Â£" for £), "Ã" followed by a cp1252 rendering of bytes
# 0x80-0x9F ("Ã‰" for É, "ÃŸ" for ß), and "â€"/"â\x80" (UTF-8 punctuation such as ’ “ – …).
# Legitimate text almost never contains these pairs; other scripts are not covered.
# The same pattern serves Spark (Java regex) and Python (the repair UDF).
_CP1252_HIGH = "\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201a\u201c-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122"
MOJIBAKE_PATTERN = f"[\u00c2\u00c3][\u0080-\u00bf]|\u00c3[{_CP1252_HIGH}]|\u00e2[\u20ac\u0080]"
_MOJIBAKE = re.compile(MOJIBAKE_PATTERN)
# Flags counted in the data card (summed by prepare.count_rows).
FLAGS = ("_cut", "_repaired", "_mojibake_kept")


def normalize_whitespace(column: Column) -> Column:
    """Trim, and collapse every run of whitespace (incl. newlines, NBSP) to one space."""
    return F.trim(F.regexp_replace(column, r"[\s\u00a0\u2000-\u200b\u3000]+", " "))


def repair_mojibake(text: str) -> str:
    """ftfy's encoding repair, for text the mojibake rule matches (ftfy is careful, but
    text that does not look broken is not handed to it at all). Only the encoding is
    fixed: quotes, ligatures and widths stay as written. A text ftfy cannot fix whole
    (the rule still matches) is returned as it was: it is quarantined as written."""
    if not _MOJIBAKE.search(text):
        return text
    import ftfy  # in the Python worker, only when a text needs it

    fixed = ftfy.fix_encoding(text)
    return text if _MOJIBAKE.search(fixed) else fixed


def _repaired_label(label: str) -> str:
    return canonical_label(repair_mojibake(label))


def _per_value(function, kind: str = "string"):
    """A pandas_udf applying ``function`` to each value (``kind="array<string>"``: to
    each element of each array); nulls stay null. Built when a stage runs, not at
    import: a UDF is bound to the session kind (classic or Connect) it is made under."""
    if kind == "string":

        @F.pandas_udf("string")
        def per_value(values: pd.Series) -> pd.Series:
            return values.map(function, na_action="ignore")

    else:

        @F.pandas_udf("array<string>")
        def per_value(values: pd.Series) -> pd.Series:
            return values.map(lambda items: [function(x) if x is not None else None for x in items], na_action="ignore")

    return per_value


def _capped(column: Column, max_chars: int) -> Column:
    return F.when(F.length(column) > max_chars, F.substring(column, 1, max_chars)).otherwise(column)


def with_label_set(df: DataFrame, labels: Column) -> DataFrame:
    """multi_label: ``labels`` = the distinct, non-empty values, sorted; ``label`` their
    join (one string per label set, for counting and the conflict check)."""
    values = F.array_sort(F.array_distinct(F.filter(labels, lambda x: x.isNotNull() & (x != ""))))
    df = df.withColumn("labels", F.when(labels.isNull(), F.lit(None)).otherwise(values))
    return df.withColumn("label", F.array_join("labels", "\u0001"))


def _as_string(label: Column, label_type: T.DataType) -> Column:
    """A scalar label as a string: integral floats without ".0", NaN as null (pandas'
    missing value); arrays are left to the caller."""
    if isinstance(label_type, (T.FloatType, T.DoubleType, T.DecimalType)):
        text = F.when(label == F.floor(label), label.cast("long").cast("string")).otherwise(label.cast("string"))
        if not isinstance(label_type, T.DecimalType):
            text = F.when(F.isnan(label), F.lit(None)).otherwise(text)
        return text
    return label if isinstance(label_type, T.ArrayType) else label.cast("string")


def to_canonical(df: DataFrame, source: SourceConfig, task: str = "classification") -> DataFrame:
    """Select the configured columns under canonical names; cut texts longer than
    ``source.max_text_chars`` (flag ``_cut``); labels become strings (integral numbers
    without a trailing ``.0``) in their canonical spelling. For multi_label the label
    column is an array: ``labels`` holds its distinct canonical values and ``label``
    their sorted join."""
    label = df[source.label_column]
    label_type = df.schema[source.label_column].dataType
    if task == "multi_label" and not isinstance(label_type, T.ArrayType):
        raise DataError(
            f"source.label_column: column {source.label_column!r} is"
            f" {label_type.simpleString()}; task multi_label needs"
            " array<string> labels (build one with source.columns, e.g. split(tags, ','))"
        )
    label = _as_string(label, label_type)
    texts = {"text": source.text_column, "text_pair": source.text_pair_column}
    texts = {name: normalize_whitespace(df[column].cast("string")) for name, column in texts.items() if column}
    cut = F.lit(False)
    for text in texts.values():
        cut = cut | F.coalesce(F.length(text) > source.max_text_chars, F.lit(False))
    columns = [_capped(text, source.max_text_chars).alias(name) for name, text in texts.items()]
    if task == "multi_label":
        as_strings = F.transform(label, lambda x: x.cast("string"))
        columns.append(_per_value(canonical_label, "array<string>")(as_strings).alias("labels"))
    elif task == "seq2seq":  # the label is a target text, taken as it is
        columns.append(label.cast("string").alias("label"))
    else:
        columns.append(_per_value(canonical_label)(label.cast("string")).alias("label"))
    if source.id_column:
        columns.append(df[source.id_column].cast("string").alias("id"))
    if CORRUPT_RECORD in df.columns:
        columns.append(df[CORRUPT_RECORD].cast("string").alias(CORRUPT_RECORD))
    columns.append(cut.alias("_cut"))
    canonical = df.select(*columns)
    return with_label_set(canonical, F.col("labels")) if task == "multi_label" else canonical


def fix_mojibake(df: DataFrame, policy: str, task: str = "classification") -> DataFrame:
    """``source.mojibake``: ``repair`` runs ftfy on the texts and labels the rule matches
    (flag ``_repaired`` when it changed one); what it cannot fix still matches and is
    quarantined by ``mark_unusable``. ``keep`` only flags such rows (``_mojibake_kept``);
    ``quarantine`` leaves them to ``mark_unusable``."""
    texts = [c for c in ("text", "text_pair") if c in df.columns]
    if policy == "keep":
        matches = F.lit(False)
        for name in [*texts, "label"]:
            matches = matches | F.coalesce(F.col(name).rlike(MOJIBAKE_PATTERN), F.lit(False))
        return df.withColumn("_mojibake_kept", matches)
    if policy != "repair":
        return df
    repairs = {name: _per_value(repair_mojibake)(F.col(name)) for name in texts}
    if task == "multi_label":
        repairs["labels"] = _per_value(_repaired_label, "array<string>")(F.col("labels"))
    else:  # a seq2seq target is text; a class name also gets its canonical spelling back
        repairs["label"] = _per_value(repair_mojibake if task == "seq2seq" else _repaired_label)(F.col("label"))
    before = df.select("*", *[F.col(name).alias(f"_before_{name}") for name in repairs])
    changed = F.lit(False)
    for name in repairs:
        changed = changed | ~F.col(name).eqNullSafe(F.col(f"_before_{name}"))
    fixed = before.withColumns(repairs).withColumn("_repaired", changed)
    fixed = fixed.drop(*[f"_before_{name}" for name in repairs])
    return with_label_set(fixed, F.col("labels")) if task == "multi_label" else fixed


def mark_unusable(df: DataFrame, labels: LabelConfig, mojibake: str = "quarantine") -> DataFrame:
    """Add ``reason`` (null = usable) and apply the label case policy. Mojibake is a
    reason unless ``source.mojibake: keep`` (after ``repair`` only what ftfy left)."""
    label = F.col("label")
    if labels.case == "normalize":
        if "labels" in df.columns:
            df = with_label_set(df, F.transform("labels", lambda x: F.lower(x)))
        else:
            df = df.withColumn("label", F.lower(normalize_whitespace(label)))
    text_columns = ["text"] + (["text_pair"] if "text_pair" in df.columns else [])
    checks = []
    if CORRUPT_RECORD in df.columns:  # the reader could not parse the line: nothing in it is trusted
        checks.append((F.col(CORRUPT_RECORD).isNotNull(), "malformed_row"))
    for name in text_columns:
        column = F.col(name)
        checks += [(column.isNull(), f"null_{name}"), (column == "", f"empty_{name}")]
        checks += _decoding_checks(column, name, mojibake)
    checks += [(label.isNull(), "null_label"), (normalize_whitespace(label) == "", "empty_label")]
    checks += _decoding_checks(label, "label", mojibake)
    if "id" in df.columns:  # a null id would put all such rows under one split key
        checks += [(F.col("id").isNull(), "null_id"), (F.trim(F.col("id")) == "", "empty_id")]
    reason = F.lit(None).cast("string")
    for condition, name in reversed(checks):
        reason = F.when(condition, F.lit(name)).otherwise(reason)
    return df.withColumn("reason", reason)


def _decoding_checks(column: Column, name: str, mojibake: str) -> list:
    checks = [(F.instr(column, REPLACEMENT_CHAR) > 0, f"invalid_utf8_{name}")]
    if mojibake != "keep":
        checks.append((column.rlike(MOJIBAKE_PATTERN), f"mojibake_{name}"))
    return checks


def label_strings(df: DataFrame, source: SourceConfig) -> DataFrame:
    """One ``label`` column: the raw labels as strings (each element for multi_label),
    control/format characters removed and whitespace collapsed, of rows whose label
    can be a class name (no malformed line, no null, empty, undecodable or mojibake
    label). Spark only, no Python UDF: ``prepare`` looks for a non-number in it with
    a job that stops at the first, which a Python worker would not survive quietly."""
    label_type = df.schema[source.label_column].dataType
    if isinstance(label_type, T.ArrayType):
        df = df.select("*", F.explode(source.label_column).alias("_label"))
        label = F.col("_label").cast("string")
    else:
        label = _as_string(df[source.label_column], label_type)
    value = normalize_whitespace(F.regexp_replace(label, r"[\p{Cc}\p{Cf}]", " "))
    usable = value.isNotNull() & (value != "") & (F.instr(value, REPLACEMENT_CHAR) == 0)
    usable = usable & ~value.rlike(MOJIBAKE_PATTERN)
    if CORRUPT_RECORD in df.columns:
        usable = usable & F.col(CORRUPT_RECORD).isNull()
    return df.where(usable).select(value.alias("label"))


def unify_numeric_labels(df: DataFrame, spellings: dict[str, str]) -> DataFrame:
    """Replace each spelling of a number by its canonical one (``{"1.0": "1"}``): from
    ``lakefine.core.labels.numeric_spellings`` over every label, so it is applied only
    when all labels are numbers."""
    if not spellings:
        return df
    mapping = F.create_map(*[F.lit(x) for pair in sorted(spellings.items()) for x in pair])
    if "labels" in df.columns:
        return with_label_set(df, F.transform("labels", lambda x: F.coalesce(mapping[x], x)))
    return df.withColumn("label", F.coalesce(mapping[F.col("label")], F.col("label")))


def with_key(df: DataFrame, fold=None) -> DataFrame:
    """``key`` decides the split and the row order: the id column if there is one, else
    the normalised text (so duplicates share a split). ``check_key`` is what the
    duplicate and conflict checks compare: the key, or with ``fold`` (a Column ->
    Column function, the tokenizer's normalizer) the texts as the model sees them."""
    texts = ["text", "text_pair"] if "text_pair" in df.columns else ["text"]
    if "id" in df.columns:
        key = check_key = F.col("id")
    else:
        key = F.concat_ws("\u0001", *texts) if len(texts) > 1 else F.col("text")
        check_key = key
        if fold is not None:
            folded = [fold(F.col(name)) for name in texts]
            check_key = F.concat_ws("\u0001", *folded) if len(folded) > 1 else folded[0]
    return df.withColumn("key", key).withColumn("check_key", check_key)


def quarantine_duplicates(rows: DataFrame) -> DataFrame:
    """source.deduplicate: keep the first of usable rows with the same (check key,
    label), quarantine the rest (reason duplicate)."""
    order = Window.partitionBy("check_key", "label").orderBy("text", "key")
    usable = F.col("reason").isNull()
    return (
        rows.withColumn("_n", F.when(usable, F.row_number().over(order)))
        .withColumn("reason", F.when(usable & (F.col("_n") > 1), F.lit("duplicate")).otherwise(F.col("reason")))
        .drop("_n")
    )


def quarantine_conflicts(rows: DataFrame) -> DataFrame:
    """Usable rows with the same check key and different labels cannot be learned:
    quarantine all of them. Rows already quarantined (an empty label, a malformed
    line) do not take part: they must not take a good copy down with them."""
    usable = F.col("reason").isNull()
    labels_per_key = F.size(F.collect_set(F.when(usable, F.col("label"))).over(Window.partitionBy("check_key")))
    return rows.withColumn(
        "reason",
        F.when(usable & (labels_per_key > 1), F.lit("conflicting_labels")).otherwise(F.col("reason")),
    )
