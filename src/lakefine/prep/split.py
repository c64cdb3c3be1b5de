"""Deterministic splits: a seeded xxhash64 of the stable key, the same in every
process and on every cluster (Spark's xxhash64 has a fixed seed of its own)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from lakefine.core.config import SplitConfig
from lakefine.core.dataset import SPLITS

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


def split_rank(column: str = "split") -> Column:
    """The split's position in ``SPLITS`` (train=0, validation=1, test=2): the published order."""
    rank = F.lit(len(SPLITS) - 1)
    for position, name in reversed(list(enumerate(SPLITS[:-1]))):
        rank = F.when(F.col(column) == name, position).otherwise(rank)
    return rank
