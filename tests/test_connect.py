"""Spark Connect: preparation runs on a local Connect session (no sparkContext, no
RDDs; the handoff goes through Spark-written Parquet) and publishes the same rows,
in the same order, under the same cache key as a classic session using from_spark.

pyspark refuses a Connect session beside a live classic one in one process, so the
Connect side runs in a subprocess while this process runs the classic side."""

import json
import os
import subprocess
import sys

import pytest
from pyspark.sql import functions as F

from conftest import CONNECT_SESSION, RT_PATH
from lakefine.core.config import config_from_dict
from lakefine.core.dataset import PublishedDataset
from lakefine.core.errors import DataError
from lakefine.core.paths import resolve
from lakefine.prep.prepare import prepare
from lakefine.prep.sources import read_source

INPUT = "/Volumes/main/lakefine/raw/connect_input"
BAD_WHERE = "verdikt = 'fresh'"

CONNECT_SIDE = (
    CONNECT_SESSION
    + r"""
import json, sys
from pyspark.sql import functions as F
from lakefine.core.config import config_from_dict
from lakefine.core.errors import DataError
from lakefine.core.paths import resolve
from lakefine.prep.prepare import prepare
from lakefine.core.session import session_kind
from lakefine.prep.sources import read_source

try:
    assert session_kind(spark) == "connect", type(spark)
    message = json.loads(sys.stdin.readline())  # sent once the input is written
    config = config_from_dict(message["config"])
    result = prepare(config, spark)
    source = spark.read.parquet(str(resolve(config.source.path)))
    partitions = source.select(F.spark_partition_id()).distinct().count()  # after: the JVM is warm
    # Connect analyses lazily: a bad filter must still fail at read, as a DataError.
    bad = config.source.model_copy(update={"where": message["bad_where"]})
    try:
        read_source(spark, bad, config.runtime)
        where_error = None
    except DataError as exc:
        where_error = str(exc)
    print(json.dumps({"source_partitions": partitions, "where_error": where_error, **result.summary()}))
finally:
    spark.stop()
"""
)


def raw_config(volume: str, handoff: str, working_dir) -> dict:
    return {
        "name": "connect",
        "source": {"path": INPUT, "format": "parquet", "text_column": "review", "label_column": "verdict"},
        "labels": {"case": "normalize", "min_count": 2},
        "split": {"train": 0.7, "validation": 0.15, "test": 0.15, "seed": 7},
        "model": {"name_or_path": "tiny-random-bert"},
        "runtime": {"volume": volume, "handoff": handoff, "working_dir": str(working_dir)},
    }


def write_input(spark):
    """Real Rotten Tomatoes rows plus the dirty rows every stage has to handle,
    written as several Parquet files so both sessions read several partitions."""
    real = (
        spark.read.options(header="true", multiLine="true", escape='"')
        .csv(str(resolve(RT_PATH)))
        .where("category IN ('fresh', 'rotten')")
        .select(F.col("text").alias("review"), F.col("category").alias("verdict"))
        .limit(2500)
    )
    dirty = spark.createDataFrame(
        [
            ("  Spaced\n out   review ", " Fresh "),  # whitespace and label case normalised
            ("same words, two labels", "fresh"),  # conflicting labels: quarantined
            ("same words, two labels", "rotten"),
            ("a duplicate review", "rotten"),  # duplicates share a split
            ("a duplicate review", "rotten"),
            ("", "fresh"),  # empty text
            (None, "rotten"),  # null text
            ("no label here", None),  # null label
            ("a lone certified review", "certified"),  # rare label (min_count 2)
            ("broken \ufffd bytes", "fresh"),  # invalid UTF-8
        ],
        "review string, verdict string",
    )
    target = resolve(INPUT)
    real.unionByName(dirty).repartition(6).write.mode("overwrite").parquet(str(target))
    assert len(list(target.glob("part-*.parquet"))) == 6
    return target


