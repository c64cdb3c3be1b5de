"""Bad input gets a clear answer, nothing is lost.

A catalogue of bad inputs. Each case ends in exactly one of two ways:

- one ``LakefineError`` whose message names the column, file or key AND the fix
  (through the CLI: exit code 2, no ``Traceback`` and no ``Py4J`` on stderr), or
- rows quarantined with a reason: ``input == used + quarantined`` and the reason in
  ``counts["by_reason"]``; the quarantine Parquet keeps the rows with a ``reason``.

Policies stated here (and implemented in src/lakefine):
- null / empty / whitespace-only text -> null_text / empty_text; null or blank label ->
  null_label / empty_label; a float NaN label counts as null.
- labels that differ only in case or spaces: ``labels.case: normalize`` merges them
  (lower-cased, whitespace collapsed); ``exact`` refuses them with the fix.
- a class with fewer usable rows than ``labels.min_count`` -> rare_label; a class with
  no training row -> label_not_in_train; a class missing only from validation/test is
  kept (it can be learned, only its evaluation is thinner).
- bytes that are not UTF-8 (decoded by Spark to U+FFFD) -> invalid_utf8_text; UTF-8
  read as Latin-1/cp1252 ("Ã©", "â€™") -> mojibake_text (detected, never repaired).
- a CSV line Spark cannot parse (too many fields, an unclosed quote) -> malformed_row,
  raw line kept in ``_corrupt_record`` (an unclosed quote swallows the lines after it:
  they are in that raw record, not lost).
- the same text twice: kept, counted in data_card.duplicate_rows, one split; the same
  text with two labels -> conflicting_labels; an id column with nulls -> null_id.
- a text longer than max_length is kept; the data card counts the training texts
  longer than max_length (``truncated_rows``); training cuts them at max_length.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from conftest import REPO, make_config
from lakefine.core.config import SplitConfig
from lakefine.core.errors import ConfigError, DataError, TrainingError
from lakefine.prep.clean import with_key
from lakefine.prep.prepare import prepare
from lakefine.prep.split import assign_split

SMOKE = str(REPO / "pipelines/smoke.yaml")
SCHEMA = "review string, sentiment string"
BASE = [(f"base review number {i}", "pos" if i % 2 else "neg") for i in range(120)]


def src(**kwargs) -> dict:
    """A DataFrame is passed to prepare(); the table only names the source in messages."""
    return {"table": "main.ml.reviews", "text_column": "review", "label_column": "sentiment", **kwargs}


def config(model: dict | None = None, **sections):
    """Preparation needs only a tokenizer: MiniLM's real one (the tiny test model uses
    the same), found in its package, so no model is built and torch is not imported."""
    return make_config(model={"name_or_path": "minilm", **(model or {})}, **sections)


def assert_balanced(result) -> None:
    counts = result.counts
    assert counts["input"] == counts["used"] + counts["quarantined"]
    assert counts["quarantined"] == sum(counts["by_reason"].values())


def quarantined_rows(spark, result) -> list[dict]:
    return [row.asDict() for row in spark.read.parquet(result.quarantine_path).collect()]


def published_rows(result) -> list[dict]:
    names = result.label_map.labels
    rows = []
    for split, dataset in result.dataset.load().items():
        rows += [{**row, "label": names[row["label"]], "split": split} for row in dataset]
    return rows


def texts_in_splits(spark, candidates: list[str], splits: set[str], n: int) -> list[str]:
    """Pick texts whose seeded hash (the default split config) lands in ``splits``."""
    df = with_key(spark.createDataFrame([(t,) for t in candidates], "text string"))
    chosen = [r.text for r in assign_split(df, SplitConfig()).collect() if r.split in splits][:n]
    assert len(chosen) == n
    return chosen


def expect_error(error_type, call, *fragments):
    with pytest.raises(error_type) as caught:
        call()
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"
    return message


def start_cli(root, *args) -> subprocess.Popen:
    env = {**os.environ, "LAKEFINE_LOCAL_ROOT": str(root)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(
        [sys.executable, "-m", "lakefine.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_clean_cli_error(process: subprocess.Popen, *fragments):
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 2, stderr[-2000:]
    for fragment in fragments:
        assert fragment in stderr, f"{fragment!r} not in: {stderr[-2000:]}"
    assert "Traceback" not in stderr and "Py4J" not in stderr


@pytest.fixture(scope="module")
def module_root(tmp_path_factory):
    """One local root for the module's shared preparations (each prepare is ~5 s)."""
    return tmp_path_factory.mktemp("bad-input-root")


