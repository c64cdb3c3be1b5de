"""A volume that runs out of space, for real: a small tmpfs mounted where the volume's
datasets or checkpoints live (root may mount; elsewhere these tests skip, saying why).
Publishing fails with one clear error naming the path, and nothing is published;
checkpoint mirroring fails with a warning and training finishes on local checkpoints."""

import contextlib
import subprocess

import pytest

from conftest import REPO, with_smoke_dataset
from lakefine import pipeline
from lakefine.core.config import load_config
from lakefine.core.dataset import POINTER, complete_versions
from lakefine.core.errors import HandoffError

SMOKE = str(REPO / "pipelines/smoke.yaml")


@contextlib.contextmanager
def full_disk(path, size="64k"):
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.decode().strip()}): needs root")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def test_a_full_volume_fails_prepare_naming_the_path_and_publishes_nothing(spark, local_root):
    datasets = local_root / "Volumes/main/lakefine/prep/datasets"
    with full_disk(datasets), pytest.raises(HandoffError) as failed:
        pipeline.prepare(load_config(SMOKE), spark)
    message = str(failed.value)
    assert "No space left on device" in message and str(datasets / "smoke") in message
    assert "Nothing was published" in message and "Free space on the volume" in message
    assert complete_versions(datasets / "smoke") == [] and not (datasets / "smoke" / POINTER).exists()
    quarantine = local_root / "Volumes/main/lakefine/prep/quarantine/smoke"
    assert not quarantine.exists() or not any(quarantine.iterdir())  # no partial quarantine left


def test_a_full_checkpoint_mirror_is_a_warning_and_training_finishes(local_root, smoke_dataset, capfd):
    from lakefine.core.dataset import PublishedDataset
    from lakefine.training.attempts import attempt_for

    with_smoke_dataset(local_root, smoke_dataset)
    published = PublishedDataset.open(local_root / "Volumes/main/lakefine/prep/datasets/smoke" / smoke_dataset.name)
    config = load_config(SMOKE, ["train.max_steps=4", "train.checkpoint_steps=2"])
    with full_disk(attempt_for(config, published).volume_dir, size="256k"):
        result = pipeline.train(config, published)
    err = capfd.readouterr().err
    assert "warning: could not mirror checkpoint-2" in err and "No space left on device" in err
    assert result.metrics["test_accuracy"] >= 0 and result.best_step in (2, 4)
