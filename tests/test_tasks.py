"""Every task shape from a pipeline YAML, end to end on tiny models: sentence pairs,
multi-label, seq2seq (T5 and an encoder-decoder), class weights, hub datasets.
Predictions from each model reloaded from MLflow must match its evaluation on every
test row. No MRPC or SQuAD data is reachable offline: the pair task uses real Rotten
Tomatoes reviews paired as "same sentiment?", the seq2seq task real TREC questions."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from lakefine import pipeline
from lakefine.core.config import load_config
from lakefine.core.dataset import PublishedDataset
from lakefine.core.errors import ConfigError, DataError
from lakefine.serving.predictor import Predictor


@pytest.fixture(scope="module")
def staged(shared_root):
    from lakefine.core.assets import stage_dataset

    for name in ("rt_sentiment_pairs", "trec_questions", "sms_spam"):
        stage_dataset(name, str(shared_root))
    return shared_root


def config_of(name, *overrides):
    return load_config(
        REPO / "pipelines" / f"{name}.yaml",
        ["train.max_steps=4", "train.batch_size=8", "train.logging_steps=2", *overrides],
    )


def evaluate_agrees_with_training(config, summary) -> dict:
    """`lakefine evaluate`'s function on the registered challenger: the dataset its run
    was trained on, and exactly the test numbers training reported."""
    result = pipeline.evaluate(config)
    assert result["dataset_key"] == summary["prepare"]["key"]
    assert result["rows"] == summary["prepare"]["splits"]["test"]
    trained = summary["train"]["metrics"]
    assert result["metrics"], result
    for name, value in result["metrics"].items():
        assert value == pytest.approx(trained[f"test_{name}"], abs=1e-12), name
    return result


def evaluated(summary) -> dict:
    import mlflow

    path = mlflow.artifacts.download_artifacts(run_id=summary["train"]["run_id"], artifact_path="test_predictions.json")
    return json.loads(Path(path).read_text())


def training_tokenizer(dataset: PublishedDataset):
    """The tokenizer training loads (AutoTokenizer, model_max_length = max_length)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(dataset.manifest["model_dir"])
    tokenizer.model_max_length = int(dataset.manifest["max_length"])
    return tokenizer


def assert_published_ids_are_trainings(dataset: PublishedDataset, config) -> dict:
    """On every row of every split, the ids prepare made in Spark are exactly what the
    training side's tokenizer call made before the ids moved to Spark: written out
    here with transformers, not through lakefine's encoding."""
    tokenizer, manifest = training_tokenizer(dataset), dataset.manifest
    max_length = int(manifest["max_length"])
    cut = 0
    for split in dataset.load().values():
        rows = split.to_dict()
        pairs = rows.get("text_pair")
        if config.task == "seq2seq":
            seq = config.seq2seq
            questions = [seq.question_prefix + q for q in rows["text"]]
            if pairs is not None:
                contexts = [seq.context_prefix + c for c in pairs]
                expected = tokenizer(
                    questions, contexts, truncation="only_second", max_length=max_length, return_token_type_ids=False
                )
            else:
                expected = tokenizer(questions, truncation=True, max_length=max_length, return_token_type_ids=False)
            labels = tokenizer(
                text_target=rows["target"],
                max_length=int(manifest["target_max_length"]),
                truncation=True,
                return_token_type_ids=False,
            )["input_ids"]
            assert rows["labels"] == labels
        else:
            expected = tokenizer(rows["text"], pairs, truncation=True, max_length=max_length)
        assert rows["input_ids"] == expected["input_ids"]
        assert rows["length"] == [len(ids) for ids in expected["input_ids"]]
        if pairs is not None and config.task != "seq2seq":
            assert rows["token_type_ids"] == expected["token_type_ids"]
        else:  # single texts: all zeros, the model's default, so not stored
            assert "token_type_ids" not in rows
            assert all(not any(types) for types in expected.get("token_type_ids", []))
        assert "attention_mask" not in rows  # the collator builds it
        cut += sum(length == max_length for length in rows["length"])
    assert cut > 0  # some rows are truncated: the truncation is checked, not only the vocabulary
    return manifest["tokenized"]


