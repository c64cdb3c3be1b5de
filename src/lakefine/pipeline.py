"""The one entry point every caller uses: the CLI, the bundle's job scripts and the
notebooks call these functions and nothing else."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

from lakefine import handoff, paths
from lakefine.config import PipelineConfig
from lakefine.errors import HandoffError, Preempted
from lakefine.log import say


@dataclass
class TrainResult:
    run_id: str
    model_dir: str
    metrics: dict
    registration: dict
    timings: dict = field(default_factory=dict)
    resumed_from_step: int = 0

    def summary(self) -> dict:
        return {"run_id": self.run_id, "model_dir": self.model_dir, "metrics": self.metrics,
                **self.registration, "timings": self.timings, "resumed_from_step": self.resumed_from_step}


def prepare(config: PipelineConfig, spark=None, df=None):
    """Spark side: source -> published dataset. ``df`` overrides the configured source."""
    from lakefine.session import configure_hf_caches

    configure_hf_caches(config.runtime.volume)
    from lakefine.prepare import prepare as prepare_in_spark

    return prepare_in_spark(config, spark=spark, df=df)


def published_dataset(config: PipelineConfig, dataset: Optional[str] = None) -> handoff.PublishedDataset:
    if dataset:
        return handoff.PublishedDataset.open(dataset)
    from lakefine.prepare import datasets_root

    latest = handoff.latest_published(datasets_root(config))
    if latest is None:
        raise HandoffError(
            f"no prepared dataset for pipeline {config.name!r} under {datasets_root(config)};"
            " run `lakefine prepare` first"
        )
    return latest


def train(config: PipelineConfig, dataset: Optional[str | handoff.PublishedDataset] = None,
          fresh: bool = False) -> TrainResult:
    """Training side: published dataset -> fine-tuned model, tracked and registered.

    A rerun of an interrupted training (same config and data, run not finished)
    resumes from the newest complete checkpoint into the same MLflow run;
    ``fresh=True`` starts over."""
    from lakefine.session import configure_hf_caches

    configure_hf_caches(config.runtime.volume)
    import mlflow

    from lakefine import checkpoints, tracking
    from lakefine.train import fit

    published = dataset if isinstance(dataset, handoff.PublishedDataset) else published_dataset(config, dataset)
    experiment_id = tracking.setup(config)
    attempt = checkpoints.attempt_key(config.flat_params(), published.key)
    local_dir = paths.scratch_dir(config.runtime.working_dir, f"checkpoints/{config.name}/{attempt}")
    volume_dir = paths.resolve(f"{config.runtime.volume}/checkpoints/{config.name}/{attempt}",
                               config.runtime.local_root)
    unfinished = None if fresh else tracking.find_unfinished_run(experiment_id, attempt)
    resume_from = checkpoints.newest_complete(local_dir, volume_dir) if unfinished else None
    if resume_from is None:
        checkpoints.wipe(local_dir, volume_dir)  # nothing to resume: no stale state either
        local_dir.mkdir(parents=True, exist_ok=True)
    run_id = unfinished.info.run_id if unfinished and resume_from else None

    with tracking.started_run(run_id=run_id, experiment_id=None if run_id else experiment_id,
                              run_name=None if run_id else config.name,
                              tags=None if run_id else {tracking.ATTEMPT_TAG: attempt}) as run:
        run_id = run.info.run_id
        say(f"train: MLflow run {run_id} in experiment {config.experiment_name} ({mlflow.get_tracking_uri()})"
            + (f", resuming from {resume_from.name}" if resume_from else ""))
        logged_until = tracking.last_logged_step(run_id) if resume_from else 0
        if not resume_from:
            tracking.log_run_inputs(config, published.manifest)
        mlflow.set_tag("lakefine.resumed_from_step", checkpoints.step_of(resume_from) if resume_from else 0)
        model_dir = paths.resolve(f"{config.runtime.volume}/models/{config.name}/{run_id}",
                                  config.runtime.local_root)
        try:
            if config.train.num_processes > 1:  # DDP through Spark's TorchDistributor
                from lakefine.distributed import train_distributed

                result = train_distributed(config, published.path, config.train.num_processes,
                                           output_dir=local_dir, model_dir=model_dir, resume_from=resume_from,
                                           run_id=run_id, logged_until=logged_until, volume_dir=volume_dir)
            else:
                result = fit(config, published, local_dir, resume_from=resume_from,
                             callbacks=[tracking.metrics_callback(logged_until), checkpoints.mirror_callback(volume_dir)])
        except Preempted:
            checkpoints.mirror_newest(local_dir, volume_dir)
            mlflow.end_run(status="KILLED")
            raise
        tracking.with_retry("log the final metrics", mlflow.log_metrics, result.metrics)
        if config.train.num_processes <= 1:  # distributed: rank 0 has saved it, once
            result.model.save_pretrained(model_dir)
            result.tokenizer.save_pretrained(model_dir)
        tracking.log_test_predictions(result.test_predictions)
        stage = time.perf_counter()
        registration = tracking.log_and_register_model(config, result, model_dir)
        result.timings["log_model"] = time.perf_counter() - stage
    checkpoints.wipe(local_dir, volume_dir)  # finished: the model is saved and registered
    from lakefine.cli import headline_metrics

    say(f"train: test {headline_metrics(result.metrics) or '(no test split)'}, "
        f"model saved to {model_dir}, registered as {registration.get('registered_uri')}")
    return TrainResult(run_id, str(model_dir), result.metrics, registration, result.timings,
                       resumed_from_step=checkpoints.step_of(resume_from) if resume_from else 0)


def run(config: PipelineConfig, spark=None, df=None, fresh: bool = False) -> dict:
    """Prepare then train. The tracking store is checked first, so an unreachable
    server fails in seconds, before any Spark work."""
    from lakefine import tracking

    started = time.perf_counter()
    tracking.setup(config)
    prepared = prepare(config, spark=spark, df=df)
    trained = train(config, prepared.dataset, fresh=fresh)
    return {"prepare": prepared.summary(), "train": trained.summary(),
            "prepare_timings": prepared.timings, "wall_seconds": time.perf_counter() - started}


def evaluate(config: PipelineConfig, model_uri: Optional[str] = None, dataset: Optional[str] = None) -> dict:
    """Score a model (default: the registered ``challenger``) on the published test split."""
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score

    from lakefine import tracking
    from lakefine.predict import Predictor

    tracking.setup(config)
    uri = model_uri or f"models:/{tracking.registered_name(config)}@{tracking.ALIAS}"
    test = published_dataset(config, dataset).load().get("test")
    if test is None or len(test) == 0:
        raise HandoffError(f"pipeline {config.name!r}: the published dataset has no test split; set split.test > 0")
    pairs = test["text_pair"] if "text_pair" in test.column_names else None
    predicted = [p["label_id"] for p in Predictor.load(uri).predict(test["text"], pairs)]
    labels = np.array(test["label"])
    average = "binary" if len(set(labels) | set(predicted)) <= 2 else "macro"
    metrics = {
        "accuracy": float(accuracy_score(labels, predicted)),
        "f1": float(f1_score(labels, predicted, average=average, zero_division=0)),
        "f1_macro": float(f1_score(labels, predicted, average="macro", zero_division=0)),
    }
    say(f"evaluate: {uri} on {len(labels):,} test rows: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    return {"model_uri": uri, "rows": len(labels), "metrics": metrics}
