"""Evaluation a user can act on: the gate as a pure decision, thresholds and
temperature by hand, the figures' titles and labels, and on a real local registry
(one tiny-model training shared by the module): `lakefine evaluate` and the bundle
task report training's numbers, the champion alias moves only when the gate passes,
a dry run moves nothing, a model with another label map is refused or kept."""

from __future__ import annotations

import json
import os
import shutil
import types
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, link_shared, make_config, run_cli, with_smoke_dataset
from lakefine.core.calibration import fit_temperature, negative_log_likelihood, tune_thresholds
from lakefine.core.config import EvaluateConfig, load_config
from lakefine.core.errors import ConfigError, DataError
from lakefine.core.metrics import expected_calibration_error, multi_label_scores, reliability_bins
from lakefine.evaluation.gate import check_metric, decide

SMOKE = str(REPO / "pipelines/smoke.yaml")

# ---------------------------------------------------------------- the gate, pure


def test_gate_promotes_only_an_improvement_of_at_least_min_improvement():
    gate = EvaluateConfig(min_improvement=0.02)
    better = decide(gate, "f1_macro", {"f1_macro": 0.80}, {}, champion={"f1_macro": 0.75})
    assert better.promote and better.difference == pytest.approx(0.05)
    marginal = decide(gate, "f1_macro", {"f1_macro": 0.76}, {}, champion={"f1_macro": 0.75})
    assert not marginal.promote and "< min_improvement 0.02" in marginal.reason


def test_gate_floors_and_a_champion_that_cannot_be_compared():
    gate = EvaluateConfig(min_metric=0.6, min_class_f1=0.5)
    low = decide(gate, "accuracy", {"accuracy": 0.55}, {})
    assert not low.promote and "below evaluate.min_metric 0.6" in low.reason
    per_class = {"fresh": {"f1": 0.9, "support": 10}, "rotten": {"f1": 0.3, "support": 8}, "x": {"f1": 0, "support": 0}}
    weak_class = decide(gate, "accuracy", {"accuracy": 0.9}, per_class)
    assert not weak_class.promote and "rotten 0.300" in weak_class.reason and "x " not in weak_class.reason
    first = decide(EvaluateConfig(min_metric=0.6), "accuracy", {"accuracy": 0.7}, per_class)
    assert first.promote and "no champion yet" in first.reason
    other = decide(EvaluateConfig(), "accuracy", {"accuracy": 0.9}, {}, not_comparable="another label map: kept")
    assert not other.promote and other.reason == "another label map: kept"


def test_an_unknown_gate_metric_is_a_config_error_naming_the_choices():
    with pytest.raises(ConfigError, match=r"evaluate.metric: 'f1_weighted' is not a test metric.*accuracy, ece, f1"):
        check_metric("f1_weighted", {"accuracy": 1.0, "f1": 1.0, "ece": 0.0}, "classification")


# ---------------------------------------------------------------- thresholds, temperature, ECE by hand


def test_per_label_thresholds_maximise_f1_and_rare_labels_keep_the_global_one():
    truth = np.array([[1, 0], [1, 0], [0, 0], [0, 1], [0, 0]])
    probs = np.array([[0.30, 0.9], [0.25, 0.1], [0.10, 0.2], [0.05, 0.8], [0.20, 0.3]])
    thresholds, tuned = tune_thresholds(truth, probs, global_threshold=0.5, min_positives=2)
    # label 0: positives at 0.30 and 0.25, best negative 0.20 -> halfway between 0.25 and 0.20
    assert thresholds[0] == pytest.approx(0.225) and tuned == [True, False]
    assert thresholds[1] == 0.5  # one positive: too rare, the global threshold
    predicted = (probs >= np.array(thresholds)).astype(int)
    assert predicted[:, 0].tolist() == [1, 1, 0, 0, 0]


def test_temperature_is_recovered_and_lowers_the_log_loss():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4000, 3)) * 2
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(3, p=row) for row in p])
    overconfident = logits * 2.5  # a model 2.5x too sure of itself
    temperature = fit_temperature(overconfident, labels)
    assert temperature == pytest.approx(2.5, rel=0.1)
    assert negative_log_likelihood(overconfident, labels, temperature) < negative_log_likelihood(
        overconfident, labels, 1.0
    )


