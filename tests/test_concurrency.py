"""Two processes at once, for real: a second training of the same attempt is refused
with the holder's name; once the holder is killed a rerun takes over and marks the
dead holder's MLflow run KILLED (it died before its first checkpoint, so there is
nothing to resume); pruning spares the dataset the stalled training holds a lease on;
two prepares of the same data publish one dataset."""

import json
import signal

import pytest

from conftest import REPO, link_shared, run_cli, start_cli, with_smoke_dataset
from lakefine.core.leases import live_leases

SMOKE = str(REPO / "pipelines/smoke.yaml")
# No checkpoint before the end: a kill leaves nothing to resume.
TRAIN = ["train", SMOKE, "train.max_steps=20", "train.checkpoint_steps=1000", "--json"]


def linked(tmp_path, shared_root, smoke_dataset=None):
    root = tmp_path / "root"
    link_shared(root, shared_root)
    if smoke_dataset is not None:
        with_smoke_dataset(root, smoke_dataset)
        pointer = root / "Volumes/main/lakefine/prep/datasets/smoke/CURRENT.json"
        pointer.write_text(json.dumps({"key": smoke_dataset.name}))
    return root


def wait_for_line(process, needle: str) -> list[str]:
    seen = []
    for line in process.stderr:
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} never printed:\n{''.join(seen)[-3000:]}")


@pytest.mark.slow
def test_a_stalled_training_keeps_its_lock_and_its_dataset_and_a_dead_one_is_replaced(
    tmp_path, shared_root, smoke_dataset, spark, monkeypatch
):
    import mlflow

    from lakefine import pipeline
    from lakefine.core.config import load_config

    root = linked(tmp_path, shared_root, smoke_dataset)
    dataset = root / "Volumes/main/lakefine/prep/datasets/smoke" / smoke_dataset.name
    train = [*TRAIN, "--dataset", str(dataset)]
    first = start_cli(root, *train)
    try:
        wait_for_line(first, "train: MLflow run")  # holds the lock and the lease; its run is RUNNING
        first.send_signal(signal.SIGSTOP)  # stalled: alive, not finishing
        second = run_cli(root, *train)
        assert second.returncode == 2, second.stderr[-2000:]
        assert "another training of this attempt is running" in second.stderr
        assert f"pid {first.pid}" in second.stderr and "Traceback" not in second.stderr

        # Newer versions with keep_versions=1 would prune the dataset, but it is leased.
        monkeypatch.setenv("LAKEFINE_LOCAL_ROOT", str(root))
        for n in (200, 210):  # a few hundred reviews each: new versions, cheap ones
            where = f"source.where=category IN ('fresh', 'rotten') AND length(text) > {n}"
            pipeline.prepare(load_config(SMOKE, [where, "runtime.keep_versions=1"]), spark)
        assert len(live_leases(dataset, 300)) == 1 and dataset.is_dir()
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()

    third = run_cli(root, *train)  # in this process: the killed holder was another one
    assert third.returncode == 0, third.stderr[-3000:]
    assert "died before it could be resumed: marked KILLED" in third.stderr
    client = mlflow.tracking.MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("lakefine-smoke").experiment_id])
    statuses = {run.info.run_id: run.info.status for run in runs}
    finished = json.loads(third.stdout)["run_id"]
    assert statuses.pop(finished) == "FINISHED"
    models = root / "Volumes/main/lakefine/prep/models/smoke"
    assert [p.name for p in models.iterdir()] == [finished]  # renamed from staging; none for the killed run
    assert list(statuses.values()) == ["KILLED"]  # the killed holder's run, not left RUNNING
    assert list(root.glob("Volumes/main/lakefine/prep/checkpoints/smoke/*.lock.json")) == []  # released
    assert live_leases(dataset, 300) == []
    where = "source.where=category IN ('fresh', 'rotten') AND length(text) > 220"
    pipeline.prepare(load_config(SMOKE, [where, "runtime.keep_versions=1"]), spark)
    assert not dataset.exists()  # unleased, not pointed, beyond keep_versions: now pruned


@pytest.mark.slow
def test_two_prepares_at_once_publish_one_dataset_and_both_name_it(tmp_path, shared_root):
    root = linked(tmp_path, shared_root)
    # 639 reviews longer than 200 characters: the race is the point, not the size
    small = "source.where=category IN ('fresh', 'rotten') AND length(text) > 200"
    both = [start_cli(root, "prepare", SMOKE, small, "--json") for _ in range(2)]
    results = [process.communicate(timeout=600) for process in both]
    for process, (_, err) in zip(both, results):
        assert process.returncode == 0, err[-3000:]
    keys = {json.loads(out)["key"] for out, _ in results}
    assert len(keys) == 1
    datasets = root / "Volumes/main/lakefine/prep/datasets/smoke"
    assert sorted(p.name for p in datasets.iterdir()) == sorted([*keys, "CURRENT.json"])  # no staging left
    assert json.loads((datasets / "CURRENT.json").read_text())["key"] in keys
