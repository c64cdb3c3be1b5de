"""Scoring back in Spark (``lakefine score``, ``pipeline.score``): the registered model
labels a DataFrame on the workers, with the evaluation's labels, every row accounted
for, and incrementally.

One smoke training for the whole module (registered as ``challenger``); the other task
shapes use tiny untrained model directories (``--model DIR``), compared with the
Predictor on the same rows."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import types as T

from conftest import CONNECT_SESSION, REPO, link_shared, with_smoke_dataset
from lakefine import pipeline
from lakefine.core.config import load_config
from lakefine.core.dataset import PublishedDataset
from lakefine.core.errors import ConfigError, DataError, TrackingError
from lakefine.core.paths import resolve
from lakefine.scoring.frame import LOAD_LOG_ENV, PREDICTION_TYPES
from lakefine.scoring.model import resolve_model
from lakefine.serving.batching import model_batches, padding_efficiency

SMOKE = REPO / "pipelines/smoke.yaml"
LINEAGE = [
    T.StructField("score_error", T.StringType()),
    T.StructField("model_uri", T.StringType()),
    T.StructField("model_version", T.IntegerType()),
    T.StructField("scored_at", T.TimestampType()),
]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, shared_root, smoke_dataset):
    """The smoke pipeline trained once (max_steps 10) in a root of its own: version 1
    of ``smoke_classifier``, alias ``challenger``, no ``champion``."""
    root = link_shared(tmp_path_factory.mktemp("scoring-root"), shared_root)
    with_smoke_dataset(root, smoke_dataset)
    previous = os.environ.get("LAKEFINE_LOCAL_ROOT")
    os.environ["LAKEFINE_LOCAL_ROOT"] = str(root)
    try:
        dataset = root / "Volumes/main/lakefine/prep/datasets/smoke" / smoke_dataset.name
        result = pipeline.train(load_config(SMOKE), str(dataset))
    finally:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        if previous is None:
            os.environ.pop("LAKEFINE_LOCAL_ROOT")
        else:
            os.environ["LAKEFINE_LOCAL_ROOT"] = previous
    return root, dataset, result


@pytest.fixture()
def root(trained, monkeypatch):
    monkeypatch.setenv("LAKEFINE_LOCAL_ROOT", str(trained[0]))
    yield trained[0]
    os.environ.pop("MLFLOW_TRACKING_URI", None)


def schema_of(task: str, input_fields: list) -> T.StructType:
    prediction = T._parse_datatype_string(PREDICTION_TYPES[task])
    return T.StructType([*input_fields, T.StructField("prediction", prediction), *LINEAGE])


def test_the_test_split_scored_in_spark_gets_the_evaluations_labels_and_each_worker_loads_once(
    spark, root, trained, tmp_path, monkeypatch, capsys
):
    _, dataset, result = trained
    test = PublishedDataset.open(dataset).load()["test"]
    import mlflow

    evaluated = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="test_predictions.json")
        ).read_text()
    )
    assert [int(h) for h in test["row_hash"]] == evaluated["row_hash"]  # the same rows, in the same order
    rows = list(enumerate(test["text"])) + [(-1, None), (-2, ""), (-3, "   ")]  # a null, an empty, a blank text
    df = spark.createDataFrame(rows, "i long, text string").repartition(4)
    loads = tmp_path / "loads.jsonl"
    monkeypatch.setenv(LOAD_LOG_ENV, str(loads))

    scored = pipeline.score(load_config(SMOKE), spark, df=df)
    assert "has no champion yet: scoring the challenger, version 1" in capsys.readouterr().err
    fields = [T.StructField("i", T.LongType()), T.StructField("text", T.StringType())]
    assert scored.schema.simpleString() == schema_of("classification", fields).simpleString()
    collected = scored.collect()
    out = {r["i"]: r for r in collected}
    assert len(collected) == len(out) == len(rows)  # rows out = rows in

    from lakefine.serving.predictor import Predictor

    labels = ["fresh", "rotten"]
    own = Predictor.from_directory(Path(result.model_dir)).predict(list(test["text"]), batch_size=64)
    for i, (label_id, probabilities) in enumerate(zip(evaluated["predicted"], evaluated["probabilities"])):
        prediction = out[i]["prediction"]
        assert prediction["label_id"] == label_id and prediction["label"] == labels[label_id], i
        got = np.array([prediction["probabilities"][label] for label in labels])
        # The saved model's own probabilities within 1e-5. Training's logged ones differ
        # from the saved model's by up to ~7e-5 even one row at a time (as in test_pipeline).
        assert np.abs(got - [own[i]["probabilities"][label] for label in labels]).max() < 1e-5
        assert np.abs(got - np.array(probabilities)).max() < 1e-4
        assert prediction["score"] == got.max() and out[i]["score_error"] is None
    assert {out[-1]["score_error"], out[-2]["score_error"], out[-3]["score_error"]} == {
        "'text' is null",
        "'text' is empty",
    }
    assert all(out[h]["prediction"] is None for h in (-1, -2, -3))
    assert {(r["model_uri"], r["model_version"]) for r in out.values()} == {("models:/smoke_classifier@challenger", 1)}

    pids = [json.loads(line)["pid"] for line in loads.read_text().splitlines()]
    assert len(set(pids)) >= 2, pids  # two Python workers scored the 4 partitions...
    assert len(pids) == len(set(pids)), pids  # ...and each loaded the model exactly once


def test_the_champion_is_scored_when_there_is_one(root, capsys):
    import mlflow

    config = load_config(SMOKE)
    resolve_model(config)  # sets up the tracking store
    client = mlflow.tracking.MlflowClient()
    client.set_registered_model_alias("smoke_classifier", "champion", "1")
    capsys.readouterr()
    try:
        model = resolve_model(config)
    finally:
        client.delete_registered_model_alias("smoke_classifier", "champion")
    assert (model.uri, model.version, model.task) == ("models:/smoke_classifier@champion", 1, "classification")
    assert "no champion" not in capsys.readouterr().err
    # the workers' copy, keyed by version: one model directory next to the MLflow model's metadata
    assert (Path(model.path) / "config.json").is_file() and (Path(model.path) / "tokenizer.json").is_file()
    assert (Path(model.path).parent / "MLmodel").is_file() and Path(model.path).parent.name == "v1"

    with pytest.raises(TrackingError) as missing:
        resolve_model(load_config(SMOKE, ["tracking.registered_model=nobody"]))
    assert "'nobody' has neither a 'champion' nor a 'challenger' alias" in str(missing.value)


@pytest.fixture(scope="module")
def shape_models(trained, tmp_path_factory, tiny_model):
    """Untrained tiny models of the other task shapes, as save_pretrained directories."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lakefine.core.assets import TINY_T5
    from lakefine.core.assets import resolve_model as resolve_alias

    base = tmp_path_factory.mktemp("shape-models")
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    tokenizer.model_max_length = 24
    labels = ["DESC", "DESC:manner", "NUM"]
    multi = AutoModelForSequenceClassification.from_pretrained(
        tiny_model,
        num_labels=3,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        problem_type="multi_label_classification",
    )
    multi.config.lakefine_threshold = 0.5
    multi.save_pretrained(base / "multi")
    tokenizer.save_pretrained(base / "multi")
    t5 = base / "t5"
    shutil.copytree(resolve_alias(TINY_T5, str(trained[0])), t5)
    return {"multi_label": base / "multi", "seq2seq": t5, "pair_classification": Path(trained[2].model_dir)}


