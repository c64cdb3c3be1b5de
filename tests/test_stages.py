"""Unit tests of the pure preparation stages on the shared local SparkSession."""

import pytest
from pyspark.sql import Row
from pyspark.testing import assertDataFrameEqual

from lakefine.core.config import LabelConfig, SourceConfig, SplitConfig
from lakefine.core.labels import UNKNOWN_ID, LabelMap, sort_labels
from lakefine.prep.clean import mark_unusable, to_canonical, with_key
from lakefine.prep.label_ids import apply_label_ids
from lakefine.prep.split import assign_split


def test_whitespace_is_normalised_and_labels_become_strings(spark):
    df = spark.createDataFrame([("  a\n\tb  c ", 1.0), ("x\u00a0 y", 2.0)], "t string, y double")
    out = to_canonical(df, SourceConfig(path="/Volumes/c/s/v/x.csv", text_column="t", label_column="y"))
    assertDataFrameEqual(out, [Row(text="a b c", label="1"), Row(text="x y", label="2")])


def test_unusable_rows_get_a_reason_and_are_kept(spark):
    rows = [("ok", "a"), (None, "a"), ("", "b"), ("bad \ufffd bytes", "a"), ("fine", None), ("fine", " ")]
    df = spark.createDataFrame(rows, "text string, label string")
    out = mark_unusable(df, LabelConfig())
    reasons = [r.reason for r in out.collect()]
    assert reasons == [None, "null_text", "empty_text", "invalid_utf8_text", "null_label", "empty_label"]
    assert out.count() == len(rows)  # nothing dropped


def test_label_case_policy_normalises_only_when_asked(spark):
    df = spark.createDataFrame([("a", "Spam "), ("b", "spam"), ("c", "SPAM")], "text string, label string")
    exact = {r.label for r in mark_unusable(df, LabelConfig(case="exact")).collect()}
    normalized = {r.label for r in mark_unusable(df, LabelConfig(case="normalize")).collect()}
    assert exact == {"Spam ", "spam", "SPAM"} and normalized == {"spam"}


def test_numbers_sort_as_numbers_and_0_to_n_keep_their_values():
    assert sort_labels(["10", "2", "1"]) == ("1", "2", "10")
    assert LabelMap.from_labels(["2", "0", "1"]).label2id == {"0": 0, "1": 1, "2": 2}
    assert sort_labels(["b", "a", "10"]) == ("10", "a", "b")
    label_map = LabelMap.from_labels(["rotten", "fresh"])
    assert LabelMap.from_json(label_map.to_json()) == label_map
    assert label_map.fingerprint == LabelMap.from_labels(["fresh", "rotten"]).fingerprint


def test_pandas_udf_maps_labels_and_marks_unknown_ones(spark):
    df = spark.createDataFrame([("fresh",), ("rotten",), ("plot",)], "label string")
    out = apply_label_ids(df, LabelMap(("fresh", "rotten")))
    assert [r.label_id for r in out.collect()] == [0, 1, UNKNOWN_ID]


def test_split_is_deterministic_seeded_and_keeps_duplicates_together(spark):
    texts = [(f"text {i % 500}", "a") for i in range(2000)]  # each text 4 times
    df = with_key(spark.createDataFrame(texts, "text string, label string"))
    first = assign_split(df, SplitConfig(seed=1)).collect()
    again = assign_split(df, SplitConfig(seed=1)).collect()
    other = assign_split(df, SplitConfig(seed=2)).collect()
    assert [r.split for r in first] == [r.split for r in again]
    assert [r.split for r in first] != [r.split for r in other]
    by_text = {}
    for r in first:
        by_text.setdefault(r.text, set()).add(r.split)
    assert all(len(s) == 1 for s in by_text.values())
    share = sum(r.split == "train" for r in first) / len(first)
    assert 0.7 < share < 0.9


def test_id_column_decides_the_split_when_present(spark):
    df = spark.createDataFrame(
        [("same text", "a", "1"), ("same text", "a", "2")], "text string, label string, id string"
    )
    keyed = with_key(df)
    assert [r.key for r in keyed.collect()] == ["1", "2"]


@pytest.mark.parametrize("fractions", [(1.0, 0.0, 0.0), (0.5, 0.25, 0.25)])
def test_split_fractions_are_respected(spark, fractions):
    df = with_key(spark.createDataFrame([(f"t{i}", "a") for i in range(4000)], "text string, label string"))
    train, validation, test = fractions
    rows = (
        assign_split(df, SplitConfig(train=train, validation=validation, test=test)).groupBy("split").count().collect()
    )
    counts = {r.split: r["count"] / 4000 for r in rows}
    assert abs(counts.get("train", 0) - train) < 0.05
    assert abs(counts.get("test", 0) - test) < 0.05