@pytest.mark.slow  # starts a local Spark Connect server (a JVM of its own)
def test_connect_prepare_publishes_the_same_rows_in_the_same_order_as_classic(spark, local_root, tmp_path):
    # The Connect side starts its server first and waits for its config on stdin.
    env = {
        **os.environ,
        "LAKEFINE_LOCAL_ROOT": str(local_root),
        "PYSPARK_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
        "OMP_NUM_THREADS": "1",
    }
    env.pop("SPARK_REMOTE", None)
    log = tmp_path / "connect-side.log"
    with open(log, "w") as stderr:  # a file, not a pipe: a full pipe would stall the child
        connect_side = subprocess.Popen(
            [sys.executable, "-c", CONNECT_SIDE],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        target = write_input(spark)
        assert spark.read.parquet(str(target)).rdd.getNumPartitions() >= 2
        connect_config = raw_config("/Volumes/main/lakefine/prep_connect", "auto", tmp_path / "wd-connect")
        try:
            connect_side.stdin.write(json.dumps({"config": connect_config, "bad_where": BAD_WHERE}) + "\n")
            connect_side.stdin.flush()
        except BrokenPipeError:
            pass  # the Connect side died early: its log is in the assertion below
        # The classic side runs meanwhile, on the same input, into another volume.
        classic_config = config_from_dict(
            raw_config("/Volumes/main/lakefine/prep_classic", "from_spark", tmp_path / "wd-classic")
        )
        classic = prepare(classic_config, spark)
        stdout, _ = connect_side.communicate(timeout=240)
    finally:
        if connect_side.poll() is None:
            connect_side.kill()
            connect_side.communicate()
    assert connect_side.returncode == 0, log.read_text()[-4000:]
    connect = json.loads(stdout.strip().splitlines()[-1])
    assert connect["source_partitions"] >= 2  # the Connect side read several partitions too

    # Two different volumes: neither run could have been a cache hit of the other.
    assert connect["cache_hit"] is False and classic.cache_hit is False
    assert connect["dataset"] != str(classic.dataset.path)
    # The key depends on the data and settings, not on the session kind or the method.
    assert connect["key"] == classic.dataset.key
    assert connect["rows"] == classic.counts
    assert connect["rows"]["by_reason"] == {
        "conflicting_labels": 2,
        "empty_text": 1,
        "invalid_utf8_text": 1,
        "null_label": 1,
        "null_text": 1,
        "rare_label": 1,
    }
    assert connect["labels"] == list(classic.label_map.labels) == ["fresh", "rotten"]
    assert connect["splits"] == classic.dataset.split_rows
    assert all(connect["splits"][s] > 0 for s in ("train", "validation", "test"))
    assert connect["max_length"] == classic.dataset.manifest["max_length"]
    assert connect["data_card"] == classic.dataset.manifest["data_card"]

    published = PublishedDataset.open(connect["dataset"])
    assert published.manifest["method"] == "parquet"  # what "auto" picks on Connect
    assert classic.dataset.manifest["method"] == "from_spark"
    for entry in ("splits", "rows", "label_map"):
        assert published.manifest[entry] == classic.dataset.manifest[entry], entry
    from_connect, from_classic = published.load(), classic.dataset.load()
    assert sorted(from_connect) == sorted(from_classic) == ["test", "train", "validation"]
    for split in from_classic:
        assert from_connect[split].features == from_classic[split].features
        rows = from_classic[split].to_dict()
        assert from_connect[split].to_dict() == rows, split  # same rows, same order, value by value
        assert rows["row_hash"] == sorted(rows["row_hash"]) and set(rows["split"]) == {split}
    everything = [t for split in from_classic.values() for t in split["text"]]
    assert "Spaced out review" in everything and everything.count("a duplicate review") == 2

    # Errors too: a bad filter is a DataError naming source.where in both modes.
    bad = classic_config.source.model_copy(update={"where": BAD_WHERE})
    with pytest.raises(DataError) as classic_error:
        read_source(spark, bad, classic_config.runtime)
    assert connect["where_error"] is not None, "Connect let a bad source.where through read_source"
    assert connect["where_error"].startswith(f"source.where {BAD_WHERE!r}: Spark could not read it:")
    assert "verdikt" in connect["where_error"]
    assert str(classic_error.value).split(":")[0] == connect["where_error"].split(":")[0]
