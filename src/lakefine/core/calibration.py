"""Decision thresholds and temperatures fitted on the validation split: pure numpy,
scipy and scikit-learn on probabilities and logits (the training side applies them to
the model, serving reads them back from the saved model directory)."""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.metrics import precision_recall_curve


def tune_thresholds(truth, probs, global_threshold: float, min_positives: int) -> tuple[list[float], list[bool]]:
    """Per label, the probability threshold that maximises its F1 on ``truth``; labels
    with fewer than ``min_positives`` positives keep ``global_threshold`` (too few rows
    to tune on). Returns the thresholds and, per label, whether it was tuned.

    The threshold is put halfway between the lowest probability it accepts and the next
    lower one: validation positives sit exactly at the cut, new rows do not."""
    truth, probs = np.asarray(truth).astype(int), np.asarray(probs, dtype=np.float64)
    thresholds, tuned = [], []
    for j in range(truth.shape[1]):
        positives = int(truth[:, j].sum())
        if positives < min_positives or positives == len(truth):
            thresholds.append(float(global_threshold))
            tuned.append(False)
            continue
        precision, recall, cuts = precision_recall_curve(truth[:, j], probs[:, j])
        f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
        best = float(cuts[int(np.argmax(f1))])
        below = probs[:, j][probs[:, j] < best]
        thresholds.append((best + float(below.max())) / 2 if len(below) else best)
        tuned.append(True)
    return thresholds, tuned


def negative_log_likelihood(logits, labels, temperature: float) -> float:
    logits = np.asarray(logits, dtype=np.float64) / temperature
    return float(-log_softmax(logits, axis=1)[np.arange(len(labels)), np.asarray(labels)].mean())


def fit_temperature(logits, labels) -> float:
    """The temperature T > 0 that minimises the log loss of softmax(logits / T): one
    parameter, so it changes confidence but never which class is predicted."""
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(logits, labels, float(np.exp(log_t))),
        bounds=(-3.0, 3.0),
        method="bounded",
    )
    return float(np.exp(result.x))