@pytest.mark.parametrize("task", ["pair_classification", "multi_label", "seq2seq"])
def test_each_task_shape_has_its_output_schema_and_the_predictors_predictions(spark, root, shape_models, task):
    from lakefine.serving.predictor import Predictor

    texts = [f"what is the {w} of a short review number {i}" for i, w in enumerate(["fun", "cost", "pace"] * 4)]
    pairs = [t[::-1] for t in texts]
    rows = [(i, t, p) for i, (t, p) in enumerate(zip(texts, pairs))] + [(99, None, "x"), (98, "y", "")]
    df = spark.createDataFrame(rows, "id int, q string, ctx string")
    overrides = ["source.text_column=q", "score.batch_rows=1" if task == "seq2seq" else "score.batch_rows=5"]
    if task != "multi_label":
        overrides.append("source.text_pair_column=ctx")
    config = load_config(SMOKE, [f"task={task}", *overrides])
    scored = pipeline.score(config, spark, df=df, model_uri=str(shape_models[task]))
    fields = [
        T.StructField("id", T.IntegerType()),
        T.StructField("q", T.StringType()),
        T.StructField("ctx", T.StringType()),
    ]
    assert scored.schema.simpleString() == schema_of(task, fields).simpleString()
    out = {r["id"]: r for r in scored.collect()}
    assert len(out) == len(rows)

    with_pairs = task != "multi_label"
    predicted = Predictor.load(str(shape_models[task])).predict(texts, pairs if with_pairs else None, batch_size=1)
    for i, expected in enumerate(predicted):
        got = out[i]["prediction"]
        if task == "seq2seq":
            assert got["answer"] == expected["answer"]
            continue
        assert np.allclose(
            [got["probabilities"][k] for k in expected["probabilities"]],
            list(expected["probabilities"].values()),
            atol=1e-5,
        )
        if task == "multi_label":
            assert got["labels"] == expected["labels"]
        else:
            assert (got["label"], got["label_id"]) == (expected["label"], expected["label_id"])
    assert out[99]["prediction"] is None and out[99]["score_error"] == "'q' is null"
    if with_pairs:
        assert out[98]["prediction"] is None and out[98]["score_error"] == "'ctx' is empty"
    else:
        assert out[98]["score_error"] is None and out[98]["prediction"] is not None
    assert out[0]["model_uri"] == str(shape_models[task]) and out[0]["model_version"] is None


