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
- labels get one spelling before discovery: NFC, zero-width/control characters removed,
  whitespace collapsed; when every label is a number, 1 / 1.0 / " 1 " are one label "1";
  the label order is total (numbers by value, ties by text).
- bytes that are not UTF-8 (decoded by Spark to U+FFFD) -> invalid_utf8_text / _label;
  UTF-8 read as Latin-1/cp1252 ("Ã©", "â€™"): ``source.mojibake: repair`` (default) fixes
  it with ftfy and counts the rows, what ftfy cannot fix -> mojibake_text; ``quarantine``
  -> mojibake_text; ``keep`` keeps and counts it.
- more than ``source.max_quarantined_fraction`` (0.1) of the input quarantined for data
  defects -> one error with the top reasons, examples and a hint each (for undecodable
  bytes: the detected encoding and the exact ``source.options.encoding``); duplicate,
  rare_label, label_not_in_train do not count. Below the gate the hints are warnings.
- ``source.options.mode`` other than PERMISSIVE is refused (malformed lines must be counted).
- Parquet files whose column types differ: scalar types are read per file group and cast
  (integers -> bigint, numbers -> double, else string); other mixes are one error.
- a CSV line Spark cannot parse (too many fields, an unclosed quote) -> malformed_row,
  raw line kept in ``_corrupt_record`` (an unclosed quote swallows the lines after it:
  they are in that raw record, not lost).
