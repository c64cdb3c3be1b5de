"""The handoff: staged from_spark that really uses working_dir, stable row order,
cache keys that see data changes, atomic publication."""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from conftest import REPO, make_config
from lakefine.core.dataset import (
    PublishedDataset,
    find_published,
    latest_published,
    point_to,
    pointed_dataset,
    prune_versions,
)
from lakefine.core.errors import HandoffError
from lakefine.core.labels import LabelMap
from lakefine.prep import publish as handoff
from lakefine.prep.prepare import dataset_features, prepare


def rows_frame(spark, n, partitions=4, slow=False):
    df = (
        spark.range(n)
        .select(
            F.concat(F.lit("text "), F.col("id").cast("string")).alias("text"),
            (F.col("id") % 2).cast("int").alias("label"),
            F.when(F.col("id") % 10 < 8, "train")
            .when(F.col("id") % 10 < 9, "validation")
            .otherwise("test")
            .alias("split"),
            F.xxhash64("id").alias("row_hash"),
        )
        .repartition(partitions)
    )
    if slow:  # a slow Python stage keeps each task writing long enough to be observed

        @F.udf("string")
        def slowly(text):
            time.sleep(0.001)
            return text

        df = df.withColumn("text", slowly("text"))
    return df


def split_rows(df):
    return {r.split: r["count"] for r in df.groupBy("split").count().collect()}


def publish(df, root, key, method="from_spark", working_dir=None, partitions=4):
    return handoff.publish(
        df,
        root=root,
        key=key,
        features=dataset_features(LabelMap(("a", "b")), False),
        split_rows=split_rows(df),
        method=method,
        working_dir=working_dir or root / "wd",
        num_partitions=partitions,
        manifest_extra={},
    )


def test_shards_are_staged_in_working_dir_then_moved_and_none_are_left(spark, tmp_path):
    working_dir = tmp_path / "local_ssd"
    working_dir.mkdir()
    seen, stop = set(), threading.Event()

    def watch():
        while not stop.is_set():
            try:
                seen.update(str(p.relative_to(working_dir)) for p in working_dir.rglob("*.arrow"))
            except FileNotFoundError:  # a task directory vanished mid-walk: its shards moved on
                pass
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        df = rows_frame(spark, 4000, slow=True)
        # A shard lives a few milliseconds in working_dir and a 5 ms poller can miss it
        # (seen in 2 of 8 fresh-clone runs): publish again, under a new key, until one
        # is caught. Every attempt is a real publish; the assertions below hold for all.
        for attempt in range(5):
            published = publish(df, tmp_path / "volume", f"k{attempt}", working_dir=working_dir)
            if seen:
                break
    finally:
        stop.set()
        watcher.join()
    assert seen, "no shard was ever staged in working_dir (5 publishes)"
    # each task attempt stages in its own directory
    assert all("/task-" in name for name in seen)
    # (how many tasks the poller catches depends on the machine: at least one)
    assert list(working_dir.rglob("*")) == [], "staging left files behind"
    assert sum(published.split_rows.values()) == 4000
    assert all((published.path / f).is_file() for f in published.manifest["files"])


def test_concurrent_tasks_keep_every_row_exactly_once(spark, tmp_path):
    df = rows_frame(spark, 20000, partitions=8)
    published = publish(df, tmp_path / "volume", "k", partitions=8)
    data = published.load()
    texts = sorted(t for split in data.values() for t in split["text"])
    assert texts == sorted(f"text {i}" for i in range(20000))


def test_upstream_working_dir_is_still_broken(spark, tmp_path):
    """Why StagedSparkBuilder exists: if this starts passing upstream, drop the fix."""
    from datasets import Dataset

    df = rows_frame(spark, 100, partitions=2)
    (tmp_path / "w").mkdir()
    with pytest.raises(Exception, match="name 'shutil' is not defined"):
        Dataset.from_spark(df, cache_dir=str(tmp_path / "c"), working_dir=str(tmp_path / "w"))


def test_row_order_is_stable_across_partitionings_and_methods(spark, tmp_path):
    df = rows_frame(spark, 3000, partitions=3)
    results = [
        publish(df, tmp_path / "a", "k", partitions=1).load(),
        publish(df.repartition(7), tmp_path / "b", "k", partitions=5).load(),
        publish(df, tmp_path / "c", "k", method="parquet", partitions=4).load(),
    ]
    for split in ("train", "validation", "test"):
        reference = results[0][split].to_dict()
        assert reference["row_hash"] == sorted(reference["row_hash"])
        for other in results[1:]:
            assert other[split].to_dict() == reference


