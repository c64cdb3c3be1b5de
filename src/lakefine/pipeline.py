"""The one entry point every caller uses: the CLI, the bundle's job scripts and the
notebooks call these functions and nothing else."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

from lakefine import handoff, paths
from lakefine.config import PipelineConfig
from lakefine.errors import HandoffError
from lakefine.log import say


@dataclass
class TrainResult:
    run_id: str
    model_dir: str
    metrics: dict
    registration: dict
    timings: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {"run_id": self.run_id, "model_dir": self.model_dir, "metrics": self.metrics,
                **self.registration, "timings": self.timings}


def prepare(config: PipelineConfig, spark=None, df=None):
    """Spark side: source -> published dataset. ``df`` overrides the configured source."""
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


def train(config: PipelineConfig, dataset: Optional[str | handoff.PublishedDataset] = None) -> TrainResult:
    """Training side: published dataset -> fine-tuned model, tracked and registered."""
    import mlflow

    from lakefine import tracking
    from lakefine.train import fit

    published = dataset if isinstance(dataset, handoff.PublishedDataset) else published_dataset(config, dataset)
    experiment_id = tracking.setup(config)
    with mlflow.start_run(experiment_id=experiment_id, run_name=config.name) as run:
        run_id = run.info.run_id
        say(f"train: MLflow run {run_id} in experiment {config.experiment_name} ({mlflow.get_tracking_uri()})")
        tracking.log_run_inputs(config, published.manifest)
        checkpoints = paths.scratch_dir(config.runtime.working_dir, f"checkpoints/{config.name}/{run_id}")
        result = fit(config, published, checkpoints, callbacks=[tracking.metrics_callback()])
        mlflow.log_metrics(result.metrics)
        model_dir = paths.resolve(f"{config.runtime.volume}/models/{config.name}/{run_id}",
                                  config.runtime.local_root)
        result.model.save_pretrained(model_dir)
        result.tokenizer.save_pretrained(model_dir)
        tracking.log_test_predictions(result.test_predictions)
        stage = time.perf_counter()
        registration = tracking.log_and_register_model(config, result, model_dir)
        result.timings["log_model"] = time.perf_counter() - stage
    say(f"train: test accuracy {result.metrics.get('test_accuracy', float('nan')):.4f}, "
        f"model saved to {model_dir}, registered as {registration.get('registered_uri')}")
    return TrainResult(run_id, str(model_dir), result.metrics, registration, result.timings)


def run(config: PipelineConfig, spark=None, df=None) -> dict:
    """Prepare then train. The tracking store is checked first, so an unreachable
    server fails in seconds, before any Spark work."""
    from lakefine import tracking

    started = time.perf_counter()
    tracking.setup(config)
    prepared = prepare(config, spark=spark, df=df)
    trained = train(config, prepared.dataset)
    return {"prepare": prepared.summary(), "train": trained.summary(),
            "prepare_timings": prepared.timings, "wall_seconds": time.perf_counter() - started}


def evaluate(config: PipelineConfig, model_uri: Optional[str] = None, dataset: Optional[str] = None) -> dict:
    """Score a model (default: the registered ``challenger``) on the published test split."""
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score

    from lakefine import tracking
    from lakefine.predict import Predictor

    tracking.setup(config)
    uri = model_uri or f"models:/{config.registered_model_name}@{tracking.ALIAS}"
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