def test_single_texts_carry_the_ids_training_made(smoke_dataset):
    from lakefine.core.config import load_config

    recorded = assert_published_ids_are_trainings(
        PublishedDataset.open(smoke_dataset), load_config(REPO / "pipelines/smoke.yaml")
    )
    assert recorded["columns"] == ["input_ids", "length"] and recorded["truncation"] == "longest_first"


def test_length_grouped_batches_come_from_the_published_lengths_and_evaluation_reads_rows_by_length(
    smoke_dataset, tmp_path
):
    """The sampler reads the published ``length`` column as a list (transformers' own
    decodes every row's ids again, the column being dropped before it sees the split),
    and yields exactly the batches transformers' sampler would, for the same seed. The
    Trainer evaluates the validation rows in ascending length (its loader reads them in
    order and pads each batch to its longest row): the same rows, sorted."""
    import torch
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from lakefine.core.config import load_config
    from lakefine.training.classification import build_trainer

    trainer, tokenized = build_trainer(
        load_config(REPO / "pipelines/smoke.yaml"), PublishedDataset.open(smoke_dataset), tmp_path
    )
    train = tokenized["train"]
    assert train["length"][:] == [len(ids) for ids in train["input_ids"]]  # the lengths upstream would measure
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler.lengths, list) and len(sampler.lengths) == len(train)
    # what transformers hands its own sampler: the split without the columns the model does not take
    pruned = trainer._remove_unused_columns(train, description="training")
    assert "length" not in pruned.column_names
    batch = trainer.args.train_batch_size * trainer.args.gradient_accumulation_steps
    torch.manual_seed(7)
    ours = list(sampler)
    torch.manual_seed(7)
    assert ours == list(LengthGroupedSampler(batch, dataset=pruned, model_input_name="input_ids"))
    assert sorted(ours) == list(range(len(train)))

    published, evaluated = tokenized["validation"], trainer.eval_dataset
    assert published["length"][:] != sorted(published["length"][:])  # not sorted already
    assert evaluated["length"][:] == sorted(published["length"][:])
    assert sorted(map(tuple, evaluated["input_ids"])) == sorted(map(tuple, published["input_ids"]))


def test_training_reads_the_ids_and_tokenizes_only_a_dataset_without_matching_ones(smoke_dataset, tmp_path, capsys):
    """No tokenize stage for a dataset that carries the ids; a dataset from an older
    lakefine (no ids recorded) is tokenized on the driver into the same ids; a tokenizer
    that is not the one the ids came from (an added token) is noticed and used."""
    import shutil

    from lakefine.core.config import load_config
    from lakefine.training.common import encoding_for, load_tokenizer, model_inputs

    config = load_config(REPO / "pipelines/smoke.yaml")
    shutil.copytree(smoke_dataset, tmp_path / "copy", ignore=shutil.ignore_patterns("tokenized"))
    published = PublishedDataset.open(tmp_path / "copy")
    tokenizer = load_tokenizer(published.manifest["model_dir"], int(published.manifest["max_length"]))
    ids = list(published.load()["train"]["input_ids"])

    def inputs(dataset):
        data = dataset.load()
        return model_inputs(data, tokenizer, dataset, encoding_for(config, dataset, tokenizer, data))

    ready = inputs(published)
    assert sorted(ready["train"].column_names) == ["input_ids", "label", "length"]
    assert list(ready["train"]["input_ids"]) == ids and not (published.path / "tokenized").exists()

    older = PublishedDataset(published.path, {k: v for k, v in published.manifest.items() if k != "tokenized"})
    tokenized = inputs(older)
    assert "carries no token ids" in capsys.readouterr().err
    assert list(tokenized["train"]["input_ids"]) == ids and (published.path / "tokenized").is_dir()

    tokenizer.add_tokens(["the film"])  # e.g. added tokens transformers applies over tokenizer.json
    retokenized = inputs(published)
    assert "are not this tokenizer's" in capsys.readouterr().err
    film = tokenizer.convert_tokens_to_ids("the film")
    assert any(film in row for row in retokenized["train"]["input_ids"]) and not any(film in row for row in ids)


