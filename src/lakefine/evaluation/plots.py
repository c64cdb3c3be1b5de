"""The figures a run logs (matplotlib, Agg backend: no display on a job cluster).
Each function returns a Figure built from plain data (counts, scores, probabilities);
``report`` logs them to MLflow as PNG files under ``plots/``."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # before pyplot: jobs and tests have no display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402

from lakefine.core import metrics as scores  # noqa: E402

MAX_CURVES = 10  # precision-recall curves per figure: the most frequent labels, then micro


def _width(n: int) -> float:
    return min(24.0, max(6.0, 0.35 * n + 2))


def token_length_histogram(histogram: dict, max_length: int, title: str = "Token lengths (training split)"):
    lengths = sorted(int(k) for k in histogram)
    counts = [int(histogram[str(k)] if str(k) in histogram else histogram[k]) for k in lengths]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(lengths, counts, width=1.0, color="tab:blue")
    ax.axvline(max_length, color="tab:red", linestyle="--", label=f"max_length {max_length}")
    ax.set_title(title)
    ax.set_xlabel("tokens per text (special tokens included)")
    ax.set_ylabel("texts")
    ax.legend()
    fig.tight_layout()
    return fig


def rows_per_label_and_split(label_counts: dict[str, dict[str, int]], title: str = "Rows per label and split"):
    labels = list(label_counts)
    splits = ("train", "validation", "test")
    fig, ax = plt.subplots(figsize=(_width(len(labels)), 4.5))
    x = np.arange(len(labels))
    for i, split in enumerate(splits):
        ax.bar(x + (i - 1) * 0.27, [label_counts[label].get(split, 0) for label in labels], width=0.27, label=split)
    ax.set_xticks(x, labels, rotation=90 if len(labels) > 8 else 0)
    ax.set_title(title)
    ax.set_xlabel("label")
    ax.set_ylabel("rows")
    ax.legend()
    fig.tight_layout()
    return fig


def quarantine_reasons(by_reason: dict[str, int], title: str = "Quarantined rows by reason"):
    reasons = sorted(by_reason, key=lambda r: -by_reason[r]) or ["(none)"]
    counts = [by_reason.get(r, 0) for r in reasons]
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(reasons) + 2))
    ax.barh(reasons, counts, color="tab:orange")
    ax.invert_yaxis()
    if not by_reason:
        ax.set_xlim(0, 1)
        ax.text(0.5, 0, "no row was quarantined", ha="center", va="center")
    ax.set_title(title)
    ax.set_xlabel("rows")
    ax.set_ylabel("reason")
    fig.tight_layout()
    return fig


def confusion_matrices(counts: np.ndarray, labels: list[str], title: str = "Confusion matrix (test)"):
    """Counts and row-normalised (recall per true class), side by side."""
    counts = np.asarray(counts)
    normalised = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.5, 0.45 * len(labels) + 2.5)
    fig, axes = plt.subplots(1, 2, figsize=(2 * size, size))
    for ax, values, name, fmt in ((axes[0], counts, "counts", "d"), (axes[1], normalised, "row-normalised", ".2f")):
        image = ax.imshow(values, cmap="Blues")
        ax.set_xticks(range(len(labels)), labels, rotation=90 if len(labels) > 6 else 0)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_xlabel("predicted label")
        ax.set_ylabel("true label")
        ax.set_title(f"{title}: {name}")
        if len(labels) <= 20:
            for i in range(len(labels)):
                for j in range(len(labels)):
                    ax.text(j, i, format(values[i, j], fmt), ha="center", va="center", fontsize=8)
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig


def per_class_scores(per_class: dict[str, dict], title: str = "Per-class precision, recall and F1 (test)"):
    labels = list(per_class)
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(_width(len(labels)), 4.5))
    for i, name in enumerate(("precision", "recall", "f1")):
        ax.bar(x + (i - 1) * 0.27, [per_class[label][name] for label in labels], width=0.27, label=name)
    ax.set_xticks(x, labels, rotation=90 if len(labels) > 8 else 0)
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.set_xlabel("class")
    ax.set_ylabel("score")
    ax.legend()
    fig.tight_layout()
    return fig


def precision_recall_curves(truth, probs, labels: list[str], task: str, title: str = "Precision-recall (test)"):
    """Binary: the curve of the positive class (id 1). Multi-label: the most frequent
    labels (at most MAX_CURVES) and the micro average over all labels."""
    probs = np.asarray(probs)
    fig, ax = plt.subplots(figsize=(6.5, 5))
    if task == "multi_label":
        truth = np.asarray(truth).astype(int)
        frequent = [j for j in np.argsort(-truth.sum(axis=0)) if truth[:, j].sum() > 0][:MAX_CURVES]
        for j in frequent:
            precision, recall, _ = precision_recall_curve(truth[:, j], probs[:, j])
            ax.plot(recall, precision, label=labels[j], linewidth=1)
        precision, recall, _ = precision_recall_curve(truth.ravel(), probs.ravel())
        ax.plot(recall, precision, label="micro average", color="black", linewidth=2)
    else:
        precision, recall, _ = precision_recall_curve((np.asarray(truth) == 1).astype(int), probs[:, 1])
        ax.plot(recall, precision, label=f"{labels[1]} (positive class)", linewidth=2)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def reliability_diagram(task: str, truth, probs, title: str = "Reliability (test)"):
    confidence, correct = scores.calibration_inputs(task, truth, probs)
    bins = scores.reliability_bins(confidence, correct)
    ece = scores.expected_calibration_error(confidence, correct)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    centers = [(b["low"] + b["high"]) / 2 for b in bins]
    ax.bar(centers, [b["accuracy"] for b in bins], width=0.1, edgecolor="black", label="observed frequency")
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f"{title}: ECE {ece:.3f}")
    what = "predicted probability" if task == "multi_label" else "confidence (top probability)"
    ax.set_xlabel(what)
    ax.set_ylabel("fraction correct" if task != "multi_label" else "fraction positive")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def champion_vs_challenger(challenger: dict[str, dict], champion: dict[str, dict], title: str = "Per-class F1 (test)"):
    labels = list(challenger)
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(_width(len(labels)), 4.5))
    ax.bar(x - 0.2, [champion.get(label, {}).get("f1", 0.0) for label in labels], width=0.4, label="champion")
    ax.bar(x + 0.2, [challenger[label]["f1"] for label in labels], width=0.4, label="challenger")
    ax.set_xticks(x, labels, rotation=90 if len(labels) > 8 else 0)
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{title}: champion vs challenger")
    ax.set_xlabel("class")
    ax.set_ylabel("F1")
    ax.legend()
    fig.tight_layout()
    return fig


def close(fig) -> None:
    plt.close(fig)
