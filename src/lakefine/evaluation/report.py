"""What a finished training saves next to the model and logs to its MLflow run:
the settings fitted on validation (``lakefine_model.json``), the model card, the
data card and model plots, per-class scores and the baseline."""

from __future__ import annotations

from pathlib import Path

import mlflow

from lakefine.core.config import PipelineConfig
from lakefine.core.dataset import PublishedDataset
from lakefine.core.log import say
from lakefine.core.metrics import confusion
from lakefine.evaluation import plots
from lakefine.evaluation.card import model_card
from lakefine.evaluation.scoring import Evaluation, baseline_scores
from lakefine.serving.saved import CARD_FILE, SETTINGS_FILE, write_settings
from lakefine.tracking.client import with_retry


def model_settings(config: PipelineConfig, published: PublishedDataset, fit_result, run_id: str) -> dict:
    """``lakefine_model.json``: everything a model directory needs to predict and to be
    evaluated again on the data it was trained on, with no registry."""
    labels = list(fit_result.label_map.labels) if fit_result.label_map else []
    return {
        "format": 1,
        "pipeline": config.name,
        "task": config.task,
        "labels": labels,
        "base_model": config.model.name_or_path,
        "max_length": int(published.manifest["max_length"]),
        "dataset_key": published.key,
        "dataset_path": str(published.path),
        "run_id": run_id,
        **fit_result.settings,
    }


def data_card_figures(manifest: dict) -> dict:
    card = manifest.get("data_card", {})
    figures = {}
    if card.get("token_length_histogram"):
        figures["plots/data_token_lengths.png"] = plots.token_length_histogram(
            card["token_length_histogram"], int(manifest["max_length"])
        )
    if manifest.get("label_map") and card.get("label_counts"):
        figures["plots/data_rows_per_label_and_split.png"] = plots.rows_per_label_and_split(card["label_counts"])
    figures["plots/data_quarantine_reasons.png"] = plots.quarantine_reasons(card.get("rows", {}).get("by_reason", {}))
    return figures


def model_figures(task: str, evaluation: Evaluation, labels: list[str]) -> dict:
    """The test split's figures: confusion (single-label), per-class scores,
    precision-recall (binary and multi-label) and reliability."""
    if task == "seq2seq" or evaluation.probabilities is None:
        return {}
    figures = {}
    if task != "multi_label":
        predicted = evaluation.probabilities.argmax(axis=1)
        figures["plots/confusion_matrix.png"] = plots.confusion_matrices(
            confusion(evaluation.truth, predicted, len(labels)), labels
        )
    figures["plots/per_class_scores.png"] = plots.per_class_scores(evaluation.per_class)
    if task == "multi_label" or len(labels) == 2:
        figures["plots/precision_recall.png"] = plots.precision_recall_curves(
            evaluation.truth, evaluation.probabilities, labels, task
        )
    figures["plots/reliability.png"] = plots.reliability_diagram(task, evaluation.truth, evaluation.probabilities)
    return figures


def log_figures(run_id: str, figures: dict) -> None:
    client = mlflow.tracking.MlflowClient()
    for path, figure in figures.items():
        with_retry(f"log {path}", client.log_figure, run_id, figure, path)
        plots.close(figure)


def finish_training(
    config: PipelineConfig, published: PublishedDataset, fit_result, model_dir: Path, run_id: str
) -> dict:
    """Write the settings and the model card into ``model_dir`` (before the model is
    logged: lakefine's pyfunc copies the directory) and log them, the plots and the
    baseline to the run. Returns the settings."""
    settings = model_settings(config, published, fit_result, run_id)
    write_settings(model_dir, settings)
    data = published.load()
    baseline, what = ({}, "")
    if "train" in data and "test" in data:
        baseline, what = baseline_scores(config.task, data["train"], data["test"], settings["labels"])
    card = model_card(config, published.manifest, fit_result.metrics, settings, baseline, what)
    (Path(model_dir) / CARD_FILE).write_text(card)

    client = mlflow.tracking.MlflowClient()
    if baseline:
        with_retry("log the baseline", mlflow.log_metrics, {f"baseline_test_{k}": v for k, v in baseline.items()})
    with_retry("log the model settings", client.log_dict, run_id, settings, SETTINGS_FILE)
    with_retry("log the model card", client.log_text, run_id, card, CARD_FILE)
    per_class = {name: e.per_class for name, e in fit_result.evaluations.items() if e.per_class}
    if per_class:
        with_retry("log the per-class scores", client.log_dict, run_id, per_class, "evaluation/per_class.json")
    figures = data_card_figures(published.manifest)
    if "test" in fit_result.evaluations:
        figures.update(model_figures(config.task, fit_result.evaluations["test"], settings["labels"]))
    log_figures(run_id, figures)
    say(f"train: model card and {len(figures)} plots logged ({', '.join(Path(p).stem for p in figures)})")
    return settings
