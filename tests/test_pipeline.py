"""The whole pipeline through the CLI on the tiny model: prepare in Spark, train,
evaluate, log to MLflow, register, reload, predict."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, link_shared, run_cli, store_untouched, with_smoke_dataset
from lakefine import pipeline
from lakefine.core.dataset import PublishedDataset

SMOKE = str(REPO / "pipelines/smoke.yaml")


def cli(local_root, *args, check=True):
    """The CLI in a process of its own: for what a user's shell sees (exit code, stderr)."""
    env = {**os.environ, "LAKEFINE_LOCAL_ROOT": str(local_root)}
    env.pop("MLFLOW_TRACKING_URI", None)  # the local sqlite store under local_root
    return subprocess.run(
        [sys.executable, "-m", "lakefine.cli", *args], env=env, capture_output=True, text=True, check=check
    )


@pytest.fixture(scope="module")
def smoke_root(tmp_path_factory, shared_root, smoke_dataset):
    """One smoke run shared by the tests that inspect its outputs. Its prepare is a cache
    hit on the session's smoke dataset (a CLI prepare that runs Spark is
    ``smoke_prepared_by_cli``'s)."""
    root = with_smoke_dataset(link_shared(tmp_path_factory.mktemp("smoke-root"), shared_root), smoke_dataset)
    result = run_cli(root, "run", SMOKE, "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    return root, json.loads(result.stdout), result.stderr


@pytest.fixture()
def smoke_run(smoke_root, monkeypatch):
    root, summary, stderr = smoke_root
    monkeypatch.setenv("LAKEFINE_LOCAL_ROOT", str(root))
    yield summary, stderr
    os.environ.pop("MLFLOW_TRACKING_URI", None)


def test_run_tracks_registers_and_reports(smoke_run, smoke_root):
    local_root = smoke_root[0]
    import mlflow

    summary, stderr = smoke_run
    prepared, trained = summary["prepare"], summary["train"]
    rows = prepared["rows"]
    assert rows["input"] == rows["used"] + rows["quarantined"] == 12808
    assert prepared["labels"] == ["fresh", "rotten"]
    assert sum(prepared["splits"].values()) == rows["used"]
    assert 0.0 <= trained["metrics"]["test_accuracy"] <= 1.0
    from lakefine.cli import command  # the console script next to this interpreter: .venv/bin/lakefine

    assert f"Predict: {command()} predict models:/smoke_classifier@challenger" in stderr  # runs as printed
    assert "Traceback" not in stderr
    # fit() entry to the first optimizer step: after the ids are loaded, within training
    timings = trained["timings"]
    assert timings["tokenize"] < timings["first_step"] < timings["tokenize"] + timings["train"], timings
    assert f"train: first optimizer step done {timings['first_step']:.1f} s after fit() began" in stderr

    mlflow.set_tracking_uri(f"sqlite:///{local_root / 'mlflow.db'}")
    run = mlflow.get_run(trained["run_id"])
    assert run.data.params["lakefine.source.label_column"] == "category"
    assert run.data.params["data.key"] == prepared["key"]
    # what training really ran with, read off the loaded model (not from the config)
    assert run.data.params["train.attn_implementation"] in {"eager", "sdpa"}
    assert (run.data.params["train.weights_dtype"], run.data.params["train.device"]) == ("float32", "cpu")
    assert "test_accuracy" in run.data.metrics and "eval_loss" in run.data.metrics
    history = mlflow.tracking.MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [5, 10]  # per-step logging (logging_steps=5, max_steps=10)
    artifacts = {a.path for a in mlflow.tracking.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"label_map.json", "data_card.json", "test_predictions.json"} <= artifacts
    assert trained["model_uri"].startswith("models:/")  # MLflow 3 LoggedModel (transformers flavor)
    version = mlflow.tracking.MlflowClient().get_model_version_by_alias("smoke_classifier", "challenger")
    assert version.run_id == run.info.run_id

    saved = json.loads(
        (local_root / "Volumes/main/lakefine/prep/models/smoke" / trained["run_id"] / "config.json").read_text()
    )
    assert saved["id2label"] == {"0": "fresh", "1": "rotten"}


def test_registered_model_predicts_exactly_what_evaluation_saw(smoke_run, smoke_root):
    local_root = smoke_root[0]
    import mlflow

    from lakefine.serving.predictor import Predictor

    summary, _ = smoke_run
    mlflow.set_tracking_uri(f"sqlite:///{local_root / 'mlflow.db'}")
    evaluated = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(
                run_id=summary["train"]["run_id"], artifact_path="test_predictions.json"
            )
        ).read_text()
    )
    test = PublishedDataset.open(summary["prepare"]["dataset"]).load()["test"]
    assert [int(h) for h in test["row_hash"]] == evaluated["row_hash"]

    predictor = Predictor.load(summary["train"]["registered_uri"])
    predicted = predictor.predict(test["text"])
    assert [p["label_id"] for p in predicted] == evaluated["predicted"]
    probs = np.array([[p["probabilities"][label] for label in ("fresh", "rotten")] for p in predicted])
    assert np.abs(probs - np.array(evaluated["probabilities"])).max() < 1e-4