def test_sentence_pairs_are_tokenized_as_pairs_and_reload_identically(staged, local_root, spark):
    config = config_of("rt_sentiment_pairs", "model.name_or_path=tiny-random-bert")
    summary = pipeline.run(config, spark)
    dataset = PublishedDataset.open(summary["prepare"]["dataset"])
    test = dataset.load()["test"]
    assert set(test.column_names) >= {"text", "text_pair", "label", "input_ids", "token_type_ids", "length"}
    assert all(0 in t and 1 in t for t in test["token_type_ids"][:50])  # first and second sentence
    assert assert_published_ids_are_trainings(dataset, config)["truncation"] == "longest_first"
    assert not (dataset.path / "tokenized").exists()  # training read the ids: no tokenize stage
    assert {"test_accuracy", "test_f1"} <= set(summary["train"]["metrics"])

    saved = evaluated(summary)
    predicted = Predictor.load(summary["train"]["registered_uri"]).predict(test["text"], test["text_pair"])
    assert [p["label_id"] for p in predicted] == saved["predicted"]
    probs = np.array([list(p["probabilities"].values()) for p in predicted])
    assert np.abs(probs - np.array(saved["probabilities"])).max() < 1e-4
    evaluate_agrees_with_training(config, summary)


def loss_on_a_fixed_batch(config, dataset, class_weighting: str, output_dir: Path, head_bias="label_priors"):
    """The Trainer's loss, the model's logits, the labels and the model, on the first 32
    train rows with ``train.class_weights=class_weighting`` (and ``train.head_bias``),
    from the same initial weights each time."""
    import torch
    from transformers import set_seed

    from lakefine.training.classification import build_trainer

    set_seed(0)
    train = config.train.model_copy(update={"class_weights": class_weighting, "head_bias": head_bias})
    trainer, tokenized = build_trainer(
        config.model_copy(update={"train": train}), dataset, output_dir / f"{class_weighting}-{head_bias}"
    )
    rows = tokenized["train"].select(range(32))
    inputs = [c for c in ("input_ids", "attention_mask", "token_type_ids") if c in rows.column_names]
    batch = trainer.data_collator([{**{c: r[c] for c in inputs}, "labels": r["label"]} for r in rows])
    trainer.model.eval()
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, dict(batch)).item()
        logits = trainer.model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    return loss, logits, batch["labels"], trainer.model


