"""The label map: labels discovered on the Spark side, frozen into a deterministic
order (id = index), saved in the manifest, MLflow and the model config. Pure Python:
both sides read it (the Spark side's UDFs are in ``lakefine.prep.label_ids``)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from lakefine.core.errors import DataError

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


def case_variants(labels) -> list[tuple[str, ...]]:
    """Groups of labels that differ only in case or whitespace ("Spam", "spam ", "SPAM"),
    what ``labels.case: normalize`` would merge into one class."""
    groups: dict[str, list[str]] = {}
    for label in labels:
        groups.setdefault(" ".join(label.split()).lower(), []).append(label)
    return [tuple(sorted(group)) for _, group in sorted(groups.items()) if len(group) > 1]


@dataclass(frozen=True)
class LabelMap:
    labels: tuple[str, ...]  # index = id

    def __post_init__(self):
        if len(set(self.labels)) != len(self.labels):
            raise DataError(f"duplicate labels in label map: {self.labels}")

    @classmethod
    def from_labels(cls, labels) -> LabelMap:
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
    def from_json(cls, data: dict) -> LabelMap:
        id2label = data["id2label"]
        return cls(tuple(id2label[str(i)] for i in range(len(id2label))))