def test_ece_and_reliability_bins_by_hand():
    confidence = np.array([0.95, 0.95, 0.55, 0.55])
    correct = np.array([1, 1, 0, 1])
    bins = reliability_bins(confidence, correct, bins=10)
    assert bins[9]["rows"] == 2 and bins[9]["accuracy"] == 1.0 and bins[5]["accuracy"] == 0.5
    # (2 * |0.95 - 1| + 2 * |0.55 - 0.5|) / 4
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.05)


def test_multi_label_macro_f1_over_present_labels_and_over_all_labels():
    truth = np.array([[1, 0, 0], [0, 1, 0]])
    predicted = np.array([[1, 0, 0], [0, 0, 0]])
    scores = multi_label_scores(truth, predicted)
    assert scores["f1_macro_present"] == pytest.approx(0.5)  # labels 0 and 1: F1 1 and 0
    assert scores["f1_macro"] == pytest.approx(1 / 3)  # label 2 (no positive, none predicted) counts 0


# ---------------------------------------------------------------- figures


def _texts(labels):
    return [t.get_text() for t in labels]


def test_model_figures_have_titles_axis_labels_and_class_ticks():
    from lakefine.evaluation import plots

    labels = ["fresh", "rotten"]
    fig = plots.confusion_matrices(np.array([[5, 1], [2, 4]]), labels)
    counts, normalised = fig.axes[0], fig.axes[1]
    assert counts.get_title() == "Confusion matrix (test): counts"
    assert normalised.get_title() == "Confusion matrix (test): row-normalised"
    assert (counts.get_xlabel(), counts.get_ylabel()) == ("predicted label", "true label")
    assert _texts(counts.get_xticklabels()) == labels and _texts(normalised.get_yticklabels()) == labels
    assert "0.83" in [t.get_text() for t in normalised.texts]  # 5 / 6, row-normalised
    plots.close(fig)

    per_class = {
        "fresh": {"precision": 0.7, "recall": 0.8, "f1": 0.75},
        "rotten": {"precision": 1, "recall": 0, "f1": 0},
    }
    fig = plots.per_class_scores(per_class)
    ax = fig.axes[0]
    assert ax.get_title() == "Per-class precision, recall and F1 (test)"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("class", "score") and _texts(ax.get_xticklabels()) == labels
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["precision", "recall", "f1"]
    plots.close(fig)

    truth, probs = np.array([0, 1, 1, 0]), np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.9, 0.1]])
    fig = plots.precision_recall_curves(truth, probs, labels, "classification")
    ax = fig.axes[0]
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("Precision-recall (test)", "recall", "precision")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["rotten (positive class)"]
    plots.close(fig)

    fig = plots.reliability_diagram("classification", truth, probs)
    ax = fig.axes[0]
    assert ax.get_title().startswith("Reliability (test): ECE ")
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("confidence (top probability)", "fraction correct")
    plots.close(fig)

    fig = plots.champion_vs_challenger(per_class, {"fresh": {"f1": 0.5}, "rotten": {"f1": 0.6}})
    ax = fig.axes[0]
    assert ax.get_title() == "Per-class F1 (test): champion vs challenger"
    assert _texts(ax.get_xticklabels()) == labels and ax.get_ylabel() == "F1"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["champion", "challenger"]
    assert [round(p.get_height(), 2) for p in ax.patches] == [0.5, 0.6, 0.75, 0.0]
    plots.close(fig)


def test_multi_label_curves_and_data_card_figures():
    from lakefine.evaluation import plots

    labels = ["A", "A:x", "B"]
    truth = np.array([[1, 1, 0], [0, 0, 1], [1, 0, 0]])
    probs = np.array([[0.9, 0.6, 0.1], [0.2, 0.1, 0.7], [0.8, 0.4, 0.3]])
    fig = plots.precision_recall_curves(truth, probs, labels, "multi_label")
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["A", "A:x", "B", "micro average"]  # most frequent first
    plots.close(fig)

    fig = plots.token_length_histogram({"10": 3, "12": 5, "60": 1}, max_length=56)
    ax = fig.axes[0]
    assert ax.get_title() == "Token lengths (training split)" and ax.get_ylabel() == "texts"
    assert ax.get_xlabel() == "tokens per text (special tokens included)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["max_length 56"]
    assert ax.lines[0].get_xdata()[0] == 56
    plots.close(fig)

    counts = {"fresh": {"train": 8, "validation": 1, "test": 1}, "rotten": {"train": 6, "test": 2}}
    fig = plots.rows_per_label_and_split(counts)
    ax = fig.axes[0]
    assert ax.get_title() == "Rows per label and split" and _texts(ax.get_xticklabels()) == ["fresh", "rotten"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["train", "validation", "test"]
    plots.close(fig)

    fig = plots.quarantine_reasons({"duplicate": 10, "empty_text": 3})
    ax = fig.axes[0]
    assert ax.get_title() == "Quarantined rows by reason" and _texts(ax.get_yticklabels()) == [
        "duplicate",
        "empty_text",
    ]
    plots.close(fig)


@pytest.mark.slow  # loads a model: 12-60 s here depending on the load
def test_folding_a_temperature_divides_the_logits(tiny_model):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lakefine.evaluation.calibrate import fold_temperature

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=3).eval()
    model.classifier.bias.data = torch.tensor([0.7, -0.3, 0.1])  # a fresh head's bias is 0: make it count
    encoded = AutoTokenizer.from_pretrained(tiny_model)(["a fine film", "dull"], padding=True, return_tensors="pt")
    with torch.no_grad():
        before = model(**encoded).logits
        fold_temperature(model, 2.0)
        after = model(**encoded).logits
    assert torch.allclose(after, before / 2.0, atol=1e-6)


