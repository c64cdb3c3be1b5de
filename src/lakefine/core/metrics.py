"""The one metrics module: every score lakefine reports (training, evaluation,
notebooks) is computed here, with scikit-learn and numpy (``evaluate.load`` needs the
hub). Pure functions of arrays: the Trainer's ``compute_metrics`` hooks wrap them."""

from __future__ import annotations

import re
import string
from collections import Counter

import numpy as np

# scikit-learn and scipy are imported by the functions that use them: every `lakefine`
# command and every Spark scoring worker imports this module, and `sklearn.metrics`
# alone takes 2 of the 3 s that `import lakefine.cli` took.

_PUNCTUATION = set(string.punctuation)


def probabilities(logits: np.ndarray) -> np.ndarray:
    from scipy.special import softmax

    return softmax(np.asarray(logits, dtype=np.float64), axis=-1)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))


def single_label_scores(labels, predicted, num_labels: int) -> dict[str, float]:
    """Accuracy, F1 and macro F1. ``f1`` is binary on label id 1 when the label map
    has two classes (as GLUE reports it), macro otherwise: decided by the label map,
    never by which labels happen to occur in this sample."""
    from sklearn.metrics import accuracy_score, f1_score

    average = "binary" if num_labels == 2 else "macro"
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1": float(f1_score(labels, predicted, average=average, zero_division=0)),
        "f1_macro": float(f1_score(labels, predicted, average="macro", zero_division=0)),
    }


def multi_label_scores(truth, predicted) -> dict[str, float]:
    """Subset accuracy (every label of a row right), micro and macro F1 over labels.
    ``f1_macro`` averages over every label of the label map (a label with no positive
    and no prediction counts 0); ``f1_macro_present`` over the labels with at least one
    positive in ``truth``, the ones this sample can say anything about."""
    from sklearn.metrics import accuracy_score, f1_score

    truth, predicted = np.asarray(truth).astype(int), np.asarray(predicted).astype(int)
    present = np.flatnonzero(truth.sum(axis=0) > 0)
    per_label = f1_score(truth, predicted, average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "f1_micro": float(f1_score(truth, predicted, average="micro", zero_division=0)),
        "f1_macro": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        "f1_macro_present": float(per_label[present].mean()) if len(present) else 0.0,
    }


def log_loss(task: str, truth, probs) -> float:
    """The mean cross-entropy of the probabilities (what the Trainer reports as loss,
    unweighted): softmax over classes, or binary per label for multi-label."""
    probs = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1 - 1e-12)
    if task == "multi_label":
        truth = np.asarray(truth).astype(int)
        return float(-(truth * np.log(probs) + (1 - truth) * np.log(1 - probs)).mean())
    return float(-np.log(probs[np.arange(len(probs)), np.asarray(truth)]).mean())


def per_class_scores(truth, predicted, labels: list[str]) -> dict[str, dict[str, float]]:
    """Precision, recall, F1 and support of every class of the label map, in its order:
    ids for single-label, multi-hot matrices for multi-label."""
    from sklearn.metrics import precision_recall_fscore_support

    truth, predicted = np.asarray(truth), np.asarray(predicted)
    ids = None if truth.ndim == 2 else list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=ids, average=None, zero_division=0
    )
    return {
        label: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(n)}
        for label, p, r, f, n in zip(labels, precision, recall, f1, support)
    }


def confusion(truth, predicted, num_labels: int) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class, every class of the label map."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(truth, predicted, labels=list(range(num_labels)))


def reliability_bins(confidence, correct, bins: int = 10) -> list[dict]:
    """Equal-width confidence bins: rows, mean confidence and accuracy of each bin."""
    confidence, correct = np.asarray(confidence, dtype=np.float64), np.asarray(correct, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    result = []
    for b in range(bins):
        members = index == b
        n = int(members.sum())
        result.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "rows": n,
                "confidence": float(confidence[members].mean()) if n else 0.0,
                "accuracy": float(correct[members].mean()) if n else 0.0,
            }
        )
    return result


def expected_calibration_error(confidence, correct, bins: int = 10) -> float:
    """ECE: the rows-weighted mean gap between confidence and accuracy over the bins."""
    table = reliability_bins(confidence, correct, bins)
    total = sum(b["rows"] for b in table)
    return float(sum(b["rows"] * abs(b["confidence"] - b["accuracy"]) for b in table) / total) if total else 0.0


def calibration_inputs(task: str, truth, probs) -> tuple[np.ndarray, np.ndarray]:
    """What a reliability diagram compares: single-label, the top probability against
    "the top class is right"; multi-label, every label's probability against its truth."""
    probs = np.asarray(probs, dtype=np.float64)
    if task == "multi_label":
        return probs.ravel(), np.asarray(truth).astype(int).ravel()
    return probs.max(axis=1), (probs.argmax(axis=1) == np.asarray(truth)).astype(int)


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


def task_scores(task: str, truth, predicted, num_labels: int = 0) -> dict[str, float]:
    """The scores of one task shape: what training, ``lakefine evaluate``, the bundle
    task and the notebook all report."""
    if task == "seq2seq":
        return answer_scores(predicted, truth)
    if task == "multi_label":
        return multi_label_scores(truth, predicted)
    return single_label_scores(truth, predicted, num_labels)


HEADLINE = ("accuracy", "f1", "f1_macro", "f1_micro", "exact_match")


def headline(metrics: dict, prefix: str = "test_") -> str:
    """``accuracy=0.8215, f1=0.7869, ...``: the scores a person reads first."""
    return ", ".join(
        f"{k}={v:.4f}" for k, v in metrics.items() if k.startswith(prefix) and k.removeprefix(prefix) in HEADLINE
    )
