"""The label map: labels discovered on the Spark side, frozen into a deterministic
order (id = index), saved in the manifest, MLflow and the model config. Pure Python:
both sides read it (the Spark side's UDFs are in ``lakefine.prep.label_ids``)."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from lakefine.core.errors import DataError

UNKNOWN_ID = -1

# What a label is turned into before discovery (recorded in the manifest and data card).
LABEL_POLICY = {
    "unicode": "NFC",
    "removed": "control and format characters (zero-width spaces and joiners, BOM, soft hyphen, bidi marks)",
    "whitespace": "trimmed, every run collapsed to one space",
    "numbers": "when every label is a number: one spelling per value (1, 1.0, 01, 1e0 -> 1)",
    "order": "numbers by value, else by text; ties broken by the text",
}
# A plain decimal number as written in a file: "1", "-2", "1.0", ".5", "1e3" (no
# "NaN", "Infinity", hex or "1d" that float parsers also take).
NUMBER_PATTERN = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_NUMBER = re.compile(NUMBER_PATTERN)


def canonical_label(label: str | None) -> str | None:
    """The one spelling of a label: whitespace collapsed, control and format characters
    (Unicode Cc/Cf: zero-width spaces, BOM, ...) removed, NFC. Two labels that look the
    same on screen become the same string."""
    if label is None:
        return None
    words = " ".join(label.split())  # every Unicode space, tabs and newlines (Cc) included
    visible = "".join(c for c in words if unicodedata.category(c) not in ("Cc", "Cf"))
    return unicodedata.normalize("NFC", " ".join(visible.split()))


def _numeric(label: str):
    if not _NUMBER.match(label.strip()):
        return None
    try:
        return Decimal(label.strip())
    except (InvalidOperation, ValueError):
        return None


def canonical_number(label: str) -> str | None:
    """``"1.0"``, ``" 01 "``, ``"1e0"`` -> ``"1"``; ``"2.50"`` -> ``"2.5"``; None if
    ``label`` is not a plain decimal number."""
    value = _numeric(label)
    if value is None:
        return None
    if value == 0:
        return "0"  # also -0, 0.0, 0e5
    return format(value.normalize(), "f")


def numeric_spellings(labels) -> dict[str, str]:
    """``{spelling: canonical}`` for the labels whose spelling changes, when every
    label is a number; ``{}`` when one is not (then labels stay as they are)."""
    labels = list(labels)
    canonical = {label: canonical_number(label) for label in labels}
    if not labels or None in canonical.values():
        return {}
    return {label: value for label, value in canonical.items() if value != label}


def sort_labels(labels) -> tuple[str, ...]:
    """A total, stable order: numbers sort as numbers (so "2" < "10" and 0..N-1 keep
    their values, equal values by their text); anything else sorts as text."""
    labels = list(labels)
    if labels and all(_numeric(label) is not None for label in labels):
        return tuple(sorted(labels, key=lambda label: (_numeric(label), label)))
    return tuple(sorted(labels))


def case_variants(labels) -> list[tuple[str, ...]]:
    """Groups of labels that differ only in case or whitespace ("Spam", "spam ", "SPAM"),
    what ``labels.case: normalize`` would merge into one class."""
    groups: dict[str, list[str]] = {}
    for label in labels:
        groups.setdefault((canonical_label(label) or "").lower(), []).append(label)
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
