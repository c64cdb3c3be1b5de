"""Distributed training through Spark's TorchDistributor: the same ``lakefine.training.tasks.fit``
in every process, launched by ``torchrun`` (local mode: on the driver; cluster mode: in
barrier tasks on the executors).

The HF Trainer reads torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*) and
trains with DDP (gloo on CPU, nccl on GPUs); every rank sees a disjoint shard of each
batch stream, gradients are averaged. Only rank 0 saves: the Trainer's checkpoints (its
own rule), the final model and tokenizer (ours, below), the per-step MLflow metrics and
the result file the driver reads back. This is the one module of the training side that imports pyspark (the launcher
needs Spark's TorchDistributor); ``lakefine.pipeline.train`` calls it, with its Spark
session, when ``train.num_processes`` is above 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import mlflow
import torch
from pyspark.ml.torch.distributor import TorchDistributor
from transformers import AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

from lakefine.core.config import PipelineConfig
from lakefine.core.dataset import PublishedDataset
from lakefine.core.errors import Preempted, TrainingError
from lakefine.core.labels import LabelMap
from lakefine.core.log import say
from lakefine.training.callbacks import MirrorCheckpoints, MlflowMetrics, RankRecord
from lakefine.training.common import FitResult, encoding_for, load_tokenizer, model_inputs
from lakefine.training.tasks import fit

RESULT_FILE = "rank0-result.json"
RANKS_DIR = "ranks"


def train_distributed(
    config: PipelineConfig,
    published_dataset_path: str | Path,
    num_processes: int,
    *,
    output_dir: Path | None = None,
    model_dir: Path | None = None,
    resume_from: Path | None = None,
    run_id: str | None = None,
    logged_until: int = 0,
    volume_dir: Path | None = None,
    spark,
):
    """Run ``fit`` in ``num_processes`` processes and return a ``FitResult`` like the
    single-process path. Rank 0 saves the model and tokenizer to ``model_dir`` (the
    driver reloads them from there, e.g. for MLflow). With ``run_id``, rank 0 logs the
    per-step metrics into that MLflow run; with ``volume_dir``, checkpoints are mirrored.

    Local mode (a ``local[...]`` master) runs torchrun on the driver. On a cluster the
    processes run in barrier tasks on the executors: ``model_dir`` must then be shared
    storage (a volume; the result file goes next to it), ``output_dir`` is each node's
    local scratch for checkpoints (mirrored to ``volume_dir``). ``spark`` is the
    session the entry point holds: this side never builds one."""
    if num_processes < 1:
        raise TrainingError(f"train.num_processes: must be >= 1 (got {num_processes})")
    published = PublishedDataset.open(published_dataset_path)
    output_dir = (
        Path(output_dir)
        if output_dir
        else Path(os.environ.get("TMPDIR", "/tmp")) / "lakefine" / f"distributed-{published.key}"
    )
    model_dir = Path(model_dir) if model_dir else output_dir / "model"
    output_dir.mkdir(parents=True, exist_ok=True)

    max_length = int(published.manifest["max_length"])
    if config.task != "seq2seq":
        # A dataset without ready ids is tokenized once here: every rank then reads the
        # cached Arrow files instead of computing and writing the same cache files side
        # by side. A dataset prepare tokenized in Spark needs nothing.
        tokenizer = load_tokenizer(published.manifest["model_dir"], max_length)
        data = published.load()
        model_inputs(data, tokenizer, published, encoding_for(config, published, tokenizer, data))

    local = _is_local_master(spark)
    # Where the ranks leave their records and rank 0 its result for the driver: next to
    # the checkpoints in local mode; next to the model (a volume, shared) on a cluster.
    results_dir = output_dir if local else model_dir.parent / f".distributed-{model_dir.name}"
    results_dir.mkdir(parents=True, exist_ok=True)
    for stale in (results_dir / RESULT_FILE, *(results_dir / RANKS_DIR).glob("rank-*.json")):
        stale.unlink(missing_ok=True)
    use_gpu = torch.cuda.is_available()
    distributor = TorchDistributor(num_processes=num_processes, local_mode=local, use_gpu=use_gpu)
    tracking_uri = mlflow.get_tracking_uri() if run_id else None
    say(
        f"train: {num_processes} processes through TorchDistributor"
        f" ({'local mode' if local else 'barrier tasks'}, {'GPU' if use_gpu else 'CPU, gloo'})"
    )
    started = time.perf_counter()
    # torchrun's output goes to stdout; keep stdout for --json summaries.
    with contextlib.redirect_stdout(sys.stderr):
        distributor.run(
            run_rank,
            config,
            str(published.path),
            str(output_dir),
            str(results_dir),
            str(model_dir),
            str(resume_from) if resume_from else None,
            run_id,
            tracking_uri,
            logged_until,
            str(volume_dir) if volume_dir else None,
        )
    elapsed = time.perf_counter() - started

    ranks = [json.loads(p.read_text()) for p in sorted((results_dir / RANKS_DIR).glob("rank-*.json"))]
    _log_ranks(num_processes, ranks)
    result_path = results_dir / RESULT_FILE
    if not result_path.is_file():
        raise TrainingError(f"distributed training finished but rank 0 left no result at {result_path}")
    record = json.loads(result_path.read_text())
    if results_dir != output_dir:
        shutil.rmtree(results_dir, ignore_errors=True)
    if record.get("preempted"):
        raise Preempted(record["preempted"])
    if config.task == "seq2seq":
        model_class, label_map = AutoModelForSeq2SeqLM, None
    else:
        model_class = AutoModelForSequenceClassification
        label_map = LabelMap.from_json(published.manifest["label_map"])
    model = model_class.from_pretrained(model_dir)
    tokenizer = load_tokenizer(str(model_dir), max_length)
    timings = dict(record["timings"], distributed_wall=elapsed)
    return FitResult(
        model,
        tokenizer,
        label_map,
        record["metrics"],
        record["test_predictions"],
        timings,
        settings=record.get("settings", {}),  # fitted on validation by rank 0 (thresholds, temperature)
        runtime=record.get("runtime", {}),  # rank 0's device, not this driver's
    )


def run_rank(
    config: PipelineConfig,
    dataset_path: str,
    output_dir: str,
    results_dir: str,
    model_dir: str,
    resume_from: str | None,
    run_id: str | None,
    tracking_uri: str | None,
    logged_until: int,
    volume_dir: str | None,
) -> dict:
    """One torchrun process: the single-process ``fit`` (the Trainer checkpoints into
    ``output_dir``), then rank 0 saves the model and writes its result to ``results_dir``."""
    rank = int(os.environ.get("RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    callbacks = [RankRecord(Path(results_dir) / RANKS_DIR, rank)]
    if volume_dir:
        callbacks.append(MirrorCheckpoints(Path(volume_dir)))
    mlflow_run = contextlib.nullcontext()
    if run_id and rank == 0:
        mlflow.set_tracking_uri(tracking_uri)
        callbacks.append(MlflowMetrics(logged_until))
        mlflow_run = _attached_run(run_id)
    record: dict = {"rank": rank, "world_size": world_size}
    try:
        with mlflow_run:
            result = fit(
                config,
                PublishedDataset.open(dataset_path),
                Path(output_dir),
                callbacks=callbacks,
                resume_from=Path(resume_from) if resume_from else None,
            )
    except Preempted as exc:
        record["preempted"] = str(exc)
    else:
        if rank == 0:
            result.model.save_pretrained(model_dir)
            result.tokenizer.save_pretrained(model_dir)
            record.update(
                metrics=result.metrics,
                test_predictions=result.test_predictions,
                timings=result.timings,
                settings=result.settings,
                runtime=result.runtime,
                model_dir=model_dir,
            )
    if rank == 0:
        path = Path(results_dir) / RESULT_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, path)
    return {"rank": rank, "world_size": world_size}


def _log_ranks(num_processes: int, ranks: list[dict]) -> None:
    """What each rank did, as an artifact of the active MLflow run (if any)."""
    say(
        "train: ranks "
        + ", ".join(f"{r['rank']}: {r['steps_run']} steps (world size {r['world_size']})" for r in ranks)
    )
    if mlflow.active_run() is not None:
        mlflow.log_dict({"num_processes": num_processes, "ranks": ranks}, "distributed.json")


@contextlib.contextmanager
def _attached_run(run_id: str):
    """Make the driver's MLflow run active in this process without finishing it: the
    driver owns the run's status (it logs the model and ends it)."""
    mlflow.start_run(run_id=run_id)
    try:
        yield
    finally:
        mlflow.end_run(status="RUNNING")


def _is_local_master(spark) -> bool:
    try:
        master = spark.conf.get("spark.master", "")
    except Exception:  # Spark Connect may refuse to read some confs
        master = ""
    return master == "local" or master.startswith("local[")