def test_predict_cli_prints_labels_and_probabilities(smoke_run, smoke_root, tmp_path):
    local_root = smoke_root[0]
    summary, _ = smoke_run
    texts = tmp_path / "texts.txt"
    texts.write_text("A triumph.\n\nA dull, lifeless mess.\n")
    out = run_cli(local_root, "predict", summary["train"]["model_dir"], "Great fun", "--file", str(texts), "--json")
    predictions = json.loads(out.stdout)["predictions"]
    assert [p["text"] for p in predictions] == ["Great fun", "A triumph.", "A dull, lifeless mess."]
    for p in predictions:
        assert p["label"] in ("fresh", "rotten")
        assert abs(sum(p["probabilities"].values()) - 1) < 1e-6
    plain = run_cli(local_root, "predict", summary["train"]["model_dir"], "Great fun").stdout
    assert "fresh=" in plain and "rotten=" in plain
    # the registered model, by alias, from the local registry
    by_alias = json.loads(
        run_cli(local_root, "predict", summary["train"]["registered_uri"], "Great fun", "--json").stdout
    )
    assert by_alias["predictions"][0]["probabilities"] == pytest.approx(predictions[0]["probabilities"], abs=1e-5)


@pytest.fixture(scope="module")
def two_datasets_root(tmp_path_factory, shared_root, smoke_dataset):
    """One root for the two "which dataset does train pick" tests: A is the session's
    smoke dataset (published here, so preparing it is a cache hit), B is prepared by
    whichever test comes first and is a cache hit for the other. The pointer, what
    train reads, moves with every prepare, cache hit or not."""
    return with_smoke_dataset(link_shared(tmp_path_factory.mktemp("two-datasets"), shared_root), smoke_dataset)


@pytest.fixture()
def two_datasets(two_datasets_root, monkeypatch):
    monkeypatch.setenv("LAKEFINE_LOCAL_ROOT", str(two_datasets_root))
    yield two_datasets_root
    os.environ.pop("MLFLOW_TRACKING_URI", None)


B = "source.where=category = 'fresh' OR text LIKE '%bad%'"


def test_train_alone_uses_the_dataset_prepare_named_last(two_datasets, spark):
    """Prepare A, then B (a newer dataset), then A again (a cache hit): train must train
    A, the dataset the last prepare named, not B, the newest one published."""
    from lakefine.core.config import load_config

    local_root = two_datasets
    a = pipeline.prepare(load_config(SMOKE), spark)
    b = pipeline.prepare(load_config(SMOKE, [B]), spark)
    assert b.dataset.key != a.dataset.key and b.dataset.manifest["published_at"] > a.dataset.manifest["published_at"]
    again = json.loads(run_cli(local_root, "prepare", SMOKE, "--json").stdout)
    assert again["cache_hit"] and again["key"] == a.dataset.key
    trained = json.loads(run_cli(local_root, "train", SMOKE, "train.max_steps=2", "--json").stdout)
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{local_root / 'mlflow.db'}")
    assert mlflow.get_run(trained["run_id"]).data.params["data.key"] == a.dataset.key


