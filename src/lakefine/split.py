"""Deterministic splits: a seeded xxhash64 of the stable key, the same in every
process and on every cluster (Spark's xxhash64 has a fixed seed of its own)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakefine.config import SplitConfig

SPLITS = ("train", "validation", "test")
_BUCKETS = 1_000_000


def assign_split(df: DataFrame, split: SplitConfig) -> DataFrame:
    """Add ``row_hash`` (also the stable row order) and ``split`` from ``key``."""
    row_hash = F.xxhash64(F.col("key"), F.lit(split.seed))
    bucket = F.pmod(row_hash, F.lit(_BUCKETS)) / _BUCKETS
    name = (
        F.when(bucket < split.train, "train")
        .when(bucket < split.train + split.validation, "validation")
        .otherwise("test")
    )
    return df.withColumn("row_hash", row_hash).withColumn("split", name)


def split_rank(column: str = "split"):
    """train=0, validation=1, test=2: the published order of the splits."""
    return F.when(F.col(column) == "train", 0).when(F.col(column) == "validation", 1).otherwise(2)