def test_readers_accept_only_complete_datasets(spark, tmp_path):
    root = tmp_path / "volume"
    (root / ".staging-k-123").mkdir(parents=True)
    (root / "half").mkdir()
    assert find_published(root, "half") is None
    with pytest.raises(HandoffError, match="not a complete published dataset"):
        PublishedDataset.open(root / "half")
    assert latest_published(root) is None


def test_old_versions_are_pruned_to_keep_versions(spark, tmp_path):
    root = tmp_path / "volume"
    for i in range(4):
        publish(rows_frame(spark, 50 + i, partitions=1), root, f"k{i}", working_dir=tmp_path / "wd", partitions=1)
    point_to(root, PublishedDataset.open(root / "k0"))  # the oldest is what train will read
    prune_versions(root, keep=2)
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == ["k0", "k2", "k3"]
    assert pointed_dataset(root).key == "k0"
    shutil.rmtree(root / "k0")
    with pytest.raises(HandoffError, match="not a complete published dataset"):
        pointed_dataset(root)  # a pointer to a removed dataset is an error, not another version


def test_changed_source_data_gives_new_data_where_plain_from_spark_reads_stale(spark, local_root):
    from datasets import Dataset

    target = local_root / "Volumes/main/ml/raw/reviews"
    spark.createDataFrame([("good film", "pos"), ("bad film", "neg")] * 20, "text string, label string").write.mode(
        "overwrite"
    ).parquet(str(target))
    config = make_config(
        source={"path": "/Volumes/main/ml/raw/reviews", "format": "parquet"},
        split={"train": 1.0, "validation": 0.0, "test": 0.0},
    )
    first = prepare(config, spark)
    plain_first = Dataset.from_spark(spark.read.parquet(str(target)), cache_dir=str(local_root / "plain"))

    spark.createDataFrame([("great film", "pos"), ("awful film", "neg")] * 20, "text string, label string").write.mode(
        "overwrite"
    ).parquet(str(target))
    second = prepare(config, spark)
    plain_second = Dataset.from_spark(spark.read.parquet(str(target)), cache_dir=str(local_root / "plain"))

    assert first.dataset.key != second.dataset.key
    assert set(second.dataset.load()["train"]["text"]) == {"great film", "awful film"}
    # the upstream stale read this guards against (same plan hash -> old rows):
    assert set(plain_second["text"]) == set(plain_first["text"]) == {"good film", "bad film"}


@pytest.mark.slow  # two cold CLI processes, each starting its own JVM
def test_same_data_in_a_new_process_is_a_cache_hit_without_a_write(smoke_prepared_by_cli):
    root, first, _ = smoke_prepared_by_cli  # the first prepare, in its own process
    command = [sys.executable, "-m", "lakefine.cli", "prepare", str(REPO / "pipelines/smoke.yaml"), "--json"]
    env = {**os.environ, "LAKEFINE_LOCAL_ROOT": str(root)}
    manifest = Path(first["dataset"]) / "manifest.json"
    published_at = json.loads(manifest.read_text())["published_at"]
    second = json.loads(subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout)
    assert first["cache_hit"] is False and second["cache_hit"] is True
    assert second["dataset"] == first["dataset"]
    assert json.loads(manifest.read_text())["published_at"] == published_at


def test_python_workers_fork_from_the_daemon_that_preloaded_the_stage_modules(spark):
    """Each forked worker starts with pandas, datasets and the stage modules loaded (the
    function below is pickled by value and imports nothing itself)."""

    @F.udf("string")
    def worker_state(_):
        import sys

        with open(f"/proc/{os.getppid()}/cmdline", "rb") as handle:
            parent = handle.read().replace(b"\0", b" ").decode()
        return f"{parent}|{'datasets' in sys.modules}|{'lakefine.prep.tokenize' in sys.modules}"

    parent, has_datasets, has_stages = spark.range(1).select(worker_state("id")).first()[0].split("|")
    assert "lakefine.prep.worker_daemon" in parent
    assert (has_datasets, has_stages) == ("True", "True")


def test_the_shards_are_renamed_by_the_driver_not_by_a_spark_job(spark, tmp_path):
    """Upstream renames the shards in a Spark job of its own (a second Python worker
    pool); here the driver does, and the names are upstream's."""
    tracker = spark.sparkContext.statusTracker()
    before = set(tracker.getJobIdsForGroup())
    published = publish(rows_frame(spark, 2000), tmp_path / "volume", "k")
    stage_names = [
        tracker.getStageInfo(stage).name
        for job in set(tracker.getJobIdsForGroup()) - before
        for stage in tracker.getJobInfo(job).stageIds
        if tracker.getStageInfo(stage) is not None
    ]
    assert stage_names and not [name for name in stage_names if "packaged_modules/spark" in name]
    names = sorted(Path(f).name for f in published.manifest["files"])
    assert names == [f"publish-train-{i:05d}-of-00004.arrow" for i in range(4)]