def test_multi_label_discovers_exploded_labels_and_predicts_label_sets(staged, local_root, spark, tmp_path):
    config = config_of("trec_multilabel", "model.name_or_path=tiny-random-bert", "labels.min_positives=3")
    summary = pipeline.run(config, spark)
    labels = summary["prepare"]["labels"]
    assert "DESC" in labels and "DESC:manner" in labels
    card = summary["prepare"]["data_card"]["label_counts"]
    assert card["DESC"]["train"] >= card["DESC:manner"]["train"] > 0
    test = PublishedDataset.open(summary["prepare"]["dataset"]).load()["test"]
    assert all(sum(vector) == 2 for vector in test["label"])  # a coarse and a fine type each
    assert_published_ids_are_trainings(PublishedDataset.open(summary["prepare"]["dataset"]), config)
    assert {"test_f1_micro", "test_f1_macro"} <= set(summary["train"]["metrics"])

    saved = evaluated(summary)
    predictor = Predictor.load(summary["train"]["registered_uri"])
    assert predictor.model.config.problem_type == "multi_label_classification"
    predicted = predictor.predict(test["text"])
    probs = np.array([[p["probabilities"][label] for label in labels] for p in predicted])
    assert np.abs(probs - np.array(saved["probabilities"])).max() < 1e-4
    chosen = [[int(label in p["labels"]) for label in labels] for p in predicted]
    assert chosen == saved["predicted"]
    evaluate_agrees_with_training(config, summary)

    # Per-label thresholds fitted on validation, saved next to the model; lakefine's
    # pyfunc (the registered model) applies them, so its label sets are evaluation's.
    import mlflow
    import pandas as pd

    settings = json.loads((Path(summary["train"]["model_dir"]) / "lakefine_model.json").read_text())
    assert settings["labels"] == labels and len(settings["thresholds"]) == len(labels)
    validation = PublishedDataset.open(summary["prepare"]["dataset"]).load()["validation"]
    positives = np.asarray(validation["label"]).sum(axis=0)
    # tuned exactly for the labels with enough validation positives; the rest keep the global one
    assert settings["thresholds_tuned"] == [bool(n >= 3) for n in positives]
    untuned = [t for t, ok in zip(settings["thresholds"], settings["thresholds_tuned"]) if not ok]
    assert untuned and all(t == 0.5 for t in untuned)
    assert any(t != 0.5 for t, ok in zip(settings["thresholds"], settings["thresholds_tuned"]) if ok)

    model = mlflow.pyfunc.load_model(summary["train"]["registered_uri"])
    test = PublishedDataset.open(summary["prepare"]["dataset"]).load()["test"]
    answers = model.predict(pd.DataFrame({"text": test["text"]}))
    chosen = [[int(label in a["labels"]) for label in labels] for a in answers]
    assert chosen == evaluated(summary)["predicted"]
    thresholds = np.asarray(settings["thresholds"])
    probs = np.array([[a["probabilities"][label] for label in labels] for a in answers])
    assert chosen == (probs >= thresholds).astype(int).tolist()

    # train.class_weights=balanced: BCE with a pos_weight per label, sqrt(negatives /
    # positives) over the train split from the Spark label counts, capped.
    import torch

    from lakefine.core.labels import LabelMap
    from lakefine.training.classification import MAX_POS_WEIGHT, positive_weights

    published = PublishedDataset.open(summary["prepare"]["dataset"])
    train_rows = published.split_rows["train"]
    weights = positive_weights(card, LabelMap.from_json(published.manifest["label_map"]), train_rows)
    for label in ("DESC", "DESC:manner"):
        positives = card[label]["train"]
        expected = min(MAX_POS_WEIGHT, ((train_rows - positives) / positives) ** 0.5)
        assert weights[labels.index(label)] == pytest.approx(expected)
    weighted, logits, truth, built = loss_on_a_fixed_batch(config, published, "balanced", tmp_path)
    unweighted, same_logits, _, _ = loss_on_a_fixed_batch(config, published, "none", tmp_path)
    assert torch.equal(logits, same_logits) and truth.dtype.is_floating_point
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    assert weighted == pytest.approx(bce(logits, truth, pos_weight=torch.tensor(weights)).item(), rel=1e-5)
    assert unweighted == pytest.approx(bce(logits, truth).item(), rel=1e-5)
    assert weighted - unweighted > 1e-3

    # train.head_bias=label_priors (the default): each output starts at the log-odds of
    # its label's share of the train rows, so the untrained model already says "no" to
    # the rare labels: its loss is far below a head started at the model's own init.
    from lakefine.evaluation.calibrate import classifier_head

    share = {label: (card[label].get("train", 0) + 0.5) / (train_rows + 1) for label in labels}
    first_bias = classifier_head(built).bias.tolist()
    assert first_bias == pytest.approx([np.log(share[label] / (1 - share[label])) for label in labels], abs=1e-6)
    at_priors = torch.sigmoid(logits).mean(axis=0).numpy()
    assert at_priors == pytest.approx([share[label] for label in labels], abs=0.05)
    from_model, *_ = loss_on_a_fixed_batch(config, published, "none", tmp_path, head_bias="model")
    assert unweighted < from_model / 3, (unweighted, from_model)


