"""Distributed training through Spark's TorchDistributor: two CPU processes (gloo) run
the same ``fit`` as a single-process run; both train, rank 0 alone saves and logs."""

import json

import mlflow
import pytest

from conftest import make_config
from lakefine import pipeline
from lakefine.prep.prepare import prepare
from lakefine.prep.sources import read_source
from lakefine.tracking.runs import load_json_artifact

STEPS = 4


@pytest.mark.slow
def test_two_processes_both_train_and_the_model_is_saved_once(spark, local_root):
    config = make_config(train={"max_steps": STEPS, "batch_size": 8, "logging_steps": 2, "num_processes": 2})
    # A few hundred real rows keep tokenizing and evaluating short; the distribution is the subject.
    rows = read_source(spark, config.source, config.runtime).orderBy("text").limit(600)
    prepared = prepare(config, spark=spark, df=rows)

    result = pipeline.train(config, prepared.dataset)

    run = mlflow.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    record = load_json_artifact(result.run_id, "distributed.json")
    ranks = sorted(record["ranks"], key=lambda r: r["rank"])
    assert [r["rank"] for r in ranks] == [0, 1]
    for r in ranks:  # each rank took every optimizer step of the DDP run
        assert r["world_size"] == 2 and r["process_index"] == r["rank"]
        assert r["global_step"] == STEPS and r["steps_run"] == STEPS
    assert [r["is_world_process_zero"] for r in ranks] == [True, False]

    # Per-step metrics come from rank 0 only: each logged step appears once. The loss is
    # a mean, not scaled by the world size (two classes at random init: ~ln 2, not 2 ln 2).
    losses = mlflow.tracking.MlflowClient().get_metric_history(result.run_id, "loss")
    assert [m.step for m in losses] == [2, 4]
    assert all(m.value < 1.0 for m in losses), [m.value for m in losses]
    assert "test_accuracy" in result.metrics

    # Saved once: exactly one model directory, the one the run points at, complete.
    models_root = local_root / "Volumes/main/lakefine/prep/models" / config.name
    model_dirs = [p for p in models_root.iterdir() if p.is_dir()]
    assert [str(p) for p in model_dirs] == [result.model_dir]
    assert len(list(models_root.rglob("model.safetensors"))) == 1
    assert (model_dirs[0] / "tokenizer.json").is_file()
    assert json.loads((model_dirs[0] / "config.json").read_text())["id2label"] == {"0": "fresh", "1": "rotten"}
