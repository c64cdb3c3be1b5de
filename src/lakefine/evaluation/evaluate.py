"""``lakefine evaluate``: score a model (default: the registered ``challenger``) on the
test split of the dataset its run was trained on, then the champion / challenger gate:
score the current ``champion`` on the same split, decide, log both metric sets, the
difference and the decision to the challenger's run, and move the ``champion`` alias
when the gate passes (``evaluate.mode: enabled``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.entities import Metric

from lakefine.core import paths
from lakefine.core.config import PipelineConfig
from lakefine.core.dataset import MANIFEST, PublishedDataset
from lakefine.core.errors import DataError, HandoffError
from lakefine.core.labels import LabelMap
from lakefine.core.log import say
from lakefine.evaluation import plots
from lakefine.evaluation.gate import Decision, check_metric, decide
from lakefine.evaluation.report import log_figures
from lakefine.evaluation.scoring import Evaluation, evaluate_split, require_test_split
from lakefine.serving.predictor import Predictor
from lakefine.tracking import client as tracking_client
from lakefine.tracking.client import with_retry
from lakefine.tracking.registry import (
    CHALLENGER,
    CHAMPION,
    ModelRef,
    alias_version,
    registered_name,
    resolve,
    set_alias,
)


@dataclass
class Candidate:
    ref: ModelRef
    predictor: Predictor

    @property
    def shown(self) -> str:
        return f"{self.ref.uri} (version {self.ref.version})" if self.ref.version else self.ref.uri


def load_candidate(uri: str) -> Candidate:
    return Candidate(resolve(uri), Predictor.load(uri))


def trained_on(config: PipelineConfig, candidate: Candidate) -> PublishedDataset:
    """The dataset the model's run was trained on (its ``lakefine.dataset`` tag, else
    the ``dataset_key`` saved with the model), never whatever is newest."""
    key = None
    if candidate.ref.run_id:
        run = mlflow.tracking.MlflowClient().get_run(candidate.ref.run_id)
        key = run.data.tags.get("lakefine.dataset") or run.data.params.get("data.key")
    key = key or candidate.predictor.settings.get("dataset_key")
    if not key:
        raise HandoffError(
            f"{candidate.ref.uri}: cannot tell which dataset this model was trained on (no MLflow run with a"
            " lakefine.dataset tag, no lakefine_model.json next to it); pass --dataset DIR"
        )
    path = paths.datasets_root(config.runtime.volume, config.name, config.runtime.local_root) / key
    saved = candidate.predictor.settings.get("dataset_path")
    if not (path / MANIFEST).is_file() and saved and (Path(saved) / MANIFEST).is_file():
        path = Path(saved)
    if not (path / MANIFEST).is_file():
        raise HandoffError(
            f"{candidate.ref.uri} was trained on dataset {key}, which is no longer at {path} (pruned? see"
            " runtime.keep_versions); prepare it again with the same config and data, or pass --dataset DIR"
        )
    return PublishedDataset.open(path)


def label_map_problem(predictor: Predictor, manifest: dict) -> str | None:
    """Why this model cannot be scored against this dataset's labels, or None."""
    if manifest.get("label_map") is None:
        return None if predictor.is_seq2seq else "the dataset is text-to-text, the model a classifier"
    if predictor.is_seq2seq:
        return "the model is text-to-text, the dataset has labels"
    dataset_labels = list(LabelMap.from_json(manifest["label_map"]).labels)
    if predictor.labels != dataset_labels:
        return f"model labels {predictor.labels}, dataset labels {dataset_labels}"
    return None


def evaluate(config: PipelineConfig, model_uri: str | None = None, dataset: str | None = None) -> dict:
    tracking_client.setup(config)
    uri = model_uri or f"models:/{registered_name(config)}@{CHALLENGER}"
    challenger = load_candidate(uri)
    published = PublishedDataset.open(dataset) if dataset else trained_on(config, challenger)
    problem = label_map_problem(challenger.predictor, published.manifest)
    if problem:
        raise DataError(
            f"{uri} does not match the dataset {published.path}: {problem}. Evaluate it with the pipeline"
            " (and --dataset) it was trained with"
        )
    test = require_test_split(published, config.name)
    scored = evaluate_split(challenger.predictor, test, config.task, "test", config.train.eval_batch_size)
    say(f"evaluate: {challenger.shown} on {scored.rows:,} test rows of {published.key}: " + _shown(scored.metrics))
    summary = {
        "model_uri": uri,
        "registered_model": challenger.ref.name,
        "version": challenger.ref.version,
        "run_id": challenger.ref.run_id,
        "dataset": str(published.path),
        "dataset_key": published.key,
        "rows": scored.rows,
        "metrics": scored.metrics,
        "per_class": scored.per_class,
    }
    if config.evaluate.mode != "disabled":
        summary["gate"] = champion_challenger(config, challenger, scored, test, published)
    return summary


