"""Tokenize in Spark: every published row carries its model inputs, so training
starts at its first step instead of tokenizing the dataset on the driver.

``with_token_ids`` is a pure ``DataFrame -> DataFrame`` stage: an iterator pandas_udf
runs ``lakefine.core.tokenization.encode`` (the one encoding, shared with the training
side) on the model's fast tokenizer, loaded once per Python worker and reused for
every batch (``datacard.fast_tokenizer``'s cache; ``encode`` restores its settings).
Only ``tokenizers`` is loaded on the workers, never transformers (it imports torch).
"""

from __future__ import annotations

from collections.abc import Iterator

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakefine.core.config import PipelineConfig
from lakefine.core.model_files import truncation_side
from lakefine.core.tokenization import Encoding, encode
from lakefine.prep.datacard import fast_tokenizer

# Spark types of the columns ``encode`` returns (Arrow: list<int32>, list<int8>, int32).
SPARK_TYPES = {
    "input_ids": "array<int>",
    "token_type_ids": "array<tinyint>",
    "labels": "array<int>",
    "length": "int",
}


def encoding_for(config: PipelineConfig, model_dir: str, lengths: dict, with_pair: bool) -> Encoding:
    """The encoding of this pipeline's task at the lengths the data card chose."""
    return Encoding.of(
        config.task,
        lengths["max_length"],
        with_pair,
        fast_tokenizer(model_dir),
        truncation_side=truncation_side(model_dir),
        target_max_length=lengths.get("target_max_length"),
        seq2seq=config.seq2seq.model_dump(),
    )


def with_token_ids(df: DataFrame, model_dir: str, encoding: Encoding) -> DataFrame:
    """Add ``encoding.columns`` (``input_ids``, ``length``, ...) computed from ``text``,
    ``text_pair`` and, for seq2seq, ``target``; row order is kept."""
    inputs = [c for c in ("text", "text_pair", "target") if c in df.columns]
    schema = ",".join(f"{name}:{SPARK_TYPES[name]}" for name in encoding.columns)

    @F.pandas_udf(f"struct<{schema}>")
    def encode_rows(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        tokenizer = fast_tokenizer(model_dir)  # once per Python worker (cached), not per batch
        for batch in batches:
            encoded = encode(
                tokenizer,
                encoding,
                batch["text"].fillna(""),
                batch["text_pair"].fillna("") if "text_pair" in batch else None,
                batch["target"].fillna("") if "target" in batch else None,
            )
            yield pd.DataFrame(encoded, columns=encoding.columns)

    encoded = df.withColumn("_encoded", encode_rows(F.struct(*inputs)))
    return encoded.select(*df.columns, *[F.col(f"_encoded.{name}").alias(name) for name in encoding.columns])