def test_a_missing_text_column_or_a_taken_output_column_is_one_clear_error(spark, root, shape_models):
    config = load_config(SMOKE, ["task=pair_classification", "source.text_pair_column=other"])
    df = spark.createDataFrame([("a", "b")], "txt string, other string")
    with pytest.raises(DataError) as missing:
        pipeline.score(config, spark, df=df, model_uri=str(shape_models["pair_classification"]))
    assert str(missing.value).startswith("source.text_column: column 'text' is not in the input. Did you mean 'txt'?")
    assert "source.text_column=<column>" in str(missing.value)
    scored_twice = spark.createDataFrame([("a", "b", "x")], "text string, other string, prediction string")
    with pytest.raises(DataError, match="already has the column\\(s\\) prediction"):
        pipeline.score(config, spark, df=scored_twice, model_uri=str(shape_models["pair_classification"]))


def test_model_batches_are_sorted_by_length_and_capped_by_rows_and_tokens():
    lengths = [5, 40, 3, 40, 7, 100, 6, 2]
    batches = model_batches(lengths, max_rows=3, max_tokens=90)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))  # every row once
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(lengths)  # ascending token length
    assert all(len(b) <= 3 for b in batches)
    assert all(len(b) * max(lengths[i] for i in b) <= 90 for b in batches if len(b) > 1)
    # [2,3,5] (rows cap) [6,7] (a third row of 40 would pad to 120 tokens) [40,40] [100]
    assert [[lengths[i] for i in b] for b in batches] == [[2, 3, 5], [6, 7], [40, 40], [100]]
    assert padding_efficiency(lengths, batches) == pytest.approx(sum(lengths) / (3 * 5 + 2 * 7 + 2 * 40 + 100))