def champion_challenger(
    config: PipelineConfig, challenger: Candidate, scored: Evaluation, test, published: PublishedDataset
) -> dict:
    """Score the champion on the challenger's test split, decide, move the alias, log."""
    gate = config.evaluate
    metric = config.gate_metric
    check_metric(metric, scored.metrics, config.task)
    name, version = challenger.ref.name, challenger.ref.version
    if not name or not version:
        reason = f"{challenger.ref.uri} is not a registered model version: nothing to promote"
        say(f"evaluate: gate skipped: {reason}")
        return {"decision": "skipped", "reason": reason, "mode": gate.mode}
    current = alias_version(name, CHAMPION)
    champion_version = int(current.version) if current else None
    champion: Evaluation | None = None
    not_comparable = None
    if champion_version == version:
        not_comparable = f"version {version} is already the champion"
    elif champion_version is not None:
        candidate = load_candidate(f"models:/{name}/{champion_version}")
        problem = label_map_problem(candidate.predictor, published.manifest)
        if problem:
            not_comparable = f"the champion (version {champion_version}) has another label map ({problem}): kept"
        else:
            champion = evaluate_split(candidate.predictor, test, config.task, "test", config.train.eval_batch_size)
            say(f"evaluate: champion version {champion_version}: " + _shown(champion.metrics))
    decision = decide(
        gate, metric, scored.metrics, scored.per_class, champion.metrics if champion else None, not_comparable
    )
    if decision.promote and gate.mode == "enabled":
        with_retry("move the champion alias", set_alias, name, CHAMPION, version)
        action = "promoted"
    elif decision.promote:
        action = "would_promote"  # dry_run: decided and logged, nothing moved
    else:
        action = "kept"
    record = {
        "decision": action,
        "reason": decision.reason,
        "mode": gate.mode,
        "metric": metric,
        "challenger_version": version,
        "champion_version_before": champion_version,
        "champion_version": version if action == "promoted" else champion_version,
        "challenger": scored.metrics,
        "champion": champion.metrics if champion else None,
        "difference": {k: scored.metrics[k] - champion.metrics[k] for k in scored.metrics} if champion else None,
        "gate": gate.model_dump(),
    }
    if challenger.ref.run_id:
        _log_gate(challenger.ref.run_id, record, decision, scored, champion)
    say(
        f"evaluate: gate {action}: {decision.reason}"
        + (f" (models:/{name}@{CHAMPION} -> version {version})" if action == "promoted" else "")
    )
    return record


def _log_gate(run_id: str, record: dict, decision: Decision, scored: Evaluation, champion: Evaluation | None) -> None:
    client = mlflow.tracking.MlflowClient()
    now = int(time.time() * 1000)
    values = {f"gate_challenger_test_{k}": v for k, v in scored.metrics.items()}
    if champion:
        values.update({f"gate_champion_test_{k}": v for k, v in champion.metrics.items()})
        values["gate_difference"] = decision.difference
    values["gate_promoted"] = float(record["decision"] == "promoted")
    metrics = [Metric(k, float(v), now, 0) for k, v in values.items()]
    with_retry("log the gate metrics", client.log_batch, run_id, metrics=metrics)
    for key, value in (("decision", record["decision"]), ("reason", decision.reason), ("mode", record["mode"])):
        with_retry("tag the gate decision", client.set_tag, run_id, f"lakefine.gate.{key}", str(value)[:5000])
    with_retry("log the gate record", client.log_dict, run_id, record, "evaluation/gate.json")
    if champion and scored.per_class:
        log_figures(
            run_id,
            {"plots/champion_vs_challenger_f1.png": plots.champion_vs_challenger(scored.per_class, champion.per_class)},
        )


def _shown(metrics: dict) -> str:
    return ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