# ---------------------------------------------------------------- on a real local registry


@pytest.fixture(scope="module")
def registry(tmp_path_factory, shared_root, smoke_dataset):
    """One smoke training (tiny model, temperature scaling on) registered as the
    challenger; a "weak" version that always answers `rotten`; a version with another
    label map. Aliases are reset by each test."""
    import mlflow
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lakefine import pipeline
    from lakefine.core.labels import LabelMap
    from lakefine.serving.mlflow_model import log_and_register_model
    from lakefine.serving.saved import read_settings, save_model

    root = tmp_path_factory.mktemp("eval-root")
    link_shared(root, shared_root)
    with_smoke_dataset(root, smoke_dataset)
    previous = os.environ.get("LAKEFINE_LOCAL_ROOT")
    os.environ["LAKEFINE_LOCAL_ROOT"] = str(root)
    config = load_config(SMOKE, ["train.temperature_scaling=true"])
    dataset = root / "Volumes/main/lakefine/prep/datasets/smoke" / smoke_dataset.name
    trained = pipeline.train(config, str(dataset))

    def register_variant(name: str, labels: tuple[str, ...], alias: str) -> int:
        """A copy of the trained model whose head always answers the last class."""
        model = AutoModelForSequenceClassification.from_pretrained(trained.model_dir)
        head = model.classifier
        head.weight.data.zero_()
        head.bias.data = torch.tensor([-5.0] * (len(labels) - 1) + [5.0])
        model.config.id2label = dict(enumerate(labels))
        model.config.label2id = {label: i for i, label in enumerate(labels)}
        target = root / "variants" / name
        tokenizer = AutoTokenizer.from_pretrained(trained.model_dir)
        save_model(model, tokenizer, target, {**read_settings(trained.model_dir), "labels": list(labels)})
        with mlflow.start_run(experiment_id=mlflow.get_experiment_by_name(config.experiment_name).experiment_id):
            mlflow.set_tag("lakefine.dataset", read_settings(trained.model_dir)["dataset_key"])
            result = types.SimpleNamespace(model=model, tokenizer=tokenizer, label_map=LabelMap(labels))
            return log_and_register_model(config, result, target, alias=alias)["version"]

    weak = register_variant("weak", ("fresh", "rotten"), "weak")
    other = register_variant("other-labels", ("negative", "positive"), "other")
    yield types.SimpleNamespace(
        root=root,
        config=config,
        trained=trained,
        dataset=dataset,
        strong=trained.registration["version"],
        weak=weak,
        other=other,
    )
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    if previous is None:
        os.environ.pop("LAKEFINE_LOCAL_ROOT", None)
    else:
        os.environ["LAKEFINE_LOCAL_ROOT"] = previous


def set_champion(version: int | None) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient()
    if version is None:
        try:
            client.delete_registered_model_alias("smoke_classifier", "champion")
        except Exception:  # no champion yet
            pass
    else:
        client.set_registered_model_alias("smoke_classifier", "champion", str(version))


def champion() -> int | None:
    from lakefine.tracking.registry import alias_version

    found = alias_version("smoke_classifier", "champion")
    return int(found.version) if found else None


def uri(version: int) -> str:
    return f"models:/smoke_classifier/{version}"


def evaluate(registry, model_uri: str, *overrides: str) -> dict:
    from lakefine import pipeline

    return pipeline.evaluate(load_config(SMOKE, list(overrides)), model_uri)