- the same text twice: kept, counted in data_card.duplicate_rows, one split; the same
  text with two labels -> conflicting_labels (only usable rows take part; texts are
  compared folded when the tokenizer folds case/accents, as MiniLM's does); an id
  column with nulls -> null_id.
- a text longer than ``source.max_text_chars`` is cut to it and counted (cut_texts).
- a text longer than max_length is kept; the data card counts the training texts
  longer than max_length (``truncated_rows``); training cuts them at max_length.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from conftest import REPO, make_config, start_cli
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


def cleaned_counts(root, spark, config, df=None):
    """Read and clean without publishing (cheaper than prepare, for tests about reading):
    input rows, ``{label: {split: rows}}`` of usable rows, ``{reason: rows}``."""
    from lakefine.prep.prepare import count_rows, usable_model_dir, usable_rows
    from lakefine.prep.sources import read_source

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEFINE_LOCAL_ROOT", str(root))
        raw = df if df is not None else read_source(spark, config.source, config.runtime)
        rows, _ = usable_rows(config, raw, usable_model_dir(config))
        input_rows, usable, by_reason, *_ = count_rows(config, rows)
    return input_rows, usable, by_reason


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
    cfg = config(source=src(mojibake="quarantine"), labels={"case": "normalize", "min_count": 3})
    result = run_prepare(module_root, spark, cfg, df)
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
    message = expect_error(
        DataError,
        lambda: prepare(config(source=src(), labels={"case": "exact"}), spark, df=df),
        "'sentiment'",
        "'POS' vs 'pos'.",  # "pos " is "pos" already: labels are trimmed before discovery
        "Set labels.case: normalize",
    )
    assert "'pos '" not in message


def test_label_seen_only_in_validation_or_test_is_quarantined(mixed):
    assert mixed["result"].counts["by_reason"]["label_not_in_train"] == 3
    assert all(reasons_of(mixed, text) == ["label_not_in_train"] for text in mixed["unseen"])
    assert "unseen" not in mixed["result"].label_map.labels


def test_class_below_min_count_is_quarantined_as_rare(mixed):
    """labels.min_count=3: a class with fewer usable rows cannot appear in every split."""
    assert mixed["result"].counts["by_reason"]["rare_label"] == 2
    assert reasons_of(mixed, "tiny class one") == reasons_of(mixed, "tiny class two") == ["rare_label"]


def test_mojibake_is_detected_and_quarantined_but_real_accents_are_kept(mixed):
    """source.mojibake: quarantine (the default, repair, is tested with a file below)."""
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
    columns = set(mixed["result"].dataset.load()["train"].column_names)
    assert columns == {"text", "label", "split", "row_hash", "input_ids", "length"}  # ids made in Spark
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


# ------------------------------------------------- label spellings, keys and conflicts


def write_files(root, folder: str, files: dict[str, bytes]) -> str:
    """Files under the module's stand-in volume; returns the volume path of the folder."""
    base = root / "Volumes/main/ml/raw" / folder
    base.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (base / name).write_bytes(data)
    return f"/Volumes/main/ml/raw/{folder}"


def csv_bytes(rows, header: str = "review,sentiment", encoding: str = "utf-8") -> bytes:
    return "\n".join([header, *[f'"{text}",{label}' for text, label in rows]]).encode(encoding) + b"\n"


def test_label_order_is_total_and_the_same_for_every_input_order():
    """Numeric ties ("0" and "0.0") used to keep the input order, a set's order: another
    label map (and other ids) in the next process."""
    import itertools

    from lakefine.core.labels import LabelMap, sort_labels

    labels = ["0.0", "0", "1", "1.0", "10", "2"]
    orders = {sort_labels(permutation) for permutation in itertools.permutations(labels)}
    assert orders == {("0", "0.0", "1", "1.0", "2", "10")}
    assert LabelMap.from_labels(["1.0", "1", "0"]).labels == ("0", "1", "1.0")


def test_numeric_label_spellings_in_two_csv_files_are_one_class(spark, module_root):
    """One file says 0/1, the other 0.0/1.0 (and ' 1 '): one label map ('0', '1')."""
    folder = write_files(
        module_root,
        "two_spellings",
        {
            "a.csv": csv_bytes([(f"first file review {i}", i % 2) for i in range(40)]),
            "b.csv": csv_bytes([(f"second file review {i}", ["0.0", "1.0", " 1 "][i % 3]) for i in range(40)]),
        },
    )
    result = run_prepare(module_root, spark, config(source=src(path=folder, format="csv", table=None)))
    assert_balanced(result)
    assert result.label_map.labels == ("0", "1")
    assert result.counts["quarantined"] == 0
    card = result.dataset.manifest["data_card"]
    assert card["cleaning"]["numeric_labels_unified"] == {"0.0": "0", "1.0": "1"}  # " 1 " is "1" once trimmed
    assert sum(card["label_counts"]["1"].values()) == 20 + 13 + 13
    assert result.dataset.manifest["label_policy"]["numbers"].startswith("when every label is a number")


@pytest.fixture(scope="module")
def keyed(spark, module_root):
    """Label variants that look the same, copies with an unusable label, texts that
    differ only in case with two labels, and many duplicates (source.deduplicate)."""
    nfc, nfd = "n\u00e9gatif", "ne\u0301gatif"
    third = texts_in_splits(spark, [f"third class review {i}" for i in range(40)], {"train"}, 6)
    rows = BASE + [
        *[(text, nfc if i % 2 else nfd) for i, text in enumerate(third)],  # NFC and NFD: one class
        ("zero width label", "pos\u200b"),
        ("byte order mark label", "\ufeffneg"),
        ("control char label", "p\u0007os"),
        ("a good copy", "pos"),
        ("a good copy", ""),  # quarantined as empty_label: must not take the good copy down
        ("Great Film", "pos"),
        ("great film", "neg"),  # MiniLM lower-cases: the model sees one text with two labels
        ("Café Crème Again", "pos"),
        ("cafe creme again", "pos"),  # the same text to the model: a duplicate
        *[(f"base review number {i}", "pos" if i % 2 else "neg") for i in range(60)],  # 60 exact repeats
    ]
    df = spark.createDataFrame(rows, SCHEMA)
    result = run_prepare(module_root, spark, config(source=src(deduplicate=True)), df)
    return {
        "result": result,
        "nfc": nfc,
        "quarantine": quarantined_rows(spark, result),
        "published": published_rows(result),
    }


def test_labels_that_look_the_same_are_one_class(keyed):
    result = keyed["result"]
    assert_balanced(result)
    assert result.label_map.labels == ("neg", keyed["nfc"], "pos")
    labels = {row["text"]: row["label"] for row in keyed["published"]}
    assert labels["zero width label"] == labels["control char label"] == "pos"
    assert labels["byte order mark label"] == "neg"
    assert result.dataset.manifest["label_policy"]["unicode"] == "NFC"


def test_a_copy_with_an_empty_label_does_not_take_the_good_copy_down(keyed):
    assert reasons_of(keyed, "a good copy") == ["empty_label"]
    assert [row["label"] for row in keyed["published"] if row["text"] == "a good copy"] == ["pos"]


def test_texts_the_tokenizer_cannot_tell_apart_conflict_and_repeat(keyed):
    """MiniLM's normalizer lower-cases and strips accents: the checks compare folded texts."""
    assert sorted(reasons_of(keyed, "Great Film") + reasons_of(keyed, "great film")) == ["conflicting_labels"] * 2
    again = reasons_of(keyed, "Café Crème Again") + reasons_of(keyed, "cafe creme again")
    assert again == ["duplicate"]
    card = keyed["result"].dataset.manifest["data_card"]
    assert card["cleaning"]["check_key"] == "folded by the tokenizer's normalizer"
    by_reason = keyed["result"].counts["by_reason"]
    assert by_reason["conflicting_labels"] == 2 and by_reason["duplicate"] == 61


def test_policy_quarantines_do_not_count_against_the_gate(keyed):
    """61 duplicates of 195 rows (31%) are above the 0.1 gate, and the run goes on:
    duplicates come from source.deduplicate, a setting the user chose."""
    result = keyed["result"]
    assert result.counts["by_reason"]["duplicate"] / result.counts["input"] > 0.1
    gate = result.dataset.manifest["data_card"]["cleaning"]["quarantine_gate"]
    assert gate["defect_rows"] == 3 and gate["max_quarantined_fraction"] == 0.1  # empty label, the conflict


def test_conflict_key_exact_compares_texts_as_written_and_keeps_the_split(spark):
    from lakefine.prep.prepare import usable_model_dir, usable_rows

    rows = BASE + [("Great Film", "pos"), ("great film", "neg")]
    cfg = config(source=src(), labels={"conflict_key": "exact"})
    cleaned, cleaning = usable_rows(cfg, spark.createDataFrame(rows, SCHEMA), usable_model_dir(cfg))
    assert cleaning["check_key"] == "exact"
    collected = cleaned.collect()
    assert [row.reason for row in collected if row.reason] == []
    # the split key is never folded: each row keeps the split of its text as written
    splits = {row.text: row.split for row in collected}
    expected = {
        row.text: row.split
        for row in assign_split(
            with_key(spark.createDataFrame(rows, SCHEMA).select(F.col("review").alias("text"))), SplitConfig()
        ).collect()
    }
    assert splits == expected


# ------------------------------------------------- reader modes, encodings, mojibake, types


@pytest.mark.parametrize("mode", ["DROPMALFORMED", "failfast", "FailFast"])
def test_a_reader_mode_that_drops_or_stops_is_refused(mode):
    with pytest.raises(ConfigError) as caught:
        config(source={"path": "/Volumes/main/ml/raw/x.csv", "options": {"mode": mode}})
    message = str(caught.value)
    assert "source.options" in message and "PERMISSIVE" in message and "malformed_row" in message
    assert "Remove source.options.mode" in message


def test_json_lines_of_two_types_and_a_broken_line(spark, module_root):
    """JSON numbers in one file, strings in another, one line that is not JSON: Spark
    reads the mixed column as string, the labels are unified, the broken line is counted."""
    good = [json.dumps({"review": f"json review {i}", "sentiment": i % 2}) for i in range(30)]
    strings = [json.dumps({"review": f"json string review {i}", "sentiment": f"{i % 2}.0"}) for i in range(30)]
    folder = write_files(
        module_root,
        "json_types",
        {"a.jsonl": "\n".join(good).encode() + b"\n", "b.jsonl": "\n".join([*strings, "{not json"]).encode() + b"\n"},
    )
    input_rows, usable, by_reason = cleaned_counts(
        module_root, spark, config(source=src(path=folder, format="jsonl", table=None))
    )
    assert input_rows == 61 and by_reason == {"malformed_row": 1}
    assert sorted(usable) == ["0", "1"]


LATIN = ["café crème très bon", "déjà vu à la fenêtre", "naïve façon", "élève à l'hôtel", "noël où"]


@pytest.fixture(scope="module")
def latin1_csv(module_root):
    rows = [(f"plain ascii review {i}", "pos" if i % 2 else "neg") for i in range(60)]
    rows += [(f"{LATIN[i % 5]} {i}", "pos" if i % 2 else "neg") for i in range(20)]  # 25%: above the gate
    return write_files(module_root, "latin1", {"reviews.csv": csv_bytes(rows, encoding="latin-1")})


def test_a_latin1_file_fails_the_gate_naming_its_encoding(spark, module_root, latin1_csv):
    cfg = config(source=src(path=latin1_csv, format="csv", table=None))
    message = expect_error(
        DataError,
        lambda: run_prepare(module_root, spark, cfg),
        "20 of 80 input rows (25.0%) are quarantined for data defects",
        "more than source.max_quarantined_fraction 0.1",
        "invalid_utf8_text: 20 rows, e.g. '",
        "\ufffd",
        "reviews.csv is not UTF-8",
        "set source.options.encoding: ISO-8859-1",
    )
    assert "Traceback" not in message


def test_below_the_gate_the_encoding_hint_is_a_warning(module_root, latin1_csv, capsys):
    from lakefine.prep.diagnose import check_quarantine

    cfg = config(source=src(path=latin1_csv, format="csv", table=None, max_quarantined_fraction=0.5))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAKEFINE_LOCAL_ROOT", str(module_root))
        gate = check_quarantine(cfg, None, 80, {"invalid_utf8_text": 20})  # below the gate: no rows are read
    assert gate == {"max_quarantined_fraction": 0.5, "defect_rows": 20, "defect_fraction": 0.25}
    warning = capsys.readouterr().err
    assert "warning: 20 rows quarantined as invalid_utf8_text: reviews.csv is not UTF-8" in warning
    assert "set source.options.encoding: ISO-8859-1" in warning


def test_the_encoding_the_hint_names_reads_every_row(spark, module_root, latin1_csv):
    options = {"encoding": "ISO-8859-1"}  # what the hint says
    fixed = run_prepare(
        module_root, spark, config(source=src(path=latin1_csv, format="csv", table=None, options=options))
    )
    assert fixed.counts["quarantined"] == 0
    assert any(LATIN[0] in row["text"] for row in published_rows(fixed))


@pytest.mark.parametrize(
    "python_name, java_name",
    [
        ("cp1252", "windows-1252"),
        ("latin_1", "ISO-8859-1"),
        ("iso8859_15", "ISO-8859-15"),
        ("utf_8", "UTF-8"),
        ("cp1251", "windows-1251"),
        ("mac_roman", "x-MacRoman"),
    ],
)
def test_python_codec_names_become_java_charset_names(python_name, java_name):
    from lakefine.prep.diagnose import java_charset

    assert java_charset(python_name) == java_name


def test_cp1252_bytes_are_detected_as_windows_1252_from_a_compressed_file(tmp_path):
    """Curly quotes and dashes (bytes 0x80-0x9F) exist in cp1252 only; the sample is
    read from the decompressed stream."""
    import bz2

    from lakefine.prep.diagnose import detect_encoding, undecodable_sample

    text = "\n".join(["plain line"] * 50 + [f"I can\u2019t \u2014 \u201cgreat\u201d caf\u00e9 {i}" for i in range(30)])
    (tmp_path / "t.csv.bz2").write_bytes(bz2.compress(text.encode("cp1252")))
    sample, _, lines = undecodable_sample(tmp_path)
    assert lines == 30 and detect_encoding(sample) == "cp1252"


MOJIBAKE_FILE_ROWS = [
    ("the price was Â£5 and worth it", "fr\u00e9sh"),
    ("cafÃ© au lait, a warm film", "fr\u00e9sh"),
    ("donâ€™t bother with this one", "neg"),
    ("Ã‰norme, ÃŸ and all", "fr\u00e9sh"),
    ("Ã© Ω Ã© beyond repair", "neg"),  # ftfy cannot fix it whole: quarantined
    ("a fine review", "frÃ©sh"),  # a label with mojibake: repaired like a text
    ("a very long review " + "word " * 400, "neg"),  # 2,019 characters, cut at 500
]


@pytest.fixture(scope="module")
def mojibake_csv(module_root):
    rows = [(f"clean review {i}", "fr\u00e9sh" if i % 2 else "neg") for i in range(60)] + MOJIBAKE_FILE_ROWS
    return write_files(module_root, "mojibake", {"reviews.csv": csv_bytes(rows)})


def test_mojibake_is_repaired_by_default_and_what_ftfy_cannot_fix_is_quarantined(spark, module_root, mojibake_csv):
    cfg = config(source=src(path=mojibake_csv, format="csv", table=None, max_text_chars=500))
    result = run_prepare(module_root, spark, cfg)
    assert_balanced(result)
    assert result.counts["by_reason"] == {"mojibake_text": 1}
    assert spark.read.parquet(result.quarantine_path).first()["text"] == "Ã© Ω Ã© beyond repair"  # as written
    texts = {row["text"]: row["label"] for row in published_rows(result)}
    assert {"the price was £5 and worth it", "café au lait, a warm film", "don’t bother with this one"} <= set(texts)
    assert texts["Énorme, ß and all"] == texts["a fine review"] == "fr\u00e9sh"
    cleaning = result.dataset.manifest["data_card"]["cleaning"]
    assert cleaning["mojibake"] == "repair" and cleaning["repaired_rows"] == 5
    assert cleaning["cut_texts"] == 1 and max(len(t) for t in texts) == 500


def test_mojibake_quarantined_above_the_gate_names_the_repair(spark, module_root, mojibake_csv):
    cfg = config(
        source=src(path=mojibake_csv, format="csv", table=None, mojibake="quarantine", max_quarantined_fraction=0.05)
    )
    expect_error(
        DataError,
        lambda: run_prepare(module_root, spark, cfg),
        "mojibake_text: 5 rows",
        "set source.mojibake: repair",
        "mojibake_label: 1 rows",
    )


@pytest.fixture(scope="module")
def mixed_parquet(module_root):
    import pyarrow as pa
    import pyarrow.parquet as pq

    base = module_root / "Volumes/main/ml/raw/mixed_parquet"
    for name, labels in (
        ("ints", pa.array([i % 2 for i in range(40)], pa.int64())),
        ("strings", pa.array([f"{i % 2}.0" for i in range(40)])),
    ):
        (base / "scalars").mkdir(parents=True, exist_ok=True)
        pq.write_table(
            pa.table({"review": [f"{name} review {i}" for i in range(40)], "sentiment": labels}),
            base / "scalars" / f"{name}.parquet",
        )
    (base / "structs").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"review": ["a", "b"], "sentiment": ["pos", "neg"]}), base / "structs/strings.parquet")
    pq.write_table(pa.table({"review": ["c"], "sentiment": [{"value": "pos"}]}), base / "structs/structs.parquet")
    return "/Volumes/main/ml/raw/mixed_parquet"