@pytest.mark.parametrize("task", ["multi_label", "seq2seq"])
def test_the_predictor_pads_each_batch_to_its_longest_row_and_answers_in_the_rows_order(shape_models, task):
    """Rows are tokenized once, sorted by token length and cut into batches: each batch
    the model sees is as wide as its own longest row, the widths ascend, and the
    answers come back in the rows' order, equal to predicting each row alone."""
    from lakefine.serving.predictor import Predictor

    predictor = Predictor.load(str(shape_models[task]))
    words = "the plot moves at a fine pace and the cast is good in every scene".split()
    # 11 different texts of 1 to 11 words, out of length order
    texts = [" ".join(words[(i + k) % len(words)] for k in range(1 + (7 * i) % 11)) for i in range(11)]
    widths = []  # the padded width of every batch the model (the encoder, for seq2seq) is given
    module = predictor.model.get_encoder() if task == "seq2seq" else predictor.model
    hook = module.register_forward_pre_hook(
        lambda _module, _args, kwargs: widths.append(kwargs["input_ids"].shape[1]), with_kwargs=True
    )
    try:
        alone = [predictor.predict([text], batch_size=1)[0] for text in texts]
        lengths, widths[:] = list(widths), []  # a batch of one row is as wide as the row
        batched = predictor.predict(texts, batch_size=4)
    finally:
        hook.remove()
    assert len(lengths) == len(texts) and lengths != sorted(lengths)  # the input order is not the length order
    ascending = sorted(lengths)
    assert widths == [max(ascending[start : start + 4]) for start in range(0, len(texts), 4)]
    if task == "seq2seq":
        assert len({p["answer"] for p in alone}) > 2  # rows answered in the wrong order would show
        assert [p["answer"] for p in batched] == [p["answer"] for p in alone]
    else:
        alone_probs = np.array([list(p["probabilities"].values()) for p in alone])
        # the untrained model's rows differ by ~5e-5, batching changes them by ~1e-9
        assert np.ptp(alone_probs, axis=0).max() > 1e-5
        assert np.allclose([list(p["probabilities"].values()) for p in batched], alone_probs, rtol=0, atol=1e-7)


def write_files(spark, location: Path, start: int, files: int, per_file: int = 5) -> None:
    rows = [(i, f"review {i}: {'good' if i % 2 else 'bad'} film") for i in range(start, start + files * per_file)]
    rows[0] = (start, None)  # a null text in every batch of files: scored as an error, not lost
    spark.createDataFrame(rows, "id int, text string").repartition(files).write.mode("append").parquet(str(location))


def test_incremental_scores_only_new_files_and_every_row_once(spark, root, trained):
    model_dir = trained[2].model_dir
    source = "/Volumes/main/lakefine/raw/score_incremental"
    output = "/Volumes/main/lakefine/prep/scores/incremental"
    config = load_config(SMOKE, ["score.max_files_per_trigger=1"])
    write_files(spark, resolve(source), 0, files=2)
    kwargs = {"input_path": source, "output_path": output, "incremental": True, "model_uri": model_dir}

    first = pipeline.score_and_write(config, spark=spark, **kwargs)
    assert (first["rows_in"], first["rows_out"], first["micro_batches"]) == (10, 10, 2)
    assert first["score_errors"] == {"'text' is null": 1}
    write_files(spark, resolve(source), 100, files=1)
    second = pipeline.score_and_write(config, spark=spark, **kwargs)
    assert (second["rows_in"], second["rows_out"], second["output_rows_total"]) == (5, 5, 15)
    assert second["score_errors"] == {"'text' is null": 1}
    third = pipeline.score_and_write(config, spark=spark, **kwargs)
    assert (third["rows_in"], third["rows_out"]) == (0, 0)

    ids = [r["id"] for r in spark.read.parquet(str(resolve(output))).select("id").collect()]
    assert sorted(ids) == list(range(10)) + list(range(100, 105))  # every input row exactly once