def test_seq2seq_t5_generates_what_evaluation_generated(staged, local_root, spark):
    config = config_of("trec_answer_type", "model.name_or_path=tiny-random-t5")
    summary = pipeline.run(config, spark)
    metrics = summary["train"]["metrics"]
    assert {"test_exact_match", "test_f1"} <= set(metrics)
    manifest = PublishedDataset.open(summary["prepare"]["dataset"]).manifest
    assert manifest["label_map"] is None and manifest["target_max_length"] <= 8
    test = PublishedDataset.open(summary["prepare"]["dataset"]).load()["test"]
    assert set(test["target"]) <= {"abbreviation", "description", "entity", "human", "location", "number"}
    assert_published_ids_are_trainings(PublishedDataset.open(summary["prepare"]["dataset"]), config)

    saved = evaluated(summary)
    predictor = Predictor.load(summary["train"]["registered_uri"])
    assert type(predictor.model).__name__ == "T5ForConditionalGeneration"
    # The same batches as evaluation (eval_batch_size): a random tiny model's logits are
    # near ties, so even padding noise could flip a token; a trained model is not so fragile.
    answers = [p["answer"] for p in predictor.predict(test["text"], batch_size=64)]
    assert answers == saved["predicted"]
    evaluate_agrees_with_training(config, summary)


def test_seq2seq_contexts_are_cut_in_spark_and_questions_never_are(staged, local_root, spark):
    """A question with a long context (QA shape), max_length far below the pairs'
    length: only the context loses tokens, the prefixes are in the ids; the targets
    (5 tokens) are cut at seq2seq.max_target_length."""
    rows = [
        (
            f"what is item {i} called" + " in the long list of things we keep" * (i % 2),  # long questions too
            " ".join(["the context goes on and on"] * (2 + i % 9)),
            f"the name {i % 5}",
        )
        for i in range(60)
    ]
    df = spark.createDataFrame(rows, "question string, context string, answer_type string")
    config = config_of(
        "trec_answer_type",
        "model.name_or_path=tiny-random-t5",
        "source.text_pair_column=context",
        "seq2seq.question_prefix='question: '",
        "seq2seq.context_prefix='context: '",
        "model.max_length=24",
        "seq2seq.max_target_length=4",
    )
    dataset = pipeline.prepare(config, spark, df=df).dataset
    recorded = assert_published_ids_are_trainings(dataset, config)
    assert recorded["truncation"] == "only_second" and recorded["columns"] == ["input_ids", "labels", "length"]
    assert recorded["target_max_length"] == 4 and {len(ids) for ids in dataset.load()["train"]["labels"]} == {4}


def test_context_is_truncated_and_the_question_never_is(tiny_model):
    from transformers import AutoTokenizer

    from lakefine.serving.text2text import encoder_inputs

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    settings = {"question_prefix": "question: ", "context_prefix": "context: "}
    question = "who painted the ceiling of the sistine chapel"
    encoded = encoder_inputs(tokenizer, [question], ["filler words " * 200], settings, max_length=32)
    text = tokenizer.decode(encoded["input_ids"][0])
    assert len(encoded["input_ids"][0]) == 32 and question in text and "token_type_ids" not in encoded


def test_label_padding_becomes_minus_100(tiny_model):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, DataCollatorForSeq2Seq

    from lakefine.core.assets import TINY_T5, resolve_model

    t5 = resolve_model(TINY_T5)
    tokenizer = AutoTokenizer.from_pretrained(t5)
    collate = DataCollatorForSeq2Seq(
        tokenizer, model=AutoModelForSeq2SeqLM.from_pretrained(t5), label_pad_token_id=-100
    )
    batch = collate(
        [{"input_ids": [101, 7, 102], "labels": [101, 5, 102]}, {"input_ids": [101, 102], "labels": [101, 102]}]
    )
    assert batch["labels"].tolist()[1][-1] == -100


