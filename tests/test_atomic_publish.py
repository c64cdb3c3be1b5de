"""Publishing is atomic: a ``lakefine prepare`` killed at any point (SIGKILL to its
whole process group: driver, JVM and Python workers, as when a node dies) leaves
either no dataset or a complete one for readers, never a partial one; a normal
rerun then completes and publishes. The points come in groups served by one prepare
each: frozen at the earlier points of its group (what a kill there would leave),
killed at the last. (Pruning to runtime.keep_versions is covered
in tests/test_handoff.py.)"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, link_shared, run_cli
from lakefine.core.dataset import (
    FORMAT_VERSION,
    MANIFEST,
    POINTER,
    PublishedDataset,
    latest_published,
    pointed_dataset,
)
from lakefine.prep import publish as handoff

SMOKE = str(REPO / "pipelines/smoke.yaml")
DATASETS = "Volumes/main/lakefine/prep/datasets/smoke"
ROWS = 12808  # Rotten Tomatoes rows the smoke pipeline uses


def _processes_in_group(pgid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)
    deadline = time.monotonic() + 15
    while _processes_in_group(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _processes_in_group(proc.pid), "processes of the killed prepare are still running"


def assert_complete(dataset: PublishedDataset) -> None:
    """Manifest present, every listed file present, every row there."""
    manifest = dataset.manifest
    assert manifest["key"] == dataset.path.name, f"{dataset.path} is not a published name"
    assert manifest["files"] and all((dataset.path / f).is_file() for f in manifest["files"])
    assert handoff._count_rows(dataset.path, manifest["files"]) == manifest["rows"] == ROWS
    splits = manifest["splits"]
    assert sum(end - start for start, end in splits.values()) == ROWS
    loaded = dataset.load()
    for name, (start, end) in splits.items():
        if end > start:
            assert len(loaded[name]) == end - start


def assert_readers_see_no_partial_dataset(root: Path) -> None:
    latest = latest_published(root)
    if latest is not None:
        assert_complete(latest)
    # every directory a reader could pick (anything with a manifest) is complete,
    # and a published name never exists without its manifest (rename is atomic)
    if root.is_dir():
        for manifest in root.glob("*/" + MANIFEST):
            assert_complete(PublishedDataset.open(manifest.parent))
        for directory in root.iterdir():
            if directory.name == POINTER:  # what train reads: it names a complete dataset
                assert_complete(pointed_dataset(root))
            elif not directory.name.startswith("."):
                assert (directory / MANIFEST).is_file(), f"{directory} has no manifest"


def _staging_files(root: Path) -> list[str]:
    found = []
    for staging in root.glob(".staging-*") if root.is_dir() else []:
        for directory, dirs, files in os.walk(staging):
            found += [os.path.join(directory, n) for n in dirs + files]
        found.append(str(staging))
    return found


# When to kill: seconds after start, or as soon as the handoff has written this far.
def _staging_created(files):
    return bool(files)


def _shard_written(files):
    return any(f.endswith(".arrow") for f in files)


def _shards_moved(files):  # datasets finished: shards in place, the manifest is next
    return any(f.endswith("dataset_info.json") for f in files)


@pytest.fixture(scope="module")
def root(tmp_path_factory, shared_root):
    """One local root for the whole module: the kills pile up on the same volume."""
    local = tmp_path_factory.mktemp("atomic-root")
    link_shared(local, shared_root)
    return local


def _start_prepare(local: Path, *overrides: str) -> subprocess.Popen:
    env = {**os.environ, "LAKEFINE_LOCAL_ROOT": str(local)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lakefine.cli",
            "prepare",
            SMOKE,
            *overrides,
            f"runtime.working_dir={local / 'scratch'}",
            "--json",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _wait_for(proc: subprocess.Popen, when, datasets: Path, running_for) -> list[str]:
    """Until ``when`` (seconds of running time, or a test on the staging entries that
    appear from now on) or the end of the process; the new staging entries seen."""
    before = set(_staging_files(datasets)) if callable(when) else set()
    new: list[str] = []
    while proc.poll() is None and running_for() < 110:
        if callable(when):
            new = [f for f in _staging_files(datasets) if f not in before]
            if when(new):
                break
            time.sleep(0.005)
        elif running_for() >= when:
            break
        else:
            time.sleep(0.01)
    return new


@pytest.mark.slow
@pytest.mark.parametrize(
    "seed, points",
    [
        (101, (2.0, 5.0, 8.0)),  # seconds: interpreter / JVM start-up, Spark stages
        (104, (_staging_created, _shard_written, _shards_moved)),  # during the handoff
    ],
    ids=["2s-5s-8s", "staging-created-shard-written-shards-moved"],
)
def test_sigkill_never_leaves_a_partial_dataset(root, seed, points):
    """One prepare per group of points. At each point but the last its whole process
    group is frozen (SIGSTOP: no process can write or clean up, so the volume is exactly
    what a SIGKILL at that instant leaves), the readers look, and it goes on (SIGCONT);
    at the last point it is SIGKILLed and the readers look again. One JVM start serves
    three points."""
    # A seed of its own per group: a different cache key, so an earlier group that
    # happened to publish cannot turn this one into a cache hit.
    datasets = root / DATASETS
    proc = _start_prepare(root, f"split.seed={seed}")
    started, paused = time.monotonic(), 0.0

    def running_for() -> float:
        return time.monotonic() - started - paused

    seen: list[str] = []
    try:
        for i, when in enumerate(points):
            last = i == len(points) - 1
            new = _wait_for(proc, when, datasets, running_for)
            still_running = proc.poll() is None
            if last:
                _kill_group(proc)
            elif still_running:
                frozen_at = time.monotonic()
                os.killpg(proc.pid, signal.SIGSTOP)
            name = when.__name__.lstrip("_") if callable(when) else f"{when:g} s"
            seen.append(f"{name} ({running_for():.1f} s, {len(new)} new staging entries)")
            assert still_running or (callable(when) and when is _shards_moved), (
                f"prepare ended (exit {proc.returncode}) before the point {name}"
            )
            assert_readers_see_no_partial_dataset(datasets)
            if not last:
                os.killpg(proc.pid, signal.SIGCONT)
                paused += time.monotonic() - frozen_at
    finally:
        if proc.poll() is None:
            _kill_group(proc)
    print(f"\nfrozen at {'; '.join(seen[:-1])}; killed at {seen[-1]}")


@pytest.mark.slow
def test_a_rerun_after_the_kills_completes_and_publishes(root, spark):
    """The rerun is an ordinary prepare on the same volume: in this process, on the
    session's Spark (the killed ones were processes of their own)."""
    datasets = root / DATASETS
    before = latest_published(datasets)
    result = run_cli(root, "prepare", SMOKE, f"runtime.working_dir={root / 'scratch'}", "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["cache_hit"] is False
    published = PublishedDataset.open(summary["dataset"])
    assert_complete(published)
    assert latest_published(datasets).path == published.path
    assert before is None or before.path != published.path
    assert_readers_see_no_partial_dataset(datasets)


def _fake_published(root: Path, name: str, key: str, published_at: float) -> Path:
    """A small complete dataset in the published layout, without Spark."""
    from datasets import Dataset

    directory = root / name
    (directory / "cache").mkdir(parents=True)
    rows = {"text": ["a", "b", "c"], "label": [0, 1, 0], "split": ["train", "train", "test"], "row_hash": [1, 2, 3]}
    Dataset.from_dict(rows).save_to_disk(str(directory / "cache"))
    files = sorted(str(p.relative_to(directory)) for p in (directory / "cache").glob("*.arrow"))
    (directory / MANIFEST).write_text(
        json.dumps(
            {
                "format_version": FORMAT_VERSION,
                "key": key,
                "files": files,
                "rows": 3,
                "splits": {"train": [0, 2], "validation": [2, 2], "test": [2, 3]},
                "published_at": published_at,
            }
        )
    )
    return directory


def test_a_staging_directory_is_never_read_even_with_its_manifest(tmp_path):
    published = _fake_published(tmp_path, "k1", "k1", published_at=1000.0)
    # killed after the manifest was written, before the rename: newer, same layout
    staging = _fake_published(tmp_path, ".staging-k2-deadbeef", "k2", published_at=2000.0)
    assert (staging / MANIFEST).is_file()
    assert latest_published(tmp_path).path == published
