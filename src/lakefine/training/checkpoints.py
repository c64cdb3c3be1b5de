"""Preemption-proof training: checkpoints written on local disk, mirrored to the
volume (a retried run may land on a new node), and found again by a rerun.

A checkpoint is complete only when lakefine has *sealed* it: after the Trainer has
written it (and transformers' JIT-checkpoint sentinel is gone), ``seal`` writes
``lakefine-complete.json`` last, listing every file and its size. A directory whose
files do not match its seal (a kill mid-copy, a truncated file) is never resumed from.
The volume mirror keeps the newest checkpoint *and* the Trainer's best one, copied under
``.partial-*`` and renamed, so a resume on a new node can still end on the best model.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

from lakefine.core.files import write_failure, write_json_atomically
from lakefine.core.log import say

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
INCOMPLETE_SENTINEL = "checkpoint-is-incomplete.txt"
SEAL = "lakefine-complete.json"
TRAINER_STATE = "trainer_state.json"


def attempt_key(flat_params: dict, dataset_key: str) -> str:
    """What makes two runs "the same training": the config (minus where things live)
    and the data. A rerun with the same key resumes; anything else starts over. The
    ``evaluate`` gate and ``score`` settings do not change what is trained."""
    relevant = {k: v for k, v in flat_params.items() if not k.startswith(("runtime.", "evaluate.", "score."))}
    payload = json.dumps({"config": relevant, "dataset": dataset_key}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _files(path: Path) -> dict[str, int]:
    return {
        str(f.relative_to(path)): f.stat().st_size for f in sorted(path.rglob("*")) if f.is_file() and f.name != SEAL
    }


def seal(path: Path) -> bool:
    """Mark a checkpoint the Trainer has finished writing as complete (the seal is its
    last file). False when it is not finished (no trainer state, JIT sentinel left)."""
    if (path / SEAL).is_file():
        return True
    if not (path / TRAINER_STATE).is_file() or (path / INCOMPLETE_SENTINEL).exists():
        return False
    write_json_atomically(path / SEAL, {"files": _files(path)})
    return True


def seal_saved(output_dir: Path) -> None:
    """Seal every checkpoint the Trainer has finished writing under ``output_dir``."""
    if output_dir.is_dir():
        for path in output_dir.iterdir():
            if path.is_dir() and step_of(path) >= 0:
                seal(path)


def is_complete(path: Path) -> bool:
    try:
        sealed = json.loads((path / SEAL).read_text())["files"]
    except (OSError, ValueError, KeyError):
        return False
    return sealed == _files(path)


def step_of(path: Path) -> int:
    match = _CHECKPOINT.match(path.name)
    return int(match.group(1)) if match else -1


def complete_checkpoints(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.is_dir() and step_of(p) >= 0 and is_complete(p)]
    return sorted(found, key=step_of)


def best_of(checkpoint: Path) -> str | None:
    """The name of the Trainer's best checkpoint as recorded in ``checkpoint``'s state."""
    try:
        best = json.loads((checkpoint / TRAINER_STATE).read_text()).get("best_model_checkpoint")
    except (OSError, ValueError):
        return None
    return Path(best).name if best else None


def restore(local_dir: Path, volume_dir: Path) -> Path | None:
    """The checkpoint to resume from: the newest complete one on local disk or on the
    volume. A volume one (a new node) is copied to local disk with the best checkpoint
    its state names, and that state is pointed at the local copy: the Trainer resumes
    from a local directory and, at the end, loads the best model from it."""
    local = complete_checkpoints(local_dir)
    mirrored = complete_checkpoints(volume_dir)
    newest_local = local[-1] if local else None
    newest_mirror = mirrored[-1] if mirrored else None
    if newest_mirror is None or (newest_local is not None and step_of(newest_local) >= step_of(newest_mirror)):
        return newest_local
    local_dir.mkdir(parents=True, exist_ok=True)
    best = best_of(newest_mirror)
    for source in {newest_mirror, *(p for p in mirrored if p.name == best)}:
        target = local_dir / source.name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
    newest = local_dir / newest_mirror.name
    if best and (local_dir / best).is_dir():
        state_file = newest / TRAINER_STATE
        state = json.loads(state_file.read_text())
        state["best_model_checkpoint"] = str(local_dir / best)
        state_file.write_text(json.dumps(state, indent=2, sort_keys=True))
        seal_file = newest / SEAL
        seal_file.unlink()
        seal(newest)  # the state file changed size: seal it again
    return newest


def mirror(checkpoint: Path, volume_dir: Path, keep: int = 1) -> Path:
    """Copy a complete local checkpoint to the volume atomically, then keep only the
    newest ``keep`` and the best one the newest's state names."""
    target = volume_dir / checkpoint.name
    if not target.is_dir():
        partial = volume_dir / f".partial-{checkpoint.name}"
        shutil.rmtree(partial, ignore_errors=True)
        volume_dir.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copytree(checkpoint, partial)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)  # never leave a half copy behind
            raise
        partial.rename(target)
    mirrored = complete_checkpoints(volume_dir)
    wanted = {p.name for p in mirrored[-keep:]} | {best_of(mirrored[-1]) if mirrored else None}
    for old in mirrored:
        if old.name not in wanted:
            shutil.rmtree(old, ignore_errors=True)
    return target


def mirror_best_and_newest(local_dir: Path, volume_dir: Path) -> Path | None:
    """Mirror the newest sealed checkpoint and, if it is not on the volume yet, the best
    one. A volume that cannot be written (full, read-only, I/O error) is a warning:
    training goes on with its local checkpoints, which a rerun on this node resumes."""
    for candidate in complete_checkpoints(local_dir)[-1:]:
        best = best_of(candidate)
        try:
            if best and best != candidate.name and is_complete(local_dir / best):
                mirror(local_dir / best, volume_dir)
            return mirror(candidate, volume_dir)
        except OSError as exc:
            reason = write_failure(exc)
            if reason is None:
                raise
            say(
                f"train: warning: could not mirror {candidate.name} to {volume_dir} ({reason});"
                " training goes on with local checkpoints only (a retry on another node would start over)."
                " Free space on the volume or check its permissions"
            )
    return None


def wipe(*directories: Path) -> None:
    for directory in directories:
        shutil.rmtree(directory, ignore_errors=True)
