"""Training survives preemption: SIGKILL mid-run (and a new node: local disk gone)
and SIGTERM (checkpoint saved before exiting); the rerun resumes from the newest
complete checkpoint into the same MLflow run and ends where an uninterrupted run ends,
on the same best checkpoint even when that one is older than the newest."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import REPO, link_shared, with_smoke_dataset
from lakefine.training.checkpoints import SEAL

SMOKE = str(REPO / "pipelines/smoke.yaml")
STEPS = ["train.max_steps=80", "train.checkpoint_steps=20", "train.batch_size=32", "train.logging_steps=10"]
LAST, EVERY = 80, 20


def linked_root(base: Path, shared_root: Path, smoke_dataset: Path) -> Path:
    """A fresh local root with the bundled data, the tiny model and the smoke dataset
    already prepared: these tests are about training, so the run starts no Spark."""
    root = base / "root"
    link_shared(root, shared_root)
    return with_smoke_dataset(root, smoke_dataset)


def start(root: Path, working_dir: Path, *extra) -> subprocess.Popen:
    env = {**os.environ, "LAKEFINE_LOCAL_ROOT": str(root)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lakefine.cli",
            "run",
            SMOKE,
            *STEPS,
            f"runtime.working_dir={working_dir}",
            "--json",
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def finish(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out)


def wait_for_checkpoint(base: Path, step: int, process, timeout=300) -> Path:
    """Until a complete (sealed) ``base/checkpoints/smoke/<attempt>/checkpoint-<n>`` with
    ``n >= step`` exists: the volume mirror keeps only the newest and the best, so an
    exact step can come and go between two looks."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, process.communicate()[1][-3000:]
        for seal in base.glob(f"checkpoints/smoke/*/checkpoint-*/{SEAL}"):
            if int(seal.parent.name.rpartition("-")[2]) >= step:
                return seal.parent
        time.sleep(0.02)
    raise AssertionError(f"no checkpoint at or after step {step} within {timeout} s")


def loss_history(root: Path, run_id: str) -> list[int]:
    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    return [m.step for m in client.get_metric_history(run_id, "loss")]


@pytest.fixture(scope="module")
def fresh_after_a_kill(tmp_path_factory, shared_root, smoke_dataset) -> SimpleNamespace:
    """A run SIGKILLed once it has a checkpoint, then the same command with ``--fresh``:
    the run that starts over trains from step 0 to the end without a break, so it is
    also the uninterrupted run the resumed ones are compared with (one training less)."""
    base = tmp_path_factory.mktemp("fresh")
    root, working_dir = linked_root(base, shared_root, smoke_dataset), base / "wd"
    process = start(root, working_dir)
    wait_for_checkpoint(working_dir, EVERY, process)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    import mlflow

    client = mlflow.tracking.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    killed = client.search_runs([client.get_experiment_by_name("lakefine-smoke").experiment_id])[0]
    fresh = finish(start(root, working_dir, "--fresh"))["train"]
    return SimpleNamespace(root=root, killed_run_id=killed.info.run_id, train=fresh)


@pytest.fixture(scope="module")
def uninterrupted(fresh_after_a_kill) -> dict:
    return fresh_after_a_kill.train


@pytest.mark.slow
def test_preempted_twice_the_reruns_resume_into_the_same_run_and_match_an_uninterrupted_run(
    tmp_path, shared_root, smoke_dataset, uninterrupted
):
    """SIGTERM (a spot notice) after the first checkpoint: exit 143 with a checkpoint.
    The rerun resumes, and is SIGKILLed once a checkpoint newer than the best one is
    mirrored; its retry lands on a new node (local disk wiped) and resumes from the volume
    mirror, the best checkpoint with the newest. One run, one metric history, the
    uninterrupted run's numbers."""
    best = uninterrupted["best_step"]
    assert 0 < best < LAST - EVERY, "the setup needs a best checkpoint older than the newest"
    root, working_dir = linked_root(tmp_path, shared_root, smoke_dataset), tmp_path / "wd"
    volume = root / "Volumes/main/lakefine/prep"

    process = start(root, working_dir)
    wait_for_checkpoint(volume, EVERY, process)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 143, err[-2000:]
    assert "run the same command again to resume" in err and "Traceback" not in err

    process = start(root, working_dir)
    # wait for the volume mirror of a checkpoint newer than the best one
    wait_for_checkpoint(volume, best + EVERY, process)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    shutil.rmtree(working_dir)  # a retried job lands on a new node: only the volume mirror is left
    assert list((volume / "checkpoints/smoke").glob("*/checkpoint-*")), "no checkpoint was mirrored to the volume"

    resumed = finish(start(root, working_dir))["train"]
    assert resumed["resumed_from_step"] > best
    assert resumed["best_step"] == best  # the best checkpoint came back with the newest
    history = loss_history(root, resumed["run_id"])
    assert history == list(range(10, LAST + 1, 10)), "one continuous metric history, no step twice"
    # Same data order, same RNG state, same weights: CPU training is deterministic.
    assert resumed["metrics"]["test_accuracy"] == uninterrupted["metrics"]["test_accuracy"]
    assert resumed["metrics"]["test_loss"] == pytest.approx(uninterrupted["metrics"]["test_loss"], abs=1e-5)
    assert not list(volume.glob("checkpoints/smoke/*/checkpoint-*"))  # cleaned after success


@pytest.mark.slow
def test_fresh_starts_over_in_a_new_run(fresh_after_a_kill):
    fresh = fresh_after_a_kill.train
    assert fresh["resumed_from_step"] == 0 and fresh["run_id"] != fresh_after_a_kill.killed_run_id
    assert loss_history(fresh_after_a_kill.root, fresh["run_id"]) == list(range(10, LAST + 1, 10))


def test_a_retried_final_step_reuses_the_version_its_run_registered(local_root, smoke_dataset):
    """Killed after registering but before the run ended, a retry resumes into the same
    run and reaches the final step again: it must not register a second version."""
    import mlflow
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lakefine import pipeline
    from lakefine.core.config import load_config
    from lakefine.serving.mlflow_model import log_and_register_model

    with_smoke_dataset(local_root, smoke_dataset)
    config = load_config(SMOKE, ["train.max_steps=2"])
    dataset = local_root / "Volumes/main/lakefine/prep/datasets/smoke" / smoke_dataset.name
    first = pipeline.train(config, str(dataset))
    retried = SimpleNamespace(  # what a resumed final step hands over: the reloaded model
        model=AutoModelForSequenceClassification.from_pretrained(first.model_dir),
        tokenizer=AutoTokenizer.from_pretrained(first.model_dir),
    )
    with mlflow.start_run(run_id=first.run_id):
        again = log_and_register_model(config, retried, first.model_dir)
    client = mlflow.tracking.MlflowClient()
    versions = client.search_model_versions(f"name = '{first.registration['registered_model']}'")
    assert [int(v.version) for v in versions] == [first.registration["version"]] == [again["version"]]
    assert int(client.get_model_version_by_alias(again["registered_model"], "challenger").version) == again["version"]