@pytest.mark.slow
def test_encoder_decoder_warm_started_from_minilm(staged, local_root, spark):
    config = config_of(
        "trec_answer_type",
        "model.name_or_path=minilm-bert2bert",
        "train.max_steps=2",
        "split.train=0.96",
        "split.validation=0.02",
        "split.test=0.02",
    )
    summary = pipeline.run(config, spark)
    saved = evaluated(summary)
    predictor = Predictor.load(summary["train"]["registered_uri"])
    assert type(predictor.model).__name__ == "EncoderDecoderModel"
    test = PublishedDataset.open(summary["prepare"]["dataset"]).load()["test"]
    assert [p["answer"] for p in predictor.predict(test["text"], batch_size=64)] == saved["predicted"]


def test_class_weights_come_from_the_spark_label_counts(staged, local_root, spark, tmp_path):
    """The balanced weights are computed from the Spark label counts and really reach
    the Trainer's loss: on one fixed batch the weighted loss is the weighted cross
    entropy, and differs from the unweighted loss of the same model."""
    import torch

    from lakefine.core.labels import LabelMap
    from lakefine.training.classification import class_weights

    config = config_of("sms_spam", "model.name_or_path=tiny-random-bert")
    assert config.train.class_weights == "balanced"
    prepared = pipeline.prepare(config, spark)
    label_counts = prepared.summary()["data_card"]["label_counts"]
    spam_share = sum(label_counts["spam"].values()) / prepared.counts["used"]
    assert prepared.counts["input"] == 5574 and 0.12 < spam_share < 0.14
    ham, spam = label_counts["ham"]["train"], label_counts["spam"]["train"]
    weights = class_weights(label_counts, LabelMap(("ham", "spam")))
    assert weights == pytest.approx([(ham + spam) / (2 * ham), (ham + spam) / (2 * spam)])

    weighted, logits, labels, _ = loss_on_a_fixed_batch(config, prepared.dataset, "balanced", tmp_path)
    unweighted, same_logits, _, _ = loss_on_a_fixed_batch(config, prepared.dataset, "none", tmp_path)
    assert torch.equal(logits, same_logits) and 0 < int(labels.sum()) < len(labels)  # both classes in the batch
    ce = torch.nn.functional.cross_entropy
    assert weighted == pytest.approx(ce(logits, labels, weight=torch.tensor(weights)).item(), rel=1e-5)
    assert unweighted == pytest.approx(ce(logits, labels).item(), rel=1e-5)
    assert abs(weighted - unweighted) > 1e-3


def hub_dir(tmp_path: Path, declared_size: int | None) -> Path:
    directory = tmp_path / ("declared" if declared_size else "undeclared")
    (directory / "data").mkdir(parents=True)
    rows = [(f"a moving, generous film, take {i}", "pos") for i in range(30)]
    rows += [(f"tedious and flat, take {i}", "neg") for i in range(30)]
    (directory / "data/train.csv").write_text("text,label\n" + "".join(f'"{text}",{label}\n' for text, label in rows))
    if declared_size:
        (directory / "README.md").write_text(
            "---\ndataset_info:\n  features:\n  - name: text\n    dtype: string\n  - name: label\n    dtype: string\n"
            f"  splits:\n  - name: train\n    num_bytes: 2000\n    num_examples: 60\n  download_size: {declared_size}\n"
            "  dataset_size: 2000\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
            "    path: data/train.csv\n---\n"
        )
    return directory


def hub_config(directory: Path, *overrides):
    from lakefine.core.config import config_from_dict

    raw = {
        "name": "hub",
        "source": {"hub": {"name": str(directory), "split": "train"}},
        "model": {"name_or_path": "tiny-random-bert"},
    }
    for item in overrides:
        key, value = item.split("=", 1)
        raw["source"][key] = value if not value.replace(".", "").isdigit() else float(value)
    return config_from_dict(raw)