@pytest.fixture()
def root(tmp_path, monkeypatch):
    """A fresh local root for a test that fails before writing anything."""
    monkeypatch.setenv("LAKEFINE_LOCAL_ROOT", str(tmp_path / "root"))
    return tmp_path / "root"


@pytest.fixture(scope="module")
def cli_cases(tmp_path_factory):
    """The CLI cases (where stderr must be checked) run as subprocesses in parallel with
    this process's Spark work; each CLI test then only collects its result."""
    base = tmp_path_factory.mktemp("bad-input-cli")
    typo = base / "typo.yaml"
    typo.write_text(Path(SMOKE).read_text().replace("label_column:", "label_colunm:"))
    somedir = base / "somedir"
    somedir.mkdir()
    (somedir / "notes.txt").write_text("not a model")
    empty = base / "empty-model"
    empty.mkdir()
    cases = {
        "typo": (start_cli(base / "root-typo", "prepare", str(typo)), typo),
        "predict": (start_cli(base / "root-predict", "predict", str(somedir), "x"), somedir),
        "run": (start_cli(base / "root-run", "run", SMOKE, f"model.name_or_path={empty}"), empty),
    }
    yield cases
    for process, _ in cases.values():
        if process.poll() is None:
            process.kill()
            process.communicate()


def run_prepare(root, spark, config, df=None):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEFINE_LOCAL_ROOT", str(root))
        return prepare(config, spark, df=df)


# ------------------------------------------------- one prepare, many bad rows (quarantine)

MOJIBAKE = ["cafÃ© au lait was great", "donÃ¢â‚¬â„¢t bother", "donâ€™t watch it", "Ã‰norme ÃŸ film"]
CLEAN_ACCENTS = "Café crème, déjà vu — a naïve “quote” … ÀÉÎÕÜ ß «Spaß» 50° ©"


@pytest.fixture(scope="module")
def mixed(spark, module_root, cli_cases):  # cli_cases: start the subprocesses first
    """Good rows plus one of each bad kind, in one DataFrame with two extra columns of
    types the handoff cannot carry (map, void): they are not needed, so ignored."""
    unseen = texts_in_splits(spark, [f"unseen class review {i}" for i in range(60)], {"validation", "test"}, 3)
    long_text = texts_in_splits(
        spark, [f"long review {i} " + " ".join(["word"] * 1500) for i in range(20)], {"train"}, 1
    )[0]
    bad = [
        (None, "pos"),
        ("", "neg"),
        ("   \n\t \u00a0 ", "pos"),  # null, empty, whitespace-only
        ("the label is missing", None),
        ("the label is blank", "  \t"),  # null / blank label
        ("upper case label", "POS"),
        ("spaced label", " Pos\t"),  # merged by labels.case=normalize
        *[(text, "neg") for text in MOJIBAKE],
        (CLEAN_ACCENTS, "pos"),
        *[(text, "unseen") for text in unseen],  # only in validation/test
        ("tiny class one", "tiny"),
        ("tiny class two", "tiny"),  # 2 < labels.min_count=3
        ("same words two labels", "pos"),
        ("same words two labels", "neg"),
        ("a duplicated review", "pos"),
        ("a duplicated review", "pos"),
        ("a  duplicated\nreview ", "pos"),
        (long_text, "neg"),
    ]
    df = (
        spark.createDataFrame(BASE + bad, SCHEMA)
        .withColumn("meta", F.create_map(F.lit("source"), F.col("sentiment")))
        .withColumn("nothing", F.lit(None))
    )
    result = run_prepare(module_root, spark, config(source=src(), labels={"case": "normalize", "min_count": 3}), df)
    return {
        "result": result,
        "rows": len(BASE + bad),
        "unseen": unseen,
        "long_text": long_text,
        "quarantine": quarantined_rows(spark, result),
        "published": published_rows(result),
    }