def test_parquet_files_with_int_and_string_labels_are_read_as_one_type(spark, module_root, mixed_parquet):
    cfg = config(source=src(path=f"{mixed_parquet}/scalars", format="parquet", table=None))
    input_rows, usable, by_reason = cleaned_counts(module_root, spark, cfg)
    assert input_rows == 80 and by_reason == {}
    assert {label: sum(splits.values()) for label, splits in usable.items()} == {"0": 40, "1": 40}


def test_parquet_files_with_a_struct_and_a_string_column_are_one_clear_error(spark, module_root, mixed_parquet):
    cfg = config(source=src(path=f"{mixed_parquet}/structs", format="parquet", table=None))
    expect_error(
        DataError,
        lambda: run_prepare(module_root, spark, cfg),
        "column 'sentiment' has the types string, struct<value: string> in different files",
        "strings.parquet (string)",
        "structs.parquet (struct<value: string>)",
        "write the files with one type",
    )


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


@pytest.mark.parametrize("gate", [None, 1.0])
def test_every_row_quarantined_is_one_error_with_the_reasons(spark, root, gate):
    """Above the quarantine gate (default 0.1) the gate explains; with the gate open
    (1.0) the check that no usable row is left still stops the run."""
    df = spark.createDataFrame([(f"text {i}", None) for i in range(10)], SCHEMA)
    source = src() if gate is None else src(max_quarantined_fraction=gate)
    fragments = (
        ("10 of 10 input rows (100.0%)", "null_label: 10 rows, e.g. 'text", "source.label_column 'sentiment'")
        if gate is None
        else ("no usable rows", "10 null_label", "check that source.text_column and source.label_column")
    )
    expect_error(DataError, lambda: prepare(config(source=source), spark, df=df), *fragments)


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