def test_the_job_entry_points_train_the_dataset_their_prepare_named(two_datasets, spark, capsys):
    """The bundle's prepare task for A, B, then A again; the finetune task gets the
    dataset the last prepare task named (``{{tasks.prepare.values.dataset}}``) and
    trains A, as does a finetune task with no --dataset (the pointer)."""
    import runpy

    import mlflow

    from lakefine.ops.jobs import run_job

    local_root = two_datasets

    def job(name, *argv):
        capsys.readouterr()
        step = runpy.run_path(str(REPO / f"pipelines/jobs/{name}.py"))["step"]  # not as __main__
        assert run_job(step, ["--pipeline", SMOKE, *argv]) == 0
        out = capsys.readouterr().out  # the Trainer prints its log dicts too: the summary comes last
        return json.loads(out[out.rindex("\n{\n") + 1 :] if not out.startswith("{\n") else out)

    a = job("prepare")
    b = job("prepare", B)
    again = job("prepare")
    assert b["key"] != a["key"] and again["key"] == a["key"] and again["cache_hit"]
    mlflow.set_tracking_uri(f"sqlite:///{local_root / 'mlflow.db'}")
    for argv in (["--dataset", again["dataset"]], []):
        trained = job("finetune", *argv, "train.max_steps=2")
        assert mlflow.get_run(trained["run_id"]).data.params["data.key"] == a["key"]


def test_train_refuses_a_dataset_prepared_with_other_settings(local_root, spark, smoke_dataset):
    """``split.seed=7`` on a seed-42 dataset, or another model: refused before any MLflow
    run, each differing key named with both values; with --dataset and
    --allow-config-mismatch it trains, and the run says so."""
    from lakefine.core.assets import resolve_model
    from lakefine.core.config import load_config
    from lakefine.core.dataset import dataset_settings, settings_mismatch
    from lakefine.core.errors import HandoffError

    with_smoke_dataset(local_root, smoke_dataset)
    prepared = pipeline.prepare(load_config(SMOKE), spark)  # a cache hit: the dataset is not what this is about
    with pytest.raises(HandoffError) as refused:
        pipeline.train(load_config(SMOKE, ["split.seed=7", "model.name_or_path=minilm"]))
    message = str(refused.value)
    assert "split.seed: dataset 42, config 7" in message
    assert "model.name_or_path: dataset 'tiny-random-bert', config 'minilm'" in message
    assert "model.files: dataset" in message  # a different model, whatever its tokenizer
    assert "lakefine prepare" in message and "--allow-config-mismatch" in message
    assert store_untouched(local_root)  # refused before any tracking
    # labels.threshold is used by training only: it is not part of the dataset
    threshold = load_config(SMOKE, ["labels.threshold=0.3"])
    model_dir = resolve_model(threshold.model.name_or_path)
    assert settings_mismatch(prepared.dataset.manifest, dataset_settings(threshold, model_dir)) == []

    trained = json.loads(
        run_cli(
            local_root,
            "train",
            SMOKE,
            "split.seed=7",
            "train.max_steps=2",
            "--dataset",
            str(prepared.dataset.path),
            "--allow-config-mismatch",
            "--json",
        ).stdout
    )
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{local_root / 'mlflow.db'}")
    tags = mlflow.get_run(trained["run_id"]).data.tags
    assert tags["lakefine.config_mismatch"] == "split.seed: dataset 42, config 7"


# A misspelled column (a JVM start) and a directory that is not a model are in
# tests/test_bad_input.py's subprocess cases (the sweep's missing_column, cli predict).
@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", SMOKE, "train.epocs=2"], "did you mean 'train.epochs'"),
        (
            ["prepare", SMOKE, "source.path=/Volumes/main/lakefine/raw/nope.csv"],
            "nothing at /Volumes/main/lakefine/raw/nope.csv",
        ),
    ],
)
def test_bad_input_is_one_clear_message_without_traceback(local_root, args, expected):
    result = cli(local_root, *args, check=False)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr and "Py4J" not in result.stderr