def reasons_of(mixed, text) -> list:
    return [row["reason"] for row in mixed["quarantine"] if row["text"] == text]


def test_input_equals_used_plus_quarantined_and_every_reason_is_written(mixed):
    result = mixed["result"]
    assert_balanced(result)
    assert result.counts["input"] == mixed["rows"]
    assert len(mixed["published"]) == result.counts["used"]
    assert len(mixed["quarantine"]) == result.counts["quarantined"]
    written = {}
    for row in mixed["quarantine"]:
        written[row["reason"]] = written.get(row["reason"], 0) + 1
    assert written == result.counts["by_reason"]


def test_null_empty_and_whitespace_only_text_are_quarantined(mixed):
    by_reason = mixed["result"].counts["by_reason"]
    assert by_reason["null_text"] == 1
    assert by_reason["empty_text"] == 2  # "" and whitespace-only (incl. NBSP) normalise to ""


def test_null_and_blank_labels_are_quarantined(mixed):
    assert mixed["result"].counts["by_reason"]["null_label"] == 1
    assert mixed["result"].counts["by_reason"]["empty_label"] == 1
    assert reasons_of(mixed, "the label is missing") == ["null_label"]
    assert reasons_of(mixed, "the label is blank") == ["empty_label"]


def test_label_case_normalize_merges_case_and_space_variants(mixed):
    assert mixed["result"].label_map.labels == ("neg", "pos")
    labels = {row["text"]: row["label"] for row in mixed["published"]}
    assert labels["upper case label"] == labels["spaced label"] == "pos"


def test_label_case_exact_refuses_labels_that_differ_only_in_case(spark, root):
    df = spark.createDataFrame(BASE + [("upper", "POS"), ("spaced", "pos ")], SCHEMA)
    expect_error(
        DataError,
        lambda: prepare(config(source=src(), labels={"case": "exact"}), spark, df=df),
        "'sentiment'",
        "'POS' vs 'pos' vs 'pos '",
        "Set labels.case: normalize",
    )


def test_label_seen_only_in_validation_or_test_is_quarantined(mixed):
    assert mixed["result"].counts["by_reason"]["label_not_in_train"] == 3
    assert all(reasons_of(mixed, text) == ["label_not_in_train"] for text in mixed["unseen"])
    assert "unseen" not in mixed["result"].label_map.labels


def test_class_below_min_count_is_quarantined_as_rare(mixed):
    """labels.min_count=3: a class with fewer usable rows cannot appear in every split."""
    assert mixed["result"].counts["by_reason"]["rare_label"] == 2
    assert reasons_of(mixed, "tiny class one") == reasons_of(mixed, "tiny class two") == ["rare_label"]


def test_mojibake_is_detected_and_quarantined_but_real_accents_are_kept(mixed):
    assert mixed["result"].counts["by_reason"]["mojibake_text"] == len(MOJIBAKE)
    assert all(reasons_of(mixed, text) == ["mojibake_text"] for text in MOJIBAKE)
    assert CLEAN_ACCENTS in {row["text"] for row in mixed["published"]}


def test_same_text_with_two_labels_is_quarantined_as_conflicting(mixed):
    assert mixed["result"].counts["by_reason"]["conflicting_labels"] == 2
    assert sorted(row["label"] for row in mixed["quarantine"] if row["text"] == "same words two labels") == [
        "neg",
        "pos",
    ]


