"""The one metrics module: every score lakefine reports (training, evaluation,
notebooks) is computed here, with scikit-learn and numpy (``evaluate.load`` needs the
hub). Pure functions of arrays: the Trainer's ``compute_metrics`` hooks wrap them."""

from __future__ import annotations

import re
import string
from collections import Counter

import numpy as np
from scipy.special import softmax
from sklearn.metrics import accuracy_score, f1_score

_PUNCTUATION = set(string.punctuation)


def probabilities(logits: np.ndarray) -> np.ndarray:
    return softmax(np.asarray(logits, dtype=np.float64), axis=-1)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def single_label_scores(labels, predicted, num_labels: int) -> dict[str, float]:
    """Accuracy, F1 and macro F1. ``f1`` is binary on label id 1 when the label map
    has two classes (as GLUE reports it), macro otherwise: decided by the label map,
    never by which labels happen to occur in this sample."""
    average = "binary" if num_labels == 2 else "macro"
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1": float(f1_score(labels, predicted, average=average, zero_division=0)),
        "f1_macro": float(f1_score(labels, predicted, average="macro", zero_division=0)),
    }


def multi_label_scores(truth, predicted) -> dict[str, float]:
    """Subset accuracy (every label of a row right), micro and macro F1 over labels."""
    truth, predicted = np.asarray(truth).astype(int), np.asarray(predicted).astype(int)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "f1_micro": float(f1_score(truth, predicted, average="micro", zero_division=0)),
        "f1_macro": float(f1_score(truth, predicted, average="macro", zero_division=0)),
    }


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, truth: str) -> float:
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(truth).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def answer_scores(predictions: list[str], truths: list[str]) -> dict[str, float]:
    """Exact match and token F1 after normalisation, averaged over rows."""
    n = max(1, len(truths))
    return {
        "exact_match": sum(normalize_answer(p) == normalize_answer(t) for p, t in zip(predictions, truths)) / n,
        "f1": sum(token_f1(p, t) for p, t in zip(predictions, truths)) / n,
    }


HEADLINE = ("accuracy", "f1", "f1_macro", "f1_micro", "exact_match")


def headline(metrics: dict, prefix: str = "test_") -> str:
    """``accuracy=0.8215, f1=0.7869, ...``: the scores a person reads first."""
    return ", ".join(
        f"{k}={v:.4f}" for k, v in metrics.items() if k.startswith(prefix) and k.removeprefix(prefix) in HEADLINE
    )
