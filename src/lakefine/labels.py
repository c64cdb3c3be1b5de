"""Labels: discovered with a groupBy, frozen into a deterministic LabelMap, and
turned into ids with a pandas_udf."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakefine.errors import DataError

UNKNOWN_ID = -1


def _numeric(label: str):
    try:
        value = Decimal(label)
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def sort_labels(labels) -> tuple[str, ...]:
    """Numbers sort as numbers (so "2" < "10" and 0..N-1 keep their values); anything
    else sorts as text."""
    labels = list(labels)
    if labels and all(_numeric(label) is not None for label in labels):
        return tuple(sorted(labels, key=_numeric))
    return tuple(sorted(labels))


@dataclass(frozen=True)
class LabelMap:
    labels: tuple[str, ...]  # index = id

    def __post_init__(self):
        if len(set(self.labels)) != len(self.labels):
            raise DataError(f"duplicate labels in label map: {self.labels}")

    @classmethod
    def from_labels(cls, labels) -> "LabelMap":
        return cls(sort_labels(set(labels)))

    @property
    def id2label(self) -> dict[int, str]:
        return dict(enumerate(self.labels))

    @property
    def label2id(self) -> dict[str, int]:
        return {label: i for i, label in enumerate(self.labels)}

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.labels).encode()).hexdigest()[:16]

    def to_json(self) -> dict:
        return {"id2label": {str(i): label for i, label in self.id2label.items()}}

    @classmethod
    def from_json(cls, data: dict) -> "LabelMap":
        id2label = data["id2label"]
        return cls(tuple(id2label[str(i)] for i in range(len(id2label))))


def apply_label_ids(df: DataFrame, label_map: LabelMap) -> DataFrame:
    """Add ``label_id`` with a pandas_udf. Labels missing from the map get -1 on
    purpose (a NaN would crash the worker); callers quarantine them."""
    mapping = label_map.label2id

    @F.pandas_udf("int")
    def to_label_id(labels: pd.Series) -> pd.Series:
        return labels.map(mapping).fillna(UNKNOWN_ID).astype("int32")

    return df.withColumn("label_id", to_label_id("label"))
