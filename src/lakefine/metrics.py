"""Evaluation metrics with scikit-learn (``evaluate.load`` needs the hub)."""

from __future__ import annotations

import numpy as np
from scipy.special import softmax
from sklearn.metrics import accuracy_score, f1_score


def classification_metrics(num_labels: int):
    """A ``compute_metrics`` for the Trainer: accuracy, F1 (binary on the second
    label for two classes, as GLUE reports it; macro otherwise) and macro F1."""

    def compute(eval_prediction) -> dict[str, float]:
        logits, labels = eval_prediction.predictions, eval_prediction.label_ids
        if isinstance(logits, tuple):
            logits = logits[0]
        predicted = np.argmax(logits, axis=-1)
        average = "binary" if num_labels == 2 else "macro"
        return {
            "accuracy": float(accuracy_score(labels, predicted)),
            "f1": float(f1_score(labels, predicted, average=average, zero_division=0)),
            "f1_macro": float(f1_score(labels, predicted, average="macro", zero_division=0)),
        }

    return compute


def probabilities(logits: np.ndarray) -> np.ndarray:
    return softmax(np.asarray(logits, dtype=np.float64), axis=-1)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def multilabel_metrics(threshold: float):
    """Micro and macro F1 over labels, and subset accuracy (every label right)."""

    def compute(eval_prediction) -> dict[str, float]:
        logits, labels = eval_prediction.predictions, eval_prediction.label_ids
        if isinstance(logits, tuple):
            logits = logits[0]
        predicted = (sigmoid(logits) >= threshold).astype(int)
        truth = np.asarray(labels).astype(int)
        return {
            "accuracy": float(accuracy_score(truth, predicted)),
            "f1_micro": float(f1_score(truth, predicted, average="micro", zero_division=0)),
            "f1_macro": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        }

    return compute


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    import re
    import string

    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def token_f1(prediction: str, truth: str) -> float:
    from collections import Counter

    predicted, expected = normalize_answer(prediction).split(), normalize_answer(truth).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def answer_metrics(predictions: list[str], truths: list[str]) -> dict[str, float]:
    n = max(1, len(truths))
    return {
        "exact_match": sum(normalize_answer(p) == normalize_answer(t) for p, t in zip(predictions, truths)) / n,
        "f1": sum(token_f1(p, t) for p, t in zip(predictions, truths)) / n,
    }
