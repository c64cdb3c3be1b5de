"""The data card, computed in Spark: rows per label and split, duplicates,
conflicting labels, train/test leakage and token-length percentiles, from which
``max_length`` is chosen."""

from __future__ import annotations

import math
from functools import lru_cache

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakefine.errors import DataError

PERCENTILES = (0.5, 0.9, 0.99, 1.0)
LENGTH_SAMPLE_ROWS = 50_000


@lru_cache(maxsize=4)
def _tokenizer(path: str):
    """A fast tokenizer with padding and truncation switched off (some tokenizer.json
    files pad to 128 by themselves)."""
    from pathlib import Path

    from tokenizers import Tokenizer

    file = Path(path) / "tokenizer.json"
    if file.is_file():
        tokenizer = Tokenizer.from_file(str(file))
    else:  # e.g. a SentencePiece-only T5 checkpoint, or a hub id
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path).backend_tokenizer
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def token_lengths(df: DataFrame, tokenizer_path: str) -> DataFrame:
    """Add ``n_tokens`` (special tokens included) with a pandas_udf."""

    @F.pandas_udf("int")
    def count_tokens(texts: pd.Series) -> pd.Series:
        encodings = _tokenizer(tokenizer_path).encode_batch(texts.fillna("").tolist())
        return pd.Series([len(e.ids) for e in encodings], dtype="int32")

    if "text_pair" in df.columns:
        # A pair costs both texts plus one separator.
        @F.pandas_udf("int")
        def count_pair(texts: pd.Series, pairs: pd.Series) -> pd.Series:
            encodings = _tokenizer(tokenizer_path).encode_batch(
                list(zip(texts.fillna("").tolist(), pairs.fillna("").tolist())))
            return pd.Series([len(e.ids) for e in encodings], dtype="int32")

        return df.withColumn("n_tokens", count_pair("text", "text_pair"))
    return df.withColumn("n_tokens", count_tokens("text"))


def length_percentiles(df: DataFrame, tokenizer_path: str, seed: int) -> dict[str, int]:
    """Token-length percentiles of the training split (a fixed-seed sample if large)."""
    train = df.where(F.col("split") == "train").select(*[c for c in ("text", "text_pair") if c in df.columns])
    rows = train.count()
    if rows > LENGTH_SAMPLE_ROWS:
        train = train.sample(fraction=LENGTH_SAMPLE_ROWS / rows, seed=seed)
    values = (
        token_lengths(train, tokenizer_path)
        .agg(F.percentile_approx("n_tokens", list(PERCENTILES), 10_000).alias("p"))
        .first()["p"]
    )
    return {f"p{int(q * 100)}": int(v) for q, v in zip(PERCENTILES, values or [0] * len(PERCENTILES))}


def choose_max_length(percentiles: dict[str, int], model_max: int) -> int:
    """p99 of the training texts rounded up to a multiple of 8 (tensor-core friendly),
    never above what the model can take. With dynamic padding and length grouping a
    generous cap costs little; truncating 1% of texts costs little accuracy."""
    p99 = percentiles.get("p99") or 0
    return max(8, min(model_max, int(math.ceil(p99 / 8) * 8)))


def duplicate_stats(df: DataFrame) -> dict[str, int]:
    """Rows that repeat a key, and keys that appear in more than one split (leakage)."""
    per_key = df.groupBy("key").agg(F.count("*").alias("rows"), F.countDistinct("split").alias("splits"))
    row = per_key.agg(
        F.sum(F.when(F.col("rows") > 1, F.col("rows") - 1).otherwise(0)).alias("duplicate_rows"),
        F.sum(F.when(F.col("splits") > 1, 1).otherwise(0)).alias("keys_in_several_splits"),
    ).first()
    return {"duplicate_rows": int(row["duplicate_rows"] or 0),
            "keys_in_several_splits": int(row["keys_in_several_splits"] or 0)}


def check_usable(label_counts: dict[str, dict[str, int]], where: str) -> None:
    """Fail fast before any write: training needs two classes and training rows."""
    train_rows = sum(c.get("train", 0) for c in label_counts.values())
    if not label_counts:
        raise DataError(f"{where}: no usable rows are left after cleaning; see the quarantine counts")
    if len(label_counts) < 2:
        only = next(iter(label_counts))
        raise DataError(
            f"{where}: only one class ({only!r}) is left; a classifier needs at least two."
            " Check source.label_column and source.where"
        )
    if train_rows == 0:
        raise DataError(f"{where}: the training split is empty; raise split.train")