@pytest.mark.slow
def test_training_saves_the_card_settings_and_plots_and_folds_the_temperature(registry):
    import mlflow
    from mlflow.tracking import MlflowClient

    from lakefine.serving.predictor import Predictor

    trained = registry.trained
    metrics = trained.metrics
    model_dir = Path(trained.model_dir)
    settings = json.loads((model_dir / "lakefine_model.json").read_text())
    assert settings["temperature_folded"] and settings["temperature"] == pytest.approx(metrics["temperature"])
    assert settings["dataset_key"] == registry.dataset.name and settings["run_id"] == trained.run_id
    assert {"test_ece", "test_ece_uncalibrated", "validation_ece_uncalibrated"} <= set(metrics)

    card = (model_dir / "README.md").read_text()
    assert card.startswith("# smoke: classification")
    assert f"dataset key `{registry.dataset.name}`" in card and "`fresh`, `rotten`" in card
    assert f"| accuracy | {metrics['validation_accuracy']:.4f} | {metrics['test_accuracy']:.4f} |" in card
    assert f"Temperature {settings['temperature']:.4f}" in card and "12,808 in" in card
    assert "baseline (majority class 'fresh')" in card

    artifacts = {a.path for a in MlflowClient().list_artifacts(trained.run_id, "plots")}
    assert artifacts == {
        f"plots/{name}.png"
        for name in (
            "data_token_lengths",
            "data_rows_per_label_and_split",
            "data_quarantine_reasons",
            "confusion_matrix",
            "per_class_scores",
            "precision_recall",
            "reliability",
        )
    }
    top = {a.path for a in MlflowClient().list_artifacts(trained.run_id)}
    assert {"README.md", "lakefine_model.json", "evaluation"} <= top
    run = mlflow.get_run(trained.run_id)
    assert run.data.metrics["baseline_test_accuracy"] == pytest.approx(741 / 1272)  # majority class 'fresh'

    # The folded temperature travels with the transformers flavor: the registered
    # model's probabilities are the evaluation's (calibrated) ones.
    saved = json.loads(
        Path(
            mlflow.artifacts.download_artifacts(run_id=trained.run_id, artifact_path="test_predictions.json")
        ).read_text()
    )
    from lakefine.core.dataset import PublishedDataset

    test = PublishedDataset.open(registry.dataset).load()["test"]
    probs = Predictor.load(uri(registry.strong)).probabilities(list(test["text"]), batch_size=64)
    assert np.abs(probs - np.array(saved["probabilities"])).max() < 1e-5


@pytest.mark.slow
def test_no_champion_the_first_model_above_min_metric_becomes_champion(registry):
    set_champion(None)
    kept = evaluate(registry, uri(registry.strong), "evaluate.min_metric=0.99")
    assert kept["gate"]["decision"] == "kept" and "below evaluate.min_metric 0.99" in kept["gate"]["reason"]
    assert champion() is None
    first = evaluate(registry, uri(registry.strong))
    assert first["gate"]["decision"] == "promoted" and "no champion yet" in first["gate"]["reason"]
    assert champion() == registry.strong


@pytest.mark.slow
def test_a_weaker_champion_is_replaced_and_the_comparison_logged(registry):
    import mlflow
    from mlflow.tracking import MlflowClient

    set_champion(registry.weak)
    result = evaluate(registry, uri(registry.strong))
    gate = result["gate"]
    assert gate["champion"]["f1_macro"] < gate["challenger"]["f1_macro"]  # the premise: 'always rotten' is weaker
    assert gate["decision"] == "promoted" and champion() == registry.strong
    assert gate["champion_version_before"] == registry.weak

    run = mlflow.get_run(registry.trained.run_id)
    assert run.data.tags["lakefine.gate.decision"] == "promoted"
    assert run.data.metrics["gate_champion_test_f1_macro"] == pytest.approx(gate["champion"]["f1_macro"])
    assert run.data.metrics["gate_challenger_test_f1_macro"] == pytest.approx(result["metrics"]["f1_macro"])
    assert run.data.metrics["gate_difference"] == pytest.approx(gate["difference"]["f1_macro"])
    assert run.data.metrics["gate_champion_test_accuracy"] == pytest.approx(531 / 1272)  # every test row 'rotten'
    logged = {a.path for a in MlflowClient().list_artifacts(registry.trained.run_id, "plots")}
    assert "plots/champion_vs_challenger_f1.png" in logged


