"""The data card, computed in Spark: rows per label and split, duplicates,
conflicting labels, train/test leakage and token-length percentiles, from which
``max_length`` is chosen."""

from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from tokenizers import Tokenizer

from lakefine.core.errors import DataError

PERCENTILES = (0.5, 0.9, 0.99, 1.0)
LENGTH_SAMPLE_ROWS = 50_000


@lru_cache(maxsize=4)
def fast_tokenizer(path: str) -> Tokenizer:
    """A fast tokenizer with padding and truncation switched off (some tokenizer.json
    files pad to 128 by themselves). One per Python worker (cached)."""
    file = Path(path) / "tokenizer.json"
    if file.is_file():
        tokenizer = Tokenizer.from_file(str(file))
    else:  # e.g. a SentencePiece-only T5 checkpoint, or a hub id
        # Lazy: transformers' tokenizer loading is only needed without a tokenizer.json.
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path).backend_tokenizer
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


FOLD_PROBE = "Great Film Été"


def tokenizer_folds(tokenizer_path: str) -> bool:
    """True when the tokenizer's normalizer folds case or accents (BERT uncased: MiniLM
    lower-cases and strips accents), i.e. the model cannot tell such texts apart."""
    normalizer = fast_tokenizer(tokenizer_path).normalizer
    return normalizer is not None and normalizer.normalize_str(FOLD_PROBE) != FOLD_PROBE


def folded(tokenizer_path: str):
    """A Column -> Column function: the text as the tokenizer's normalizer sees it
    (a pandas_udf; the tokenizer is loaded once per Python worker)."""

    @F.pandas_udf("string")
    def fold(texts: pd.Series) -> pd.Series:
        normalizer = fast_tokenizer(tokenizer_path).normalizer
        return texts.map(normalizer.normalize_str, na_action="ignore")

    return fold


def token_lengths(df: DataFrame, tokenizer_path: str) -> DataFrame:
    """Add ``n_tokens`` (special tokens included) with a pandas_udf."""

    @F.pandas_udf("int")
    def count_tokens(texts: pd.Series) -> pd.Series:
        encodings = fast_tokenizer(tokenizer_path).encode_batch(texts.fillna("").tolist())
        return pd.Series([len(e.ids) for e in encodings], dtype="int32")

    if "text_pair" in df.columns:
        # A pair costs both texts plus one separator.
        @F.pandas_udf("int")
        def count_pair(texts: pd.Series, pairs: pd.Series) -> pd.Series:
            encodings = fast_tokenizer(tokenizer_path).encode_batch(
                list(zip(texts.fillna("").tolist(), pairs.fillna("").tolist()))
            )
            return pd.Series([len(e.ids) for e in encodings], dtype="int32")

        return df.withColumn("n_tokens", count_pair("text", "text_pair"))
    return df.withColumn("n_tokens", count_tokens("text"))


def length_histogram(df: DataFrame, tokenizer_path: str, seed: int, train_rows: int) -> tuple[dict[int, int], float]:
    """Token lengths of the training split as ``{n_tokens: rows}`` (a fixed-seed sample
    if large), and the factor that scales the sample's counts to the whole split. One
    tokenizer pass gives both the percentiles and the rows that ``max_length`` cuts.
    ``train_rows``: the split's rows, known from the counting pass (no count job here)."""
    train = df.where(F.col("split") == "train").select(*[c for c in ("text", "text_pair") if c in df.columns])
    sampled = train_rows > LENGTH_SAMPLE_ROWS
    if sampled:
        train = train.sample(fraction=LENGTH_SAMPLE_ROWS / train_rows, seed=seed)
    counted = token_lengths(train, tokenizer_path).groupBy("n_tokens").count().collect()
    histogram = {int(row["n_tokens"]): int(row["count"]) for row in counted}
    in_sample = sum(histogram.values())
    return histogram, (train_rows / in_sample if sampled and in_sample else 1.0)


def percentiles_from_histogram(histogram: dict[int, int]) -> dict[str, int]:
    """The smallest length with at least q of the rows at or below it (exact)."""
    total = sum(histogram.values())
    result = {}
    for q in PERCENTILES:
        target, running, value = max(1, math.ceil(q * total)), 0, 0
        for length in sorted(histogram):
            running += histogram[length]
            if running >= target:
                value = length
                break
        result[f"p{int(q * 100)}"] = value
    return result


def rows_longer_than(histogram: dict[int, int], max_length: int, scale: float = 1.0) -> int:
    """Training rows with more tokens than ``max_length``: training truncates them."""
    return int(round(scale * sum(n for length, n in histogram.items() if length > max_length)))


def choose_max_length(percentiles: dict[str, int], model_max: int) -> int:
    """p99 of the training texts rounded up to a multiple of 8 (tensor-core friendly),
    never above what the model can take. With dynamic padding and length grouping a
    generous cap costs little; truncating 1% of texts costs little accuracy."""
    p99 = percentiles.get("p99") or 0
    return max(8, min(model_max, int(math.ceil(p99 / 8) * 8)))


def duplicate_stats(df: DataFrame) -> dict[str, int]:
    """Rows that repeat a check key (the text as the duplicate check compares it), and
    such keys that appear in more than one split (leakage the model can see)."""
    key = "check_key" if "check_key" in df.columns else "key"
    per_key = df.groupBy(key).agg(F.count("*").alias("rows"), F.countDistinct("split").alias("splits"))
    row = per_key.agg(
        F.sum(F.when(F.col("rows") > 1, F.col("rows") - 1).otherwise(0)).alias("duplicate_rows"),
        F.sum(F.when(F.col("splits") > 1, 1).otherwise(0)).alias("keys_in_several_splits"),
    ).first()
    return {
        "duplicate_rows": int(row["duplicate_rows"] or 0),
        "keys_in_several_splits": int(row["keys_in_several_splits"] or 0),
    }


def check_usable(
    label_counts: dict[str, dict[str, int]], where: str, quarantined: dict[str, int] | None = None
) -> None:
    """Fail fast before any write: training needs two classes and training rows."""
    train_rows = sum(c.get("train", 0) for c in label_counts.values())
    if not label_counts:
        reasons = ", ".join(f"{n:,} {reason}" for reason, n in sorted((quarantined or {}).items()))
        raise DataError(
            f"{where}: no usable rows are left after cleaning{f' (quarantined: {reasons})' if reasons else ''};"
            " check that source.text_column and source.label_column point at the text and the labels"
        )
    if len(label_counts) < 2:
        only = next(iter(label_counts))
        raise DataError(
            f"{where}: only one class ({only!r}) is left; a classifier needs at least two."
            " Check source.label_column and source.where"
        )
    if train_rows == 0:
        raise DataError(f"{where}: the training split is empty; raise split.train")
