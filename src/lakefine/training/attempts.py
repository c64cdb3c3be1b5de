"""One training per attempt. An *attempt* is a config plus a dataset (``attempt_key``);
its checkpoints live on local disk and on the volume, its lock next to them.

While a training runs it holds the attempt's lock and a lease on its dataset (one
heartbeat keeps both alive, see ``core.leases``). Starting a training therefore:
refuses while another live process trains the same attempt; takes over a lock whose
holder died; decides whether to resume (an unfinished MLflow run of the attempt and a
complete checkpoint) or start over; marks runs that died before their first
checkpoint KILLED instead of leaving them RUNNING forever; and removes checkpoints of
the pipeline's other attempts that nobody holds and nobody touched for
``runtime.abandoned_checkpoint_hours``.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from lakefine.core import paths
from lakefine.core.config import PipelineConfig
from lakefine.core.dataset import PublishedDataset
from lakefine.core.leases import Heartbeat, is_live, read_record
from lakefine.core.log import say
from lakefine.tracking import runs
from lakefine.training import checkpoints


@dataclass(frozen=True)
class Attempt:
    key: str
    local_dir: Path  # local SSD: what the Trainer writes
    volume_dir: Path  # the mirror a new node resumes from

    @property
    def lock_path(self) -> Path:
        # Beside the checkpoints, not inside: starting over wipes them, never the lock.
        return self.volume_dir.with_name(f"{self.key}.lock.json")


def attempt_for(config: PipelineConfig, published: PublishedDataset) -> Attempt:
    key = checkpoints.attempt_key(config.flat_params(), published.key)
    return Attempt(
        key,
        paths.scratch_dir(config.runtime.working_dir, f"checkpoints/{config.name}/{key}"),
        paths.resolve(f"{config.runtime.volume}/checkpoints/{config.name}/{key}", config.runtime.local_root),
    )


@contextlib.contextmanager
def held(config: PipelineConfig, attempt: Attempt, published: PublishedDataset):
    """The attempt's lock and the dataset's lease, kept alive until the block ends."""
    with Heartbeat(config.runtime.lease_seconds, f"train {config.name} attempt {attempt.key}") as heartbeat:
        heartbeat.add_lock(attempt.lock_path)
        heartbeat.add_lease(published.path)
        yield heartbeat


def resume_point(experiment_id: str, attempt: Attempt, fresh: bool):
    """``(run_id, checkpoint)`` to resume, or ``(None, None)`` to start over (stale
    checkpoints wiped). Called with the lock held: any RUNNING run of this attempt is
    dead, and one that cannot be resumed is marked KILLED."""
    unfinished = runs.unfinished_runs(experiment_id, attempt.key)
    resume_from = None if fresh or not unfinished else checkpoints.restore(attempt.local_dir, attempt.volume_dir)
    resumed = unfinished[0] if resume_from else None
    for dead in unfinished:
        if dead is not resumed and dead.info.status == "RUNNING":
            runs.mark_killed(dead.info.run_id)
            say(f"train: MLflow run {dead.info.run_id} died before it could be resumed: marked KILLED")
    if resume_from is None:
        checkpoints.wipe(attempt.local_dir, attempt.volume_dir)  # nothing to resume: no stale state either
        attempt.local_dir.mkdir(parents=True, exist_ok=True)
    return (resumed.info.run_id if resumed else None), resume_from


def clean_abandoned(config: PipelineConfig, attempt: Attempt) -> list[Path]:
    """Remove the checkpoints of this pipeline's other attempts that no live process
    holds and that nobody touched for ``runtime.abandoned_checkpoint_hours``."""
    removed = []
    max_age = config.runtime.abandoned_checkpoint_hours * 3600
    for parent in {attempt.volume_dir.parent, attempt.local_dir.parent}:
        if not parent.is_dir():
            continue
        for other in parent.iterdir():
            if not other.is_dir() or other.name == attempt.key or other.name.startswith("."):
                continue
            lock = parent / f"{other.name}.lock.json"
            if is_live(read_record(lock), config.runtime.lease_seconds):
                continue
            if time.time() - _last_touched(other) < max_age:
                continue
            checkpoints.wipe(other)
            lock.unlink(missing_ok=True)
            removed.append(other)
    if removed:
        say(f"train: removed {len(removed)} abandoned attempt(s)' checkpoints: {', '.join(p.name for p in removed)}")
    return removed


def _last_touched(directory: Path) -> float:
    return max((p.stat().st_mtime for p in directory.rglob("*")), default=directory.stat().st_mtime)
