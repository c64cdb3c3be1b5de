"""A model on a split -> predictions and scores, for every task shape, through the
serving Predictor and ``lakefine.core.metrics``: the same model on the same split
gives the same numbers in training, ``lakefine evaluate``, the bundle and notebooks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from lakefine.core import metrics as scores
from lakefine.core.errors import HandoffError


@dataclass
class Evaluation:
    split: str
    rows: int
    metrics: dict[str, float]  # unprefixed: accuracy, f1, ..., ece
    per_class: dict[str, dict] = field(default_factory=dict)  # label -> precision, recall, f1, support
    predictions: dict = field(default_factory=dict)  # row_hash, label|target, predicted[, probabilities]
    truth: object = None
    probabilities: np.ndarray | None = None

    def prefixed(self, prefix: str | None = None) -> dict[str, float]:
        prefix = f"{self.split}_" if prefix is None else prefix
        return {f"{prefix}{k}": v for k, v in self.metrics.items()}

    def summary(self) -> dict:
        return {"split": self.split, "rows": self.rows, "metrics": self.metrics, "per_class": self.per_class}


def truth_of(split, task: str):
    """The expected outputs of a published split: label ids, multi-hot rows, or answers."""
    if task == "seq2seq":
        return split["target"][:]
    truth = np.asarray(split["label"][:])
    return truth.astype(int)


def score_probabilities(
    split_name: str, task: str, truth, probs: np.ndarray, decided: np.ndarray, labels: list[str], row_hash=()
) -> Evaluation:
    """Scores of classifier outputs (probabilities and the decisions taken from them)."""
    metrics = scores.task_scores(task, truth, decided, len(labels))
    confidence, correct = scores.calibration_inputs(task, truth, probs)
    metrics["ece"] = scores.expected_calibration_error(confidence, correct)
    metrics["loss"] = scores.log_loss(task, truth, probs)
    return Evaluation(
        split_name,
        len(probs),
        metrics,
        scores.per_class_scores(truth, decided, labels),
        {
            "row_hash": [int(h) for h in row_hash],
            "label": np.asarray(truth).tolist(),
            "predicted": np.asarray(decided).tolist(),
            "probabilities": probs.tolist(),
        },
        truth,
        probs,
    )


def evaluate_split(predictor, split, task: str, split_name: str, batch_size: int) -> Evaluation:
    """Score ``predictor`` on one published split (a ``datasets.Dataset``)."""
    texts = split["text"][:]
    pairs = split["text_pair"][:] if "text_pair" in split.column_names else None
    row_hash = split["row_hash"][:] if "row_hash" in split.column_names else []
    truth = truth_of(split, task)
    if task == "seq2seq":
        answers = predictor.answers(texts, pairs, batch_size)
        return Evaluation(
            split_name,
            len(answers),
            scores.task_scores(task, truth, answers),
            predictions={"row_hash": [int(h) for h in row_hash], "target": truth, "predicted": answers},
            truth=truth,
        )
    probs = predictor.probabilities(texts, pairs, batch_size)
    return score_probabilities(split_name, task, truth, probs, predictor.decide(probs), predictor.labels, row_hash)


def evaluate_splits(predictor, data, task: str, batch_size: int, splits=("validation", "test")) -> dict:
    """``{split: Evaluation}`` for the published splits that have rows."""
    return {
        name: evaluate_split(predictor, data[name], task, name, batch_size)
        for name in splits
        if name in data and len(data[name])
    }


def require_test_split(published, config_name: str):
    test = published.load().get("test")
    if test is None or len(test) == 0:
        raise HandoffError(
            f"pipeline {config_name!r}: the dataset {published.path} has no test split; set split.test > 0"
            " and run `lakefine prepare`"
        )
    return test


def baseline_scores(task: str, train, test, labels: list[str]) -> tuple[dict[str, float], str]:
    """What the model must beat: the training split's majority class (single-label),
    most frequent label set (multi-label) or most frequent answer (seq2seq), predicted
    for every test row. Returns the scores and what was predicted."""
    if task == "seq2seq":
        answer = Counter(train["target"][:]).most_common(1)[0][0]
        return scores.task_scores(task, test["target"][:], [answer] * len(test)), repr(answer)
    truth = truth_of(test, task)
    if task == "multi_label":
        most = Counter(tuple(row) for row in train["label"][:]).most_common(1)[0][0]
        predicted = np.tile(np.asarray(most, dtype=int), (len(test), 1))
        return scores.task_scores(task, truth, predicted, len(labels)), "the most frequent label set"
    majority = Counter(train["label"][:]).most_common(1)[0][0]
    return scores.task_scores(
        task, truth, np.full(len(test), majority), len(labels)
    ), f"majority class {labels[majority]!r}"
