"""Preemption-proof training: checkpoints written on local disk, mirrored to the
volume (a retried run may land on a new node), and found again by a rerun.

A checkpoint is complete when the Trainer has written ``trainer_state.json`` (its
last file) and no JIT-checkpoint sentinel is left; the volume mirror is complete
when its directory has its final name (copied under ``.partial`` and renamed).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from lakefine.core.log import say

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
INCOMPLETE_SENTINEL = "checkpoint-is-incomplete.txt"


def attempt_key(flat_params: dict, dataset_key: str) -> str:
    """What makes two runs "the same training": the config (minus where things live
    and how the model is scored later) and the data. A rerun with the same key
    resumes; anything else starts over."""
    relevant = {k: v for k, v in flat_params.items() if not k.startswith(("runtime.", "score."))}
    payload = json.dumps({"config": relevant, "dataset": dataset_key}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def is_complete(path: Path) -> bool:
    return (path / "trainer_state.json").is_file() and not (path / INCOMPLETE_SENTINEL).exists()


def step_of(path: Path) -> int:
    match = _CHECKPOINT.match(path.name)
    return int(match.group(1)) if match else -1


def complete_checkpoints(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.is_dir() and step_of(p) >= 0 and is_complete(p)]
    return sorted(found, key=step_of)


def newest_complete(local_dir: Path, volume_dir: Path) -> Path | None:
    """The newest complete checkpoint on local disk or on the volume; a volume one is
    copied to local disk first (the Trainer resumes from a local directory)."""
    local = complete_checkpoints(local_dir)
    mirrored = complete_checkpoints(volume_dir)
    best_local = local[-1] if local else None
    best_mirror = mirrored[-1] if mirrored else None
    if best_mirror and (best_local is None or step_of(best_mirror) > step_of(best_local)):
        target = local_dir / best_mirror.name
        shutil.rmtree(target, ignore_errors=True)
        local_dir.mkdir(parents=True, exist_ok=True)
        shutil.copytree(best_mirror, target)
        return target
    return best_local


def mirror(checkpoint: Path, volume_dir: Path, keep: int = 2) -> Path:
    """Copy a complete local checkpoint to the volume atomically; keep the newest ``keep``."""
    target = volume_dir / checkpoint.name
    if target.is_dir():
        return target
    partial = volume_dir / f".partial-{checkpoint.name}"
    shutil.rmtree(partial, ignore_errors=True)
    volume_dir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(checkpoint, partial)
    partial.rename(target)
    for old in complete_checkpoints(volume_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return target


def mirror_newest(local_dir: Path, volume_dir: Path) -> Path | None:
    newest = complete_checkpoints(local_dir)
    if not newest:
        return None
    target = mirror(newest[-1], volume_dir)
    say(f"train: checkpoint {newest[-1].name} mirrored to {target}")
    return target


def wipe(*directories: Path) -> None:
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)
