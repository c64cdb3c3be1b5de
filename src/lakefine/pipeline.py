"""The one entry point every caller uses: the CLI, the bundle's job scripts and the
notebooks call these functions and nothing else.

It sits above the sides and imports each of them inside the function that needs it:
``prepare`` must not load torch (a CPU cluster, and seconds of imports) and ``train``
must not load pyspark (the GPU node only trains). ``score`` composes two sides: the
Spark side reads the input, the scoring side adds the predictions (torch loads only in
the Python workers).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from lakefine.core import paths
from lakefine.core.assets import resolve_model
from lakefine.core.config import PipelineConfig
from lakefine.core.dataset import PublishedDataset, dataset_settings, pointed_dataset, settings_mismatch
from lakefine.core.errors import HandoffError, Preempted
from lakefine.core.log import say
from lakefine.core.metrics import headline
from lakefine.core.redact import redact_text
from lakefine.core.session import configure_hf_caches
from lakefine.tracking import client as tracking_client


@dataclass
class TrainResult:
    run_id: str
    model_dir: str
    metrics: dict
    registration: dict
    timings: dict = field(default_factory=dict)
    resumed_from_step: int = 0
    best_step: int | None = None  # the checkpoint the final model comes from

    def summary(self) -> dict:
        return {
            "run_id": self.run_id,
            "model_dir": self.model_dir,
            "metrics": self.metrics,
            **self.registration,
            "timings": self.timings,
            "resumed_from_step": self.resumed_from_step,
            "best_step": self.best_step,
        }


def prepare(config: PipelineConfig, spark=None, df=None):
    """Spark side: source -> published dataset. ``df`` overrides the configured source."""
    configure_hf_caches(config.runtime.volume)
    from lakefine.prep.prepare import prepare as prepare_in_spark  # the Spark side: see the docstring

    return prepare_in_spark(config, spark=spark, df=df)


def published_dataset(config: PipelineConfig, dataset: str | None = None) -> PublishedDataset:
    """``dataset`` if given, else the one ``prepare`` named last for this pipeline (its
    pointer), never "the newest": another prepare may have published since."""
    if dataset:
        return PublishedDataset.open(dataset)
    root = paths.datasets_root(config.runtime.volume, config.name, config.runtime.local_root)
    pointed = pointed_dataset(root)
    if pointed is None:
        raise HandoffError(
            f"no prepared dataset for pipeline {config.name!r} under {root}; run `lakefine prepare` first"
            " (or pass --dataset DIR)"
        )
    return pointed


def check_dataset_matches(config: PipelineConfig, published: PublishedDataset, allow: bool = False) -> list[str]:
    """The settings where ``published`` differs from ``config``; refused unless ``allow``."""
    model_dir = resolve_model(config.model.name_or_path, config.runtime.local_root)
    mismatch = settings_mismatch(published.manifest, dataset_settings(config, model_dir))
    if mismatch and not allow:
        listed = "\n".join(f"  - {line}" for line in mismatch)
        raise HandoffError(
            f"the dataset {published.path} was prepared with other settings than this config:\n{listed}\n"
            "Run `lakefine prepare` with this config first, or pass --dataset DIR --allow-config-mismatch"
            " to train it anyway (the run is then tagged lakefine.config_mismatch)"
        )
    if mismatch:
        say(f"train: warning: training a dataset prepared with other settings ({'; '.join(mismatch)})")
    return mismatch


def train(
    config: PipelineConfig,
    dataset: str | PublishedDataset | None = None,
    fresh: bool = False,
    allow_config_mismatch: bool = False,
) -> TrainResult:
    """Training side: published dataset -> fine-tuned model, tracked and registered.

    The dataset must have been prepared with the settings this config logs (task,
    split, label policy, model and tokenizer, max_length, seq2seq): a mismatch is
    refused, or with ``allow_config_mismatch`` trained anyway and tagged on the run.
    A rerun of an interrupted training (same config and data, run not finished)
    resumes from the newest complete checkpoint into the same MLflow run;
    ``fresh=True`` starts over."""
    configure_hf_caches(config.runtime.volume)
    # The training side (torch, transformers, mlflow): see the module docstring.
    from lakefine.training import attempts

    published = dataset if isinstance(dataset, PublishedDataset) else published_dataset(config, dataset)
    mismatch = check_dataset_matches(config, published, allow_config_mismatch)
    experiment_id = tracking_client.setup(config)
    attempt = attempts.attempt_for(config, published)
    with attempts.held(config, attempt, published):  # one training per attempt; pruning spares the dataset
        attempts.clean_abandoned(config, attempt)
        run_id, resume_from = attempts.resume_point(experiment_id, attempt, fresh)
        return _train_attempt(config, published, attempt, experiment_id, run_id, resume_from, mismatch)


def _train_attempt(config, published, attempt, experiment_id, run_id, resume_from, mismatch) -> TrainResult:
    import mlflow

    from lakefine.core.files import replace_directory
    from lakefine.evaluation.report import finish_training
    from lakefine.serving.mlflow_model import log_and_register_model
    from lakefine.tracking import runs
    from lakefine.training import checkpoints
    from lakefine.training.callbacks import BestCheckpoint, MirrorCheckpoints, MlflowMetrics
    from lakefine.training.tasks import fit

    local_dir, volume_dir = attempt.local_dir, attempt.volume_dir
    best = BestCheckpoint()
    with runs.started_run(
        run_id=run_id,
        experiment_id=None if run_id else experiment_id,
        run_name=None if run_id else config.name,
        tags=None if run_id else {runs.ATTEMPT_TAG: attempt.key},
    ) as run:
        run_id = run.info.run_id
        say(
            f"train: MLflow run {run_id} in experiment {config.experiment_name} ({mlflow.get_tracking_uri()})"
            + (f", resuming from {resume_from.name}" if resume_from else "")
        )
        logged_until = runs.last_logged_step(run_id) if resume_from else 0
        if not resume_from:
            runs.log_run_inputs(config, published.manifest)
        if mismatch:
            mlflow.set_tag("lakefine.config_mismatch", redact_text("; ".join(mismatch))[:5000])
        mlflow.set_tag("lakefine.resumed_from_step", checkpoints.step_of(resume_from) if resume_from else 0)
        model_dir = paths.resolve(f"{config.runtime.volume}/models/{config.name}/{run_id}", config.runtime.local_root)
        # Written under a staging name and renamed: a model directory is whole or absent.
        staging = model_dir.with_name(f".staging-{run_id}")
        checkpoints.wipe(staging)
        try:
            if config.train.num_processes > 1:
                result = _train_distributed(
                    config, published, local_dir, staging, resume_from, run_id, logged_until, volume_dir
                )
            else:
                result = fit(
                    config,
                    published,
                    local_dir,
                    resume_from=resume_from,
                    callbacks=[MlflowMetrics(logged_until), MirrorCheckpoints(volume_dir), best],
                )
        except Preempted:
            checkpoints.seal_saved(local_dir)  # the JIT checkpoint SIGTERM saved
            checkpoints.mirror_best_and_newest(local_dir, volume_dir)
            mlflow.end_run(status="KILLED")
            raise
        tracking_client.with_retry("log the final metrics", mlflow.log_metrics, result.metrics)
        tracking_client.with_retry("log what training ran with", mlflow.log_params, result.runtime)
        if config.train.num_processes <= 1:  # distributed: rank 0 has saved it, once
            result.model.save_pretrained(staging)
            result.tokenizer.save_pretrained(staging)
        finish_training(config, published, result, staging, run_id)  # settings, model card, plots
        replace_directory(staging, model_dir)  # complete, card and settings included
        runs.log_test_predictions(result.test_predictions)
        stage = time.perf_counter()
        registration = log_and_register_model(config, result, model_dir)
        result.timings["log_model"] = time.perf_counter() - stage
    checkpoints.wipe(local_dir, volume_dir)  # finished: the model is saved and registered
    say(
        f"train: test {headline(result.metrics) or '(no test split)'}, "
        f"model saved to {model_dir}, registered as {registration.get('registered_uri')}"
    )
    return TrainResult(
        run_id,
        str(model_dir),
        result.metrics,
        registration,
        result.timings,
        resumed_from_step=checkpoints.step_of(resume_from) if resume_from else 0,
        best_step=best.step,
    )


def run(config: PipelineConfig, spark=None, df=None, fresh: bool = False) -> dict:
    """Prepare then train. The tracking store is checked first, so an unreachable
    server fails in seconds, before any Spark work."""
    started = time.perf_counter()
    tracking_client.setup(config)
    prepared = prepare(config, spark=spark, df=df)
    trained = train(config, prepared.dataset, fresh=fresh)
    return {
        "prepare": prepared.summary(),
        "train": trained.summary(),
        "prepare_timings": prepared.timings,
        "wall_seconds": time.perf_counter() - started,
    }


def _train_distributed(
    config: PipelineConfig,
    published: PublishedDataset,
    local_dir: Path,
    model_dir: Path,
    resume_from: Path | None,
    run_id: str,
    logged_until: int,
    volume_dir: Path,
):
    """DDP through Spark's TorchDistributor: the launcher needs the Spark session,
    which this entry point (not the training side) builds."""
    from lakefine.prep.session import get_spark  # both sides: see the module docstring
    from lakefine.training.distributed import train_distributed

    return train_distributed(
        config,
        published.path,
        config.train.num_processes,
        output_dir=local_dir,
        model_dir=model_dir,
        resume_from=resume_from,
        run_id=run_id,
        logged_until=logged_until,
        volume_dir=volume_dir,
        spark=get_spark(config.runtime.spark_master),
    )


def evaluate(config: PipelineConfig, model_uri: str | None = None, dataset: str | None = None) -> dict:
    """Score a model (default: the registered ``challenger``) on the test split of the
    dataset its run was trained on, with the same evaluation training reported; then
    the champion / challenger gate of the ``evaluate`` config section."""
    configure_hf_caches(config.runtime.volume)
    from lakefine.evaluation.evaluate import evaluate as evaluate_model  # torch: see the module docstring

    return evaluate_model(config, model_uri, dataset)


def score(
    config: PipelineConfig,
    spark=None,
    df=None,
    *,
    model_uri: str | None = None,
    input_table: str | None = None,
    input_path: str | None = None,
    input_sql: str | None = None,
):
    """A lazy DataFrame: every input column plus ``prediction``, ``score_error``,
    ``model_uri``, ``model_version`` and ``scored_at``. ``df`` (any DataFrame with the
    pipeline's text column) beats the input flags, which beat the pipeline's source.
    The model: ``model_uri``, else the registered ``champion``, else the ``challenger``."""
    from lakefine.prep.session import get_spark  # the Spark side reads: see the module docstring
    from lakefine.prep.sources import read_source
    from lakefine.scoring.frame import score_frame
    from lakefine.scoring.inputs import input_source
    from lakefine.scoring.model import resolve_model

    source = input_source(config, input_table, input_path, input_sql) if df is None else None
    model = resolve_model(config, model_uri)
    if df is None:
        df = read_source(spark or get_spark(config.runtime.spark_master), source, config.runtime)
    return score_frame(df, model, config)


def score_and_write(
    config: PipelineConfig,
    *,
    output_table: str | None = None,
    output_path: str | None = None,
    incremental: bool = False,
    model_uri: str | None = None,
    input_table: str | None = None,
    input_path: str | None = None,
    input_sql: str | None = None,
    spark=None,
) -> dict:
    """``lakefine score`` and the bundle's score job: score, write, account for every
    row (rows out = rows in, or an error). ``incremental``: the input is read as a
    stream with an availableNow trigger and a checkpoint on the volume, so a rerun
    scores only what is new."""
    from lakefine.prep.session import get_spark  # both sides: see the module docstring
    from lakefine.prep.sources import read_source, read_stream
    from lakefine.scoring import sink
    from lakefine.scoring.frame import score_frame
    from lakefine.scoring.inputs import input_name, input_source
    from lakefine.scoring.model import resolve_model

    output = sink.Output.of(output_table, output_path)
    source = input_source(config, input_table, input_path, input_sql, incremental=incremental)
    model = resolve_model(config, model_uri)  # before Spark starts: a missing model fails in seconds
    spark = spark or get_spark(config.runtime.spark_master)
    say(f"score: {input_name(source)} with {model.uri}" + (f" (version {model.version})" if model.version else ""))
    if incremental:
        df = read_stream(spark, source, config.runtime, config.score.max_files_per_trigger)
        summary = sink.write_incremental(spark, score_frame(df, model, config), input_name(source), output, config)
    else:
        df = read_source(spark, source, config.runtime)
        summary = sink.write_batch(spark, df, score_frame(df, model, config), output, config)
    return {"input": input_name(source), "model_uri": model.uri, "model_version": model.version, **summary}
