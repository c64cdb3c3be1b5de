"""Labels to ids in Spark, with pandas_udfs over a frozen LabelMap."""

from __future__ import annotations

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakefine.core.labels import UNKNOWN_ID, LabelMap


def apply_label_ids(df: DataFrame, label_map: LabelMap) -> DataFrame:
    """Add ``label_id`` with a pandas_udf. Labels missing from the map get -1 on
    purpose (a NaN would crash the worker); callers quarantine them."""
    mapping = label_map.label2id

    @F.pandas_udf("int")
    def to_label_id(labels: pd.Series) -> pd.Series:
        return labels.map(mapping).fillna(UNKNOWN_ID).astype("int32")

    return df.withColumn("label_id", to_label_id("label"))


def apply_multi_hot(df: DataFrame, label_map: LabelMap) -> DataFrame:
    """Add ``label_id``: the multi-hot float vector of the row's ``labels`` (labels
    outside the map are left out), with a pandas_udf."""
    mapping = label_map.label2id
    width = len(label_map.labels)

    @F.pandas_udf("array<float>")
    def to_multi_hot(label_sets: pd.Series) -> pd.Series:
        vectors = []
        for labels in label_sets:
            vector = [0.0] * width
            for label in labels if labels is not None else ():
                if label in mapping:
                    vector[mapping[label]] = 1.0
            vectors.append(vector)
        return pd.Series(vectors)

    return df.withColumn("label_id", to_multi_hot("labels"))