def test_sql_input_cannot_be_incremental_and_the_cli_says_so(root):
    env = {**os.environ, "LAKEFINE_LOCAL_ROOT": str(root)}
    done = subprocess.run(
        [sys.executable, "-m", "lakefine.cli", "score", str(SMOKE), "--input-sql", "SELECT 'a' AS text"]
        + ["--incremental", "--output-path", "/Volumes/main/lakefine/prep/scores/sql"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "--incremental: --input-sql cannot be read as a stream" in done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(ConfigError, match="exactly one of --output-table"):
        pipeline.score_and_write(load_config(SMOKE))


@pytest.mark.slow
def test_incremental_is_exactly_once_when_the_run_is_killed_after_a_batch_commits(spark, root, trained):
    """``maxFilesPerTrigger=1``: the CLI run is SIGKILLed (driver and JVM) right after its
    first micro-batch commits; the rerun finishes the rest. Counted through a Spark
    read of the sink (its metadata log), not raw files: every input row exactly once."""
    import signal
    import time

    from lakefine.scoring.sink import Output, checkpoint_dir

    source, output = "/Volumes/main/lakefine/raw/score_killed", "/Volumes/main/lakefine/prep/scores/killed"
    write_files(spark, resolve(source), 0, files=8, per_file=60)
    overrides = ["score.max_files_per_trigger=1"]
    config = load_config(SMOKE, overrides)
    commits = checkpoint_dir(config, source, Output(None, output)) / "commits"
    args = ["score", str(SMOKE), *overrides, "--input-path", source, "--output-path", output, "--incremental"]
    args += ["--model", trained[2].model_dir]
    env = {**os.environ, "LAKEFINE_LOCAL_ROOT": str(root), "PYSPARK_PYTHON": sys.executable}
    killed = subprocess.Popen(
        [sys.executable, "-m", "lakefine.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the JVM and the Python workers die with it
    )
    try:
        deadline = time.monotonic() + 300
        while not (commits / "0").is_file() and killed.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(killed.pid, signal.SIGKILL)
    finally:
        killed.wait()
    assert (commits / "0").is_file(), "the first micro-batch never committed"
    committed = len([p for p in commits.iterdir() if p.name.isdigit()])
    assert committed < 8, "the run finished before the kill: nothing was interrupted"

    rerun = pipeline.score_and_write(
        config, spark=spark, input_path=source, output_path=output, incremental=True, model_uri=trained[2].model_dir
    )
    assert rerun["rows_in"] == rerun["rows_out"] == 480 - rerun["output_rows_total"] + rerun["rows_out"]
    ids = [r["id"] for r in spark.read.parquet(str(resolve(output))).select("id").collect()]
    assert sorted(ids) == list(range(480))  # every input row exactly once, none twice


CONNECT_SIDE = (
    CONNECT_SESSION
    + r"""
import json, sys
from lakefine import pipeline
from lakefine.core.config import load_config
from lakefine.core.session import session_kind

try:
    assert session_kind(spark) == "connect", type(spark)
    source, output = sys.argv[1], sys.argv[2]
    config = load_config(sys.argv[3])
    schema = pipeline.score(config, spark, input_path=source).schema.simpleString()
    summary = pipeline.score_and_write(config, spark=spark, input_path=source, output_path=output)
    print(json.dumps({"schema": schema, **summary}, default=str))
finally:
    spark.stop()
"""
)


@pytest.mark.slow
def test_scoring_runs_on_spark_connect(spark, root, trained, tmp_path):
    """The registered challenger on a local Spark Connect session (no sparkContext, no
    RDD): the same schema, every row, the same labels as the classic session."""
    source, output = "/Volumes/main/lakefine/raw/score_connect", "/Volumes/main/lakefine/prep/scores/connect"
    write_files(spark, resolve(source), 0, files=3, per_file=20)
    env = {**os.environ, "LAKEFINE_LOCAL_ROOT": str(root), "PYSPARK_PYTHON": sys.executable}
    env.update(SPARK_LOCAL_IP="127.0.0.1", OMP_NUM_THREADS="1")
    env.pop("SPARK_REMOTE", None)
    log = tmp_path / "connect-side.log"
    with open(log, "w") as stderr:
        done = subprocess.run(
            [sys.executable, "-c", CONNECT_SIDE, source, output, str(SMOKE)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=400,
        )
    assert done.returncode == 0, log.read_text()[-4000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["rows_in"], summary["rows_out"], summary["score_errors"]) == (60, 60, {"'text' is null": 1})
    assert summary["model_uri"] == "models:/smoke_classifier@challenger" and summary["model_version"] == 1
    assert summary["schema"].startswith("struct<id:int,text:string,prediction:struct<label:string,label_id:int,")

    from_connect = {r["id"]: r["prediction"] for r in spark.read.parquet(str(resolve(output))).collect()}
    classic = pipeline.score(load_config(SMOKE), spark, input_path=source).collect()
    assert {r["id"]: r["prediction"] for r in classic} == from_connect