def test_hub_dataset_is_size_checked_then_prepared(tmp_path, local_root, spark):
    from lakefine.prep.prepare import prepare

    declared = hub_dir(tmp_path, declared_size=3_000)
    result = prepare(hub_config(declared), spark)
    assert result.counts["input"] == 60 and result.label_map.labels == ("neg", "pos")
    with pytest.raises(DataError, match="over source.max_download_mb"):
        prepare(hub_config(hub_dir(tmp_path / "big", declared_size=5_000_000_000)), spark)


def test_hub_dataset_without_declared_size_follows_the_policy(tmp_path, local_root, spark):
    from lakefine.prep.prepare import prepare

    undeclared = hub_dir(tmp_path, declared_size=None)
    with pytest.raises(DataError, match="does not state its download and dataset sizes.*unknown_size: warn"):
        prepare(hub_config(undeclared), spark)
    assert prepare(hub_config(undeclared, "unknown_size=warn"), spark).counts["used"] == 60


@pytest.mark.parametrize(
    "task, overrides, message",
    [
        ("pair_classification", ["source.text_pair_column=sentence_2"], "column 'sentence_2' is not in the source"),
        ("multi_label", ["source.label_column=label"], "task multi_label needs array<string> labels"),
    ],
)
def test_wrong_shape_is_one_clear_error_naming_the_column(staged, local_root, spark, task, overrides, message):
    name = "rt_sentiment_pairs"
    config = load_config(
        REPO / "pipelines" / f"{name}.yaml", [f"task={task}", "model.name_or_path=tiny-random-bert", *overrides]
    )
    with pytest.raises(DataError, match=message):
        pipeline.prepare(config, spark)


def test_pair_task_without_a_pair_column_is_a_config_error():
    with pytest.raises(ConfigError, match="source.text_pair_column: required for task pair_classification"):
        load_config(REPO / "pipelines/rotten_tomatoes.yaml", ["task=pair_classification"])


def test_empty_answer_column_is_one_clear_error(local_root, spark):
    df = spark.createDataFrame([(f"question {i}", " ") for i in range(20)], "question string, answer_type string")
    config = config_of("trec_answer_type", "model.name_or_path=tiny-random-t5")
    with pytest.raises(DataError, match=r"20 of 20 input rows \(100.0%\) are quarantined(.|\n)*empty_label: 20 rows"):
        pipeline.prepare(config, spark, df=df)


def test_cpu_training_arguments_are_unchanged(tmp_path, monkeypatch):
    import torch

    from lakefine.training.common import device_arguments, training_arguments

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config = config_of("rt_sentiment_pairs")
    assert device_arguments(config) == {"bf16": False, "use_cpu": True, "dataloader_num_workers": 0}
    args = training_arguments(config, tmp_path, has_validation=True, best_metric="f1_macro")
    assert args.use_cpu and not args.bf16 and not args.tf32 and args.dataloader_num_workers == 0
    assert not args.torch_compile and not args.dataloader_persistent_workers


@pytest.mark.parametrize("bf16, capability", [(True, (8, 0)), (False, (7, 5))], ids=["ampere", "turing"])
def test_gpu_training_arguments_follow_what_the_gpu_supports(monkeypatch, bf16, capability):
    """The selection alone (a CPU machine cannot build GPU TrainingArguments)."""
    import torch

    from lakefine.training.common import device_arguments

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a, **k: capability)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    chosen = device_arguments(config_of("rt_sentiment_pairs"))
    assert chosen == {
        "bf16": bf16,
        "tf32": bf16,  # both need Ampere here
        "use_cpu": False,
        "dataloader_num_workers": 4,
        "dataloader_pin_memory": True,
        "dataloader_persistent_workers": True,
        "torch_compile": False,
    }
    assert device_arguments(config_of("rt_sentiment_pairs", "train.torch_compile=true"))["torch_compile"] is True
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert device_arguments(config_of("rt_sentiment_pairs"))["dataloader_num_workers"] == 1  # 8 cores, 4 GPUs