@pytest.mark.slow
def test_a_stronger_champion_is_kept(registry):
    set_champion(registry.strong)
    result = evaluate(registry, uri(registry.weak))
    assert result["gate"]["decision"] == "kept" and result["gate"]["difference"]["f1_macro"] < 0
    assert champion() == registry.strong


@pytest.mark.slow
def test_a_dry_run_decides_and_logs_but_moves_no_alias(registry):
    import mlflow

    set_champion(registry.weak)
    result = evaluate(registry, uri(registry.strong), "evaluate.mode=dry_run")
    assert result["gate"]["decision"] == "would_promote"
    assert champion() == registry.weak
    assert mlflow.get_run(registry.trained.run_id).data.tags["lakefine.gate.decision"] == "would_promote"


@pytest.mark.slow
def test_a_champion_with_another_label_map_is_kept_with_the_reason(registry):
    set_champion(registry.other)
    result = evaluate(registry, uri(registry.strong))
    assert result["gate"]["decision"] == "kept"
    assert "has another label map" in result["gate"]["reason"] and "'negative', 'positive'" in result["gate"]["reason"]
    assert champion() == registry.other


@pytest.mark.slow
def test_a_model_whose_label_map_differs_from_the_dataset_is_refused_naming_both(registry):
    from lakefine import pipeline

    with pytest.raises(DataError) as error:
        pipeline.evaluate(registry.config, str(registry.root / "variants" / "other-labels"), str(registry.dataset))
    message = str(error.value)
    assert "model labels ['negative', 'positive'], dataset labels ['fresh', 'rotten']" in message


@pytest.mark.slow
def test_the_cli_and_the_bundle_task_report_trainings_numbers(registry, monkeypatch, capsys):
    """Both in this process (the numbers are the point, not what a shell sees): the
    CLI's main and the bundle task's step through the jobs' own runner."""
    import runpy

    from lakefine.ops.jobs import run_job

    trained = registry.trained.metrics
    out = run_cli(registry.root, "evaluate", SMOKE, "evaluate.mode=disabled", "--json")
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)
    assert summary["model_uri"] == "models:/smoke_classifier@challenger" and summary["version"] == registry.strong
    assert summary["dataset_key"] == registry.dataset.name and "gate" not in summary
    for name in ("accuracy", "f1", "f1_macro", "ece"):
        assert summary["metrics"][name] == pytest.approx(trained[f"test_{name}"], abs=1e-12)
    assert "Test metrics of models:/smoke_classifier@challenger" in out.stderr and "Traceback" not in out.stderr

    step = runpy.run_path(str(REPO / "pipelines/jobs/evaluate.py"))["step"]  # not as __main__
    monkeypatch.setenv("LAKEFINE_LOCAL_ROOT", str(registry.root))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    capsys.readouterr()
    assert run_job(step, ["--pipeline", SMOKE, "evaluate.mode=disabled"]) == 0
    printed = capsys.readouterr().out
    from_job = json.loads(printed[printed.index("{") :])
    assert from_job["metrics"] == summary["metrics"]


@pytest.mark.slow
def test_a_missing_dataset_is_one_clear_error(registry, tmp_path):
    """The model's run names its dataset; when that version is gone, evaluate says so
    (never "the newest")."""
    from lakefine.core.errors import HandoffError

    moved = tmp_path / "moved"
    shutil.move(str(registry.dataset), moved)
    try:
        with pytest.raises(HandoffError) as error:
            evaluate(registry, uri(registry.strong))
    finally:
        shutil.move(str(moved), registry.dataset)
    assert f"was trained on dataset {registry.dataset.name}, which is no longer at" in str(error.value)


def test_make_config_keeps_the_evaluate_defaults():
    config = make_config()
    assert config.evaluate.mode == "enabled" and config.gate_metric == "f1_macro"
    assert make_config(task="seq2seq").gate_metric == "exact_match"


def test_log_loss_by_hand():
    from lakefine.core.metrics import log_loss

    probs = np.array([[0.8, 0.2], [0.4, 0.6]])
    assert log_loss("classification", [0, 1], probs) == pytest.approx(-(np.log(0.8) + np.log(0.6)) / 2)
    # multi-label: binary cross-entropy averaged over every (row, label)
    expected = -(np.log(0.8) + np.log(0.8) + np.log(0.6) + np.log(0.6)) / 4  # 1-0.2, 1-0.4
    assert log_loss("multi_label", [[1, 0], [0, 1]], probs) == pytest.approx(expected)
