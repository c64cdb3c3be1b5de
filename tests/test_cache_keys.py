"""The cache key: change the data, the label policy, the split, the tokenizer or the
max length and get new data; change nothing and get a hit without any Spark job."""

import os
import time

import pytest

from conftest import make_config
from lakefine.prep.prepare import prepare
from lakefine.prep.versions import delta_version, file_listing

ROWS = [(f"review number {i} is {'good' if i % 2 else 'bad'}", "pos" if i % 2 else "neg") for i in range(60)]


@pytest.fixture()
def source(spark, local_root):
    target = local_root / "Volumes/main/ml/raw/keyed"
    spark.createDataFrame(ROWS, "text string, label string").coalesce(1).write.mode("overwrite").parquet(str(target))
    return target


def config(**changes):
    sections = {"source": {"path": "/Volumes/main/ml/raw/keyed", "format": "parquet"},
                "split": {"train": 0.7, "validation": 0.15, "test": 0.15, "seed": 1}}
    for key, value in changes.items():
        sections[key] = {**sections.get(key, {}), **value}
    return make_config(**sections)


@pytest.mark.slow
@pytest.mark.parametrize("change", [
    {"split": {"seed": 2}},
    {"labels": {"min_count": 2}},
    {"labels": {"case": "normalize"}},
    {"model": {"max_length": 24}},
    {"model": {"name_or_path": "minilm"}},  # another tokenizer
], ids=["split", "label policy", "label case", "max_length", "tokenizer"])
def test_each_setting_is_part_of_the_key(spark, source, change):
    first = prepare(config(), spark)
    changed = prepare(config(**change), spark)
    assert changed.cache_hit is False and changed.dataset.key != first.dataset.key


def test_unchanged_source_is_a_hit_before_any_spark_job(spark, source):
    first = prepare(config(), spark)
    jobs_before = spark.sparkContext.statusTracker().getJobIdsForGroup(None)
    again = prepare(config(), spark)
    assert again.cache_hit and again.dataset.key == first.dataset.key
    assert again.counts == first.counts and again.label_map == first.label_map
    assert spark.sparkContext.statusTracker().getJobIdsForGroup(None) == jobs_before


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