def test_duplicates_are_kept_counted_and_share_a_split(mixed):
    copies = [row for row in mixed["published"] if row["text"] == "a duplicated review"]
    assert len(copies) == 3  # whitespace variants normalise to the same text
    assert len({row["split"] for row in copies}) == 1
    card = mixed["result"].dataset.manifest["data_card"]
    assert card["duplicate_rows"] == 2 and card["keys_in_several_splits"] == 0


def test_text_longer_than_max_length_is_kept_and_counted_as_truncated(mixed):
    from tokenizers import Tokenizer

    from lakefine.core.assets import resolve_model

    manifest = mixed["result"].dataset.manifest
    max_length = manifest["max_length"]
    long_rows = [row for row in mixed["published"] if row["text"] == mixed["long_text"]]
    assert len(long_rows) == 1 and long_rows[0]["split"] == "train"  # kept whole
    tokenizer = Tokenizer.from_file(str(Path(resolve_model("minilm")) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    train = [row["text"] for row in mixed["published"] if row["split"] == "train"]
    longer = [text for text, e in zip(train, tokenizer.encode_batch(train)) if len(e.ids) > max_length]
    assert mixed["long_text"] in longer and max_length <= 512
    assert manifest["data_card"]["truncated_rows"] == len(longer) >= 1


def test_unneeded_map_and_void_columns_are_ignored(mixed):
    assert mixed["result"].counts["used"] > 100
    assert set(mixed["result"].dataset.load()["train"].column_names) == {"text", "label", "split", "row_hash"}
    assert "meta" not in mixed["quarantine"][0] and "nothing" not in mixed["quarantine"][0]


# ----------------------------------------------------------------- files: bytes and lines

GOOD_CSV_ROWS = [f"csv review {i},{'pos' if i % 2 else 'neg'}".encode() for i in range(40)]


@pytest.fixture(scope="module")
def bad_csv(spark, module_root):
    """A CSV with invalid UTF-8 bytes, a line with too many fields, a valid multi-line
    quoted field, and an unclosed quote that swallows the lines after it."""
    path = module_root / "Volumes/main/ml/raw/bad_reviews.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\n".join(
            [
                b"review,sentiment",
                *GOOD_CSV_ROWS,
                b"broken \xff\xfe bytes here,pos",
                b"too,many,fields,neg",
                b'"a quoted review\nover two lines",neg',
                b'"an unclosed quote,pos',
                b"swallowed line one,neg",
                b"swallowed line two,pos",
            ]
        )
        + b"\n"
    )
    cfg = config(
        source={"path": "/Volumes/main/ml/raw/bad_reviews.csv", "text_column": "review", "label_column": "sentiment"}
    )
    result = run_prepare(module_root, spark, cfg)
    return result, quarantined_rows(spark, result), published_rows(result)


def test_non_utf8_bytes_are_quarantined_as_invalid_utf8(bad_csv):
    result, quarantine, _ = bad_csv
    assert_balanced(result)
    assert result.counts["by_reason"]["invalid_utf8_text"] == 1
    assert [row["text"] for row in quarantine if row["reason"] == "invalid_utf8_text"] == [
        "broken \ufffd\ufffd bytes here"
    ]


def test_malformed_csv_lines_are_quarantined_with_the_raw_line(bad_csv):
    result, quarantine, published = bad_csv
    assert_balanced(result)
    # 40 good + bad bytes + too many fields + multi-line + one record for the unclosed quote
    assert result.counts["input"] == 44 and result.counts["used"] == 41
    assert result.counts["by_reason"]["malformed_row"] == 2
    raw = sorted(row["_corrupt_record"] for row in quarantine if row["reason"] == "malformed_row")
    assert raw[1] == "too,many,fields,neg"
    assert "swallowed line one" in raw[0] and "swallowed line two" in raw[0]  # nothing lost
    assert "a quoted review over two lines" in {row["text"] for row in published}
    assert "many" not in result.label_map.labels


# ------------------------------------------------- numeric labels and an id column


@pytest.fixture(scope="module")
def numbered(spark, module_root):
    """Float labels 2.0, 0.0, 1.0, 3.0 .. 10.0 (and one NaN), keyed by an id column in
    which some ids are null or blank."""
    order = [2, 0, 1, *range(3, 11)]
    rows = [(f"n{k}-{j}", f"numbered review {k} {j}", float(k)) for k in order for j in range(10)]
    rows += [("n-nan", "a review with a NaN label", float("nan"))]
    rows += [(None, f"a review without an id {i}", 1.0) for i in range(6)] + [("  ", "a blank id", 0.0)]
    df = spark.createDataFrame(rows, "review_id string, review string, sentiment double")
    result = run_prepare(module_root, spark, config(source=src(id_column="review_id")), df)
    return result, quarantined_rows(spark, result), published_rows(result)


def test_float_labels_become_integral_strings_and_keep_their_ids(numbered):
    result, quarantine, published = numbered
    assert_balanced(result)
    assert result.label_map.labels == tuple(str(k) for k in range(11))  # "10" after "9"
    ids = {row["text"]: result.label_map.label2id[row["label"]] for row in published}
    assert ids["numbered review 2 0"] == 2 and ids["numbered review 0 0"] == 0 and ids["numbered review 10 0"] == 10
    assert result.counts["by_reason"]["null_label"] == 1  # NaN is a missing label
    assert [row["reason"] for row in quarantine if row["text"] == "a review with a NaN label"] == ["null_label"]


def test_int_labels_2_0_1_become_strings_with_ids_2_0_1(spark):
    from lakefine.core.config import SourceConfig
    from lakefine.core.labels import LabelMap
    from lakefine.prep.clean import to_canonical

    df = spark.createDataFrame([("a", 2), ("b", 0), ("c", 1), ("d", 10), ("e", 9)], "review string, sentiment long")
    canonical = to_canonical(df, SourceConfig(**src()))
    labels = [row.label for row in canonical.collect()]
    assert labels == ["2", "0", "1", "10", "9"]
    assert LabelMap.from_labels(labels[:3]).label2id == {"0": 0, "1": 1, "2": 2}
    assert LabelMap.from_labels(labels).labels == ("0", "1", "2", "9", "10")


def test_id_column_with_nulls_quarantines_null_id(numbered):
    """A null id would give all such rows one split key (and count them as duplicates)."""
    result, quarantine, _ = numbered
    assert_balanced(result)
    assert result.counts["by_reason"]["null_id"] == 6 and result.counts["by_reason"]["empty_id"] == 1
    assert sorted(row["text"] for row in quarantine if row["reason"] == "null_id") == [
        f"a review without an id {i}" for i in range(6)
    ]
    assert result.dataset.manifest["data_card"]["duplicate_rows"] == 0


# ------------------------------------------------------------------ one clear error each


def test_single_class_names_the_label_column(spark, root):
    df = spark.createDataFrame([(f"only {i}", "pos") for i in range(20)], SCHEMA)
    expect_error(
        DataError,
        lambda: prepare(config(source=src()), spark, df=df),
        "label 'sentiment'",
        "only one class ('pos')",
        "Check source.label_column",
    )


def test_missing_column_suggests_the_closest_name(spark, root):
    df = spark.createDataFrame(BASE, SCHEMA)
    expect_error(
        DataError,
        lambda: prepare(config(source=src(label_column="sentimnet")), spark, df=df),
        "source.label_column: column 'sentimnet'",
        "Did you mean 'sentiment'?",
    )


@pytest.mark.parametrize(
    "key, column, build, expected",
    [
        ("label_column", "tags", lambda c: F.create_map(F.lit("k"), c), "has type map<string,string>"),
        ("label_column", "tags", lambda c: F.lit(None), "has type void"),
        ("text_column", "tags", lambda c: F.array(c), "has type array<string>"),
    ],
)
def test_a_needed_column_of_an_unusable_type_is_one_clear_error(spark, root, key, column, build, expected):
    df = spark.createDataFrame(BASE, SCHEMA).withColumn(column, build(F.col("sentiment")))
    expect_error(
        DataError,
        lambda: prepare(config(source=src(**{key: column})), spark, df=df),
        f"source.{key}: column 'tags' {expected}",
        f"point source.{key} at",
    )


@pytest.mark.parametrize("where", [None, "sentiment = 'nothing like this'"])
def test_empty_source_is_one_clear_error(spark, root, where):
    df = spark.createDataFrame(BASE if where else [], SCHEMA)
    if where:
        df = df.where(where)
    expect_error(
        DataError,
        lambda: prepare(config(source=src(where=where)), spark, df=df),
        "source main.ml.reviews",
        "has no rows",
        "check that the table or files hold data",
    )


def test_empty_file_is_one_clear_error(spark, root):
    path = root / "Volumes/main/ml/raw/empty.csv"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")
    cfg = config(
        source={"path": "/Volumes/main/ml/raw/empty.csv", "text_column": "review", "label_column": "sentiment"}
    )
    expect_error(
        DataError,
        lambda: prepare(cfg, spark),
        "source.path /Volumes/main/ml/raw/empty.csv",
        "the files are empty",
        "check source.path",
    )


def test_every_row_quarantined_is_one_error_with_the_reasons(spark, root):
    df = spark.createDataFrame([(f"text {i}", None) for i in range(10)], SCHEMA)
    expect_error(
        DataError,
        lambda: prepare(config(source=src()), spark, df=df),
        "no usable rows",
        "10 null_label",
        "check that source.text_column and source.label_column",
    )


@pytest.mark.parametrize(
    "path, expected, fix",
    [
        (
            "/tmp/reviews.csv",
            "source.path: '/tmp/reviews.csv' is not under a volume",
            "use /Volumes/<catalog>/<schema>/<volume>/",
        ),
        ("/Volumes/main/ml/raw/../../../etc/passwd.csv", "contains '..'", "give the full path under /Volumes/"),
    ],
)
def test_source_path_outside_the_volume_is_a_config_error(spark, root, path, expected, fix):
    cfg = config(source={"path": path, "text_column": "review", "label_column": "sentiment"})
    expect_error(ConfigError, lambda: prepare(cfg, spark), expected, fix)


def test_model_path_that_is_an_empty_directory_fails_before_spark(tmp_path, root):
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    cfg = config(model={"name_or_path": str(empty)})
    expect_error(
        TrainingError,
        lambda: prepare(cfg, spark=None),
        "model.name_or_path",
        "is an empty directory",
        "point model.name_or_path at a save_pretrained directory",
    )


def test_predict_on_a_directory_with_a_broken_config_names_the_fix(tmp_path):
    from lakefine.serving.predictor import Predictor

    (tmp_path / "config.json").write_text("{}")
    expect_error(TrainingError, lambda: Predictor.load(str(tmp_path)), str(tmp_path), "save_pretrained")


# ------------------------------------------------------------- through the CLI (stderr)


def test_cli_misspelled_config_key_suggests_the_right_one(cli_cases):
    process, _ = cli_cases["typo"]
    assert_clean_cli_error(process, "unknown key 'source.label_colunm'", "did you mean 'source.label_column'?")


def test_cli_predict_on_a_directory_that_is_not_a_model(cli_cases):
    process, somedir = cli_cases["predict"]
    assert_clean_cli_error(
        process, str(somedir), "not a model directory", "pass the directory printed by `lakefine train`"
    )


def test_cli_run_with_an_empty_model_directory_names_model_name_or_path(cli_cases):
    process, empty = cli_cases["run"]
    assert_clean_cli_error(
        process,
        "model.name_or_path",
        str(empty),
        "is an empty directory",
        "point model.name_or_path at a save_pretrained directory",
    )
