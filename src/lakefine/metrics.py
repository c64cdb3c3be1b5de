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
