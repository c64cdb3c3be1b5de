"""Sources: UC tables (local Parquet stand-ins), SQL with bound tables, files of
every supported format under a volume, a DataFrame handed in from Python."""

import json

import pytest

from conftest import make_config
from lakefine.core.errors import ConfigError, DataError
from lakefine.prep.prepare import prepare
from lakefine.prep.sources import read_source, write_local_table

ROWS = [("a good film", "pos"), ("a bad film", "neg"), ("fine work", "pos"), ("dull", "neg")] * 10


def frame(spark):
    return spark.createDataFrame(ROWS, "review string, sentiment string")


def source(**kwargs):
    return {"text_column": "review", "label_column": "sentiment", **kwargs}


def test_three_part_table_maps_to_a_local_parquet_directory(spark, local_root):
    config = make_config(source=source(table="main.ml.reviews"))
    location = write_local_table(frame(spark), "main.ml.reviews", config.runtime)
    assert location == local_root / "tables/main/ml/reviews"
    assert read_source(spark, config.source, config.runtime).count() == len(ROWS)


def test_sql_binds_named_tables(spark, local_root):
    config = make_config(
        source=source(sql="SELECT * FROM {r} WHERE sentiment = 'pos'", tables={"r": "main.ml.reviews"})
    )
    write_local_table(frame(spark), "main.ml.reviews", config.runtime)
    df = read_source(spark, config.source, config.runtime)
    assert {row.sentiment for row in df.collect()} == {"pos"} and df.count() == 20


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl", "parquet"])
def test_every_file_format_under_a_volume(spark, local_root, fmt):
    target = local_root / f"Volumes/main/ml/raw/reviews.{fmt}"
    target.parent.mkdir(parents=True, exist_ok=True)
    records = [{"review": t, "sentiment": s} for t, s in ROWS]
    if fmt == "csv":
        target.write_text("review,sentiment\n" + "".join(f'"{t}",{s}\n' for t, s in ROWS))
    elif fmt == "json":
        target.write_text(json.dumps(records))
    elif fmt == "jsonl":
        target.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        frame(spark).write.parquet(str(target))
    config = make_config(source=source(path=f"/Volumes/main/ml/raw/reviews.{fmt}"))
    df = read_source(spark, config.source, config.runtime)
    assert sorted((r.review, r.sentiment) for r in df.collect()) == sorted(ROWS)


def test_a_dataframe_from_python_replaces_the_source(spark, local_root):
    config = make_config(
        source=source(table="main.ml.not_there"), split={"train": 0.5, "validation": 0.25, "test": 0.25}
    )
    result = prepare(config, spark, df=frame(spark))
    assert result.counts["used"] == len(ROWS) and result.label_map.labels == ("neg", "pos")


def test_missing_table_names_the_local_location(spark, local_root):
    config = make_config(source=source(table="main.ml.nope"))
    with pytest.raises(DataError, match="table main.ml.nope not found.*tables/main/ml/nope"):
        read_source(spark, config.source, config.runtime)


@pytest.mark.parametrize(
    "path, message",
    [
        ("/tmp/data.csv", "is not under a volume"),
        ("/Volumes/main/ml/raw/../../secret.csv", "contains '..'"),
    ],
)
def test_paths_outside_a_volume_are_refused(spark, local_root, path, message):
    config = make_config(source=source(path=path))
    with pytest.raises(ConfigError, match=message):
        read_source(spark, config.source, config.runtime)


def test_local_sessions_map_the_class_archive_only_when_it_is_there(spark, tmp_path):
    """The JVM options of a local driver name the class archive once it exists (a
    missing one is left out, never passed for the JVM to warn about); the session this
    run started got the archive the environment has."""
    from lakefine.prep.session import CLASS_ARCHIVE, local_java_options

    archive = tmp_path / "classes.jsa"
    assert "SharedArchiveFile" not in local_java_options(archive)
    archive.write_bytes(b"x")
    assert local_java_options(archive).endswith(f"-XX:SharedArchiveFile={archive}")
    started_with = spark.sparkContext.getConf().get("spark.driver.extraJavaOptions")
    assert ("-XX:SharedArchiveFile" in started_with) == CLASS_ARCHIVE.is_file()
