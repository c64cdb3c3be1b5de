"""Checkpoint bookkeeping (training.checkpoints) on real directories: a checkpoint is
complete only when sealed and unchanged since; the volume mirror keeps the newest and
the best; a new node restores both and points the Trainer's state at the local best.
The end-to-end resume with a best checkpoint older than the newest is in
test_preemption.py."""

import json
import os
import subprocess
import sys

from lakefine.training import checkpoints


def saved(directory, step, best=None, size=100):
    """A checkpoint as the Trainer leaves it: weights, then trainer_state.json."""
    path = directory / f"checkpoint-{step}"
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(os.urandom(size))
    state = {"global_step": step, "best_model_checkpoint": f"/old/node/out/checkpoint-{best}" if best else None}
    (path / "trainer_state.json").write_text(json.dumps(state))
    return path


def test_only_a_sealed_and_unchanged_checkpoint_is_complete(tmp_path):
    path = saved(tmp_path, 10)
    assert not checkpoints.is_complete(path)  # written by the Trainer, not sealed yet
    (path / checkpoints.INCOMPLETE_SENTINEL).write_text("")
    assert not checkpoints.seal(path)  # transformers' JIT save still in progress
    (path / checkpoints.INCOMPLETE_SENTINEL).unlink()
    assert checkpoints.seal(path) and checkpoints.is_complete(path)
    with open(path / "model.safetensors", "r+b") as weights:
        weights.truncate(50)  # a copy cut short
    assert not checkpoints.is_complete(path)
    assert checkpoints.complete_checkpoints(tmp_path) == []


def test_the_mirror_keeps_the_best_checkpoint_as_well_as_the_newest(tmp_path):
    local, volume = tmp_path / "local", tmp_path / "volume"
    for step, best in [(10, 10), (20, 10), (30, 10)]:
        checkpoints.seal(saved(local, step, best))
        checkpoints.mirror_best_and_newest(local, volume)
    assert sorted(p.name for p in volume.iterdir()) == ["checkpoint-10", "checkpoint-30"]
    checkpoints.seal(saved(local, 40, best=40))
    checkpoints.mirror_best_and_newest(local, volume)
    assert sorted(p.name for p in volume.iterdir()) == ["checkpoint-40"]


def test_a_new_node_restores_the_newest_and_the_best_pointing_at_the_local_copy(tmp_path):
    volume, new_local = tmp_path / "volume", tmp_path / "new-node"
    for step in (10, 30):
        path = saved(volume, step, best=10)
        checkpoints.seal(path)
    resumed = checkpoints.restore(new_local, volume)
    assert resumed == new_local / "checkpoint-30"
    assert sorted(p.name for p in new_local.iterdir()) == ["checkpoint-10", "checkpoint-30"]
    state = json.loads((resumed / "trainer_state.json").read_text())
    assert state["best_model_checkpoint"] == str(new_local / "checkpoint-10")
    assert checkpoints.is_complete(resumed)  # resealed after the state was rewritten


FILL_THE_VOLUME = """
import resource, signal, sys
from pathlib import Path
from lakefine.training import checkpoints
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
print(checkpoints.mirror_best_and_newest(Path(sys.argv[1]), Path(sys.argv[2])))
"""


def test_a_volume_that_cannot_be_written_is_a_warning_and_leaves_no_partial_copy(tmp_path):
    local, volume = tmp_path / "local", tmp_path / "volume"
    checkpoints.seal(saved(local, 10, size=5000))  # larger than the file size limit
    done = subprocess.run(
        [sys.executable, "-c", FILL_THE_VOLUME, str(local), str(volume)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None"
    assert "warning: could not mirror checkpoint-10" in done.stderr and "File too large" in done.stderr
    assert "training goes on with local checkpoints" in done.stderr
    assert list(volume.iterdir()) == []  # no .partial-* left behind


def test_abandoned_attempts_are_removed_and_held_or_recent_ones_kept(tmp_path):
    import time

    from conftest import make_config
    from lakefine.core.leases import Heartbeat
    from lakefine.training.attempts import Attempt, clean_abandoned

    volume = tmp_path / "volume/checkpoints/t"
    current = Attempt("current", tmp_path / "local/checkpoints/t/current", volume / "current")
    for name in ("abandoned", "held", "recent"):
        checkpoints.seal(saved(volume / name, 10))
    old = time.time() - 3 * 3600
    for name in ("abandoned", "held"):
        for path in (volume / name).rglob("*"):
            os.utime(path, (old, old))
    config = make_config(runtime={"abandoned_checkpoint_hours": 2, "lease_seconds": 60})
    with Heartbeat(expiry=60, purpose="another training") as heartbeat:
        heartbeat.add_lock(volume / "held.lock.json")
        removed = clean_abandoned(config, current)
    assert [p.name for p in removed] == ["abandoned"]
    assert sorted(p.name for p in volume.iterdir() if p.is_dir()) == ["held", "recent"]
