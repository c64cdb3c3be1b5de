"""The cache key: change the data, the label policy, the split, the tokenizer, the
max length or the token-id encoding and get new data; change nothing and get a hit without any Spark job."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, link_shared, make_config
from lakefine.prep.prepare import prepare
from lakefine.prep.versions import delta_version, file_listing

ROWS = [(f"review number {i} is {'good' if i % 2 else 'bad'}", "pos" if i % 2 else "neg") for i in range(60)]


def write_source(spark, root: Path) -> Path:
    target = root / "Volumes/main/ml/raw/keyed"
    spark.createDataFrame(ROWS, "text string, label string").coalesce(1).write.mode("overwrite").parquet(str(target))
    return target


@pytest.fixture()
def source(spark, local_root):
    return write_source(spark, local_root)


@pytest.fixture(scope="module")
def baseline_root(tmp_path_factory, shared_root, spark):
    """One root whose source is never rewritten, and its baseline dataset prepared once:
    the tests that compare a prepare with the baseline share it."""
    root = link_shared(tmp_path_factory.mktemp("keyed"), shared_root)
    write_source(spark, root)
    previous = os.environ.get("LAKEFINE_LOCAL_ROOT")
    os.environ["LAKEFINE_LOCAL_ROOT"] = str(root)
    try:
        return root, prepare(config(), spark)
    finally:
        if previous is None:
            os.environ.pop("LAKEFINE_LOCAL_ROOT")
        else:
            os.environ["LAKEFINE_LOCAL_ROOT"] = previous


@pytest.fixture()
def baseline(baseline_root, monkeypatch):
    root, first = baseline_root
    monkeypatch.setenv("LAKEFINE_LOCAL_ROOT", str(root))
    yield first
    os.environ.pop("MLFLOW_TRACKING_URI", None)


def config(**changes):
    sections = {
        "source": {"path": "/Volumes/main/ml/raw/keyed", "format": "parquet"},
        "split": {"train": 0.7, "validation": 0.15, "test": 0.15, "seed": 1},
        # The changed-setting datasets share the baseline's root: never prune the baseline.
        "runtime": {"keep_versions": 10},
    }
    for key, value in changes.items():
        sections[key] = {**sections.get(key, {}), **value}
    return make_config(**sections)


@pytest.mark.slow
@pytest.mark.parametrize(
    "change",
    [
        {"split": {"seed": 2}},
        {"labels": {"min_count": 2}},
        {"labels": {"case": "normalize"}},
        {"model": {"max_length": 24}},
        {"model": {"name_or_path": "minilm"}},  # another tokenizer
    ],
    ids=["split", "label policy", "label case", "max_length", "tokenizer"],
)
def test_each_setting_is_part_of_the_key(spark, baseline, change):
    first = baseline
    changed = prepare(config(**change), spark)
    assert changed.cache_hit is False and changed.dataset.key != first.dataset.key


@pytest.mark.slow
def test_the_token_id_encoding_is_part_of_the_key(spark, baseline, monkeypatch):
    """The dataset settings record that the rows carry ids made in Spark (and by which
    encoding): another encoding is another dataset, even for an unchanged source."""
    from lakefine.core import dataset, tokenization

    first = baseline
    settings, recorded = first.dataset.manifest["settings"], first.dataset.manifest["tokenized"]
    assert settings["tokenized"] == tokenization.VERSION == recorded["version"]
    assert (
        recorded["columns"] == ["input_ids", "length"]
        and recorded["max_length"] == first.dataset.manifest["max_length"]
    )
    monkeypatch.setattr(dataset, "TOKENIZATION_VERSION", tokenization.VERSION + 1)
    changed = prepare(config(), spark)
    assert changed.cache_hit is False and changed.dataset.key != first.dataset.key


def test_unchanged_source_is_a_hit_before_any_spark_job(spark, baseline):
    first = baseline
    jobs_before = spark.sparkContext.statusTracker().getJobIdsForGroup(None)
    again = prepare(config(), spark)
    assert again.cache_hit and again.dataset.key == first.dataset.key
    assert again.counts == first.counts and again.label_map == first.label_map
    assert spark.sparkContext.statusTracker().getJobIdsForGroup(None) == jobs_before


def test_an_unchanged_file_source_is_a_hit_without_starting_spark(baseline):
    """A new process (a rerun of the job) finds the published version from the file
    listing alone: no JVM is started."""
    first = baseline
    code = (
        "import json, sys\n"
        "sys.path.insert(0, 'tests')\n"
        "from test_cache_keys import config\n"
        "from pyspark.sql import SparkSession\n"
        "from lakefine.prep.prepare import prepare\n"
        "result = prepare(config())\n"
        "print(json.dumps({'hit': result.cache_hit, 'key': result.dataset.key, 'timings': result.timings,"
        " 'session': SparkSession.getActiveSession() is not None}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=dict(os.environ),  # LAKEFINE_LOCAL_ROOT: the baseline's root
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    again = json.loads(done.stdout.strip().splitlines()[-1])
    assert again["hit"] and again["key"] == first.dataset.key
    assert again["session"] is False and "spark_start" not in again["timings"]


def test_rewritten_files_change_the_version_and_same_rows_keep_the_key(spark, source):
    first = prepare(config(), spark)
    listing = file_listing(source)
    time.sleep(0.01)
    spark.createDataFrame(ROWS, "text string, label string").coalesce(1).write.mode("overwrite").parquet(str(source))
    assert file_listing(source) != listing
    rewritten = prepare(config(), spark)  # new files, same rows: the content digest decides
    assert rewritten.dataset.key == first.dataset.key


def test_delta_history_parsing():
    assert delta_version([{"version": 3, "operation": "WRITE"}, {"version": 7}, {"version": 5}]) == 7
    assert delta_version([]) is None
    assert delta_version([{"version": None}]) is None