# ------------------------------------------------------------------ friendlier edges


def test_the_predict_line_shows_a_command_that_runs_as_printed():
    """`lakefine run` ends with "Predict: <command> predict ...": the command must work
    pasted into a shell where the venv is not activated (a bare `lakefine` did not)."""
    import shlex

    from lakefine.cli import command

    argv = shlex.split(command())
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["PATH"] = "/usr/bin:/bin"  # no venv on the PATH
    result = subprocess.run([*argv, "predict", "--help"], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "label and probabilities" in result.stdout or "--file" in result.stdout


# ------------------------------------------- the sweep: CLI and job scripts, exit 2, clean stderr

# Every bad-input fixture goes through `lakefine prepare` (cli.main) and the bundle's
# prepare task (pipelines/jobs/prepare.py run as __main__); a dataset that is not one
# through `lakefine train` and the finetune task (the evaluate task fails the same way,
# after seconds of creating an MLflow store: left out). All of them run in ONE
# subprocess (one JVM start instead of one per case): the runner points fd 2 at a file
# per case, so each case's stderr is checked on its own; the JVM (and the Python
# workers it forks) write to a file of their own, checked too. ~40-70 s in all here.
SWEEP_RUNNER = r"""
import json, os, runpy, sys, tempfile, time, traceback

from lakefine import cli

def run(kind, argv):
    if kind == "cli":
        return cli.main(argv)
    sys.argv = [kind, *argv]
    try:
        runpy.run_path(kind, run_name="__main__")
    except SystemExit as exit:
        return exit.code
    return 0

def captured(call):
    with tempfile.TemporaryFile() as out:
        sys.stdout.flush(); sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(out.fileno(), 2)
        try:
            code = call()
        except BaseException:
            traceback.print_exc()
            code = "crashed"
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        return code, out.read().decode(errors="replace")

cases, jvm_log = json.loads(sys.argv[1]), sys.argv[2]
from lakefine.prep.session import get_spark
with open(jvm_log, "wb") as log:  # the JVM keeps this file as its stderr
    saved = os.dup(2)
    os.dup2(log.fileno(), 2)
    get_spark("local[2]")
    os.dup2(saved, 2)
results = {}
for case, kind, argv in cases:
    started = time.perf_counter()
    code, stderr = captured(lambda: run(kind, argv))
    results[case] = {"code": code, "stderr": stderr, "seconds": round(time.perf_counter() - started, 2)}
print(json.dumps(results))
"""

SWEEP_CASES = {
    # name: (source section or None for smoke.yaml as it is, overrides, expected fragments)
    "latin1": (
        {"path": "/Volumes/main/ml/raw/latin1/reviews.csv"},
        [],
        ["invalid_utf8_text: 20 rows", "set source.options.encoding: ISO-8859-1"],
    ),
    "mojibake": (
        {"path": "/Volumes/main/ml/raw/mojibake/reviews.csv", "mojibake": "quarantine"},
        ["source.max_quarantined_fraction=0.05"],
        ["mojibake_text: 5 rows", "set source.mojibake: repair"],
    ),
    "malformed": (
        {"path": "/Volumes/main/ml/raw/malformed/reviews.csv"},
        [],
        ["malformed_row: 12 rows", "check sep, quote, escape and multiLine"],
    ),
    "mixed_parquet": (
        {"path": "/Volumes/main/ml/raw/structs", "format": "parquet"},
        [],
        ["column 'sentiment' has the types string, struct<value: string>"],
    ),
    "one_class": ({"path": "/Volumes/main/ml/raw/one_class/reviews.csv"}, [], ["only one class ('pos')"]),
    "empty_file": ({"path": "/Volumes/main/ml/raw/empty/reviews.csv"}, [], ["the files are empty"]),
    "missing_column": (
        {"path": "/Volumes/main/ml/raw/one_class/reviews.csv", "label_column": "sentimnet"},
        [],
        ["Did you mean 'sentiment'?"],
    ),
    "drop_malformed": (
        {"path": "/Volumes/main/ml/raw/malformed/reviews.csv", "options": {"mode": "DROPMALFORMED"}},
        [],
        ["source.options", "Remove source.options.mode"],
    ),
    # smoke.yaml, whose bundled data is not staged here (MiniLM: its tokenizer is in a package)
    "missing_bundled_source": (None, ["model.name_or_path=minilm"], ["`lakefine stage-data rotten_tomatoes`"]),
}


JOBS = {name: str(REPO / f"pipelines/jobs/{name}.py") for name in ("prepare", "finetune")}


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    base = tmp_path_factory.mktemp("sweep")
    root = base / "root"
    latin = [(f"plain ascii review {i}", "pos" if i % 2 else "neg") for i in range(60)]
    latin += [(f"{LATIN[i % 5]} {i}", "pos" if i % 2 else "neg") for i in range(20)]
    write_files(root, "latin1", {"reviews.csv": csv_bytes(latin, encoding="latin-1")})
    clean = [(f"clean review {i}", "fr\u00e9sh" if i % 2 else "neg") for i in range(60)]
    write_files(root, "mojibake", {"reviews.csv": csv_bytes(clean + MOJIBAKE_FILE_ROWS)})
    lines = [f"review {i},{'pos' if i % 2 else 'neg'}".encode() for i in range(60)]
    lines += [f"too,many,fields,{i}".encode() for i in range(12)]
    write_files(root, "malformed", {"reviews.csv": b"\n".join([b"review,sentiment", *lines]) + b"\n"})
    write_files(root, "one_class", {"reviews.csv": csv_bytes([(f"only {i}", "pos") for i in range(30)])})
    write_files(root, "empty", {"reviews.csv": b""})
    import pyarrow as pa
    import pyarrow.parquet as pq

    (root / "Volumes/main/ml/raw/structs").mkdir(parents=True)
    pq.write_table(pa.table({"review": ["a"], "sentiment": ["pos"]}), root / "Volumes/main/ml/raw/structs/a.parquet")
    pq.write_table(
        pa.table({"review": ["b"], "sentiment": [{"value": "pos"}]}), root / "Volumes/main/ml/raw/structs/b.parquet"
    )
    cases = []
    for name, (source, overrides, _) in SWEEP_CASES.items():
        if source is None:
            pipeline = SMOKE
        else:
            pipeline = base / f"{name}.yaml"
            full = {"text_column": "review", "label_column": "sentiment", **source}
            pipeline.write_text(json.dumps({"name": name, "source": full, "model": {"name_or_path": "minilm"}}))
        cases.append((f"{name}|cli", "cli", ["prepare", str(pipeline), *overrides]))
        cases.append((f"{name}|jobs/prepare.py", JOBS["prepare"], ["--pipeline", str(pipeline), *overrides]))
    not_a_dataset = base / "not-a-dataset"
    not_a_dataset.mkdir()
    cases.append(("no_dataset|cli", "cli", ["train", SMOKE, "--dataset", str(not_a_dataset)]))
    cases.append(
        ("no_dataset|jobs/finetune.py", JOBS["finetune"], ["--pipeline", SMOKE, "--dataset", str(not_a_dataset)])
    )
    env = {**os.environ, "LAKEFINE_LOCAL_ROOT": str(root)}
    env.pop("MLFLOW_TRACKING_URI", None)
    jvm_log = base / "jvm.log"
    finished = subprocess.run(
        [sys.executable, "-c", SWEEP_RUNNER, json.dumps(cases), str(jvm_log)],
        env=env,
        cwd=base,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    results = json.loads(finished.stdout.strip().splitlines()[-1])
    print("sweep seconds per case:", {case: result["seconds"] for case, result in results.items()})
    return results, jvm_log.read_text(errors="replace")


SWEEP_IDS = [
    *[f"{name}|{entry}" for name in SWEEP_CASES for entry in ("cli", "jobs/prepare.py")],
    "no_dataset|cli",
    "no_dataset|jobs/finetune.py",
]


@pytest.mark.slow
@pytest.mark.parametrize("case", SWEEP_IDS)
def test_every_bad_input_exits_2_with_one_clear_message(sweep, case):
    results, _ = sweep
    name, entry = case.split("|")
    result = results[case]
    stderr = result["stderr"]
    assert result["code"] == 2, stderr[-3000:]
    assert "Traceback" not in stderr and "Py4J" not in stderr, stderr[-3000:]
    assert stderr.count("lakefine: error:") == 1
    expected = SWEEP_CASES[name][2] if name in SWEEP_CASES else ["is not a complete published dataset"]
    for fragment in expected:
        assert fragment in stderr, f"{fragment!r} not in: {stderr[-3000:]}"


@pytest.mark.slow
def test_the_sweep_jvm_and_its_python_workers_printed_no_traceback(sweep):
    _, jvm = sweep
    assert "Traceback" not in jvm and "Py4J" not in jvm, jvm[-3000:]
