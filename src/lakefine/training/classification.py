"""Classification on a published dataset: single texts and sentence pairs (softmax),
multi-label (sigmoid over multi-hot labels). A ``Trainer`` composed through its
arguments: the padding collator, the metrics hook, the class-weighted loss hook and
the callbacks; never a subclass."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer, set_seed

from lakefine.core.config import PipelineConfig
from lakefine.core.dataset import PublishedDataset
from lakefine.core.labels import LabelMap
from lakefine.core.log import say
from lakefine.core.metrics import (
    calibration_inputs,
    expected_calibration_error,
    multi_label_scores,
    sigmoid,
    single_label_scores,
)
from lakefine.evaluation.calibrate import calibrate, classifier_head, uncalibrated
from lakefine.evaluation.scoring import evaluate_splits
from lakefine.serving.predictor import Predictor
from lakefine.training.common import (
    FitResult,
    encoding_for,
    extra_callbacks,
    length_ordered,
    load_pretrained,
    load_tokenizer,
    model_inputs,
    run_trainer,
    runtime_params,
    sample_by_published_lengths,
    training_arguments,
)


def compute_metrics_for(config: PipelineConfig, label_map: LabelMap):
    """The Trainer's ``compute_metrics``: the metrics module on the logits."""

    def compute(eval_prediction) -> dict[str, float]:
        logits = eval_prediction.predictions
        logits = logits[0] if isinstance(logits, tuple) else logits
        if config.task == "multi_label":
            predicted = (sigmoid(logits) >= config.labels.threshold).astype(int)
            return multi_label_scores(eval_prediction.label_ids, predicted)
        return single_label_scores(eval_prediction.label_ids, np.argmax(logits, axis=-1), len(label_map.labels))

    return compute


def class_weights(label_counts: dict[str, dict[str, int]], label_map: LabelMap) -> list[float]:
    """sklearn's "balanced": n_train / (n_classes * train rows of the class)."""
    train = [label_counts[label].get("train", 0) for label in label_map.labels]
    total = sum(train)
    return [total / (len(train) * max(1, n)) for n in train]


# A label seen in 3 of 4,000 rows would get a weight near 1,300 and fire on everything;
# the square root of negatives/positives, capped, lifts the rare labels without that.
MAX_POS_WEIGHT = 30.0


def positive_weights(label_counts: dict[str, dict[str, int]], label_map: LabelMap, train_rows: int) -> list[float]:
    """Multi-label ``pos_weight`` of ``BCEWithLogitsLoss``: sqrt(negatives / positives)
    per label over the train split (label counts = rows carrying the label), capped."""
    weights = []
    for label in label_map.labels:
        positives = max(1, label_counts[label].get("train", 0))
        weights.append(min(MAX_POS_WEIGHT, max(1.0, ((train_rows - positives) / positives) ** 0.5)))
    return weights


def label_prior_logits(label_counts: dict[str, dict[str, int]], label_map: LabelMap, train_rows: int) -> list[float]:
    """Per label, log(p / (1 - p)) with p its share of the train rows (smoothed so a
    label no train row carries stays finite): the logits of a model that knows only how
    common each label is. A multi-label head started there has nothing to unlearn:
    started at 0 (p = 0.5 for every label) it spends its first epochs pushing 54 of 56
    outputs down before it separates any labels."""
    logits = []
    for label in label_map.labels:
        p = (label_counts[label].get("train", 0) + 0.5) / (train_rows + 1)
        logits.append(float(np.log(p / (1 - p))))
    return logits


def start_at_label_priors(model, published: PublishedDataset, label_map: LabelMap) -> None:
    head = classifier_head(model)
    priors = label_prior_logits(
        published.manifest["data_card"]["label_counts"], label_map, published.split_rows["train"]
    )
    with torch.no_grad():
        head.bias.copy_(torch.tensor(priors, dtype=head.bias.dtype))
    say(f"train: output biases start at the label priors' log-odds ({min(priors):.2f} to {max(priors):.2f})")


def class_weighted_loss(config: PipelineConfig, published: PublishedDataset, label_map: LabelMap):
    """A ``compute_loss_func`` for the Trainer (no subclass), or None: weighted
    cross-entropy (single-label, pairs) or BCE with ``pos_weight`` (multi-label)."""
    if config.train.class_weights == "none":
        return None
    label_counts = published.manifest["data_card"]["label_counts"]
    if config.task == "multi_label":
        weights = torch.tensor(
            positive_weights(label_counts, label_map, published.split_rows["train"]), dtype=torch.float32
        )
        say(f"train: positive weights from {min(weights.tolist()):.2f} to {max(weights.tolist()):.2f} (sqrt neg/pos)")

        def weighted_bce(outputs, labels, num_items_in_batch=None):
            logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
            return torch.nn.functional.binary_cross_entropy_with_logits(
                logits, labels.to(logits.dtype), pos_weight=weights.to(logits.device)
            )

        return weighted_bce
    weights = torch.tensor(class_weights(label_counts, label_map), dtype=torch.float32)
    say(f"train: class weights {dict(zip(label_map.labels, [round(w, 3) for w in weights.tolist()]))}")

    def weighted_cross_entropy(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        return torch.nn.functional.cross_entropy(logits, labels, weight=weights.to(logits.device))

    return weighted_cross_entropy


def build_trainer(
    config: PipelineConfig, published: PublishedDataset, output_dir: Path, callbacks=()
) -> tuple[Trainer, dict]:
    """The Trainer (model, collator, metrics and loss hooks, callbacks) and the
    tokenized splits it trains and evaluates on (the ids the dataset carries)."""
    manifest = published.manifest
    label_map = LabelMap.from_json(manifest["label_map"])
    max_length = int(manifest["max_length"])
    multi_label = config.task == "multi_label"
    tokenizer = load_tokenizer(manifest["model_dir"], max_length)
    data = published.load()
    tokenized = model_inputs(data, tokenizer, published, encoding_for(config, published, tokenizer, data))
    model = load_pretrained(
        AutoModelForSequenceClassification,
        manifest["model_dir"],
        "a model",
        num_labels=len(label_map.labels),
        id2label=label_map.id2label,
        label2id=label_map.label2id,
        problem_type="multi_label_classification" if multi_label else "single_label_classification",
    )
    if multi_label:
        model.config.lakefine_threshold = config.labels.threshold  # saved with the model for prediction
        if config.train.head_bias == "label_priors":
            start_at_label_priors(model, published, label_map)
    has_validation = "validation" in tokenized
    trainer = Trainer(
        model=model,
        # Multi-label: the thresholds are tuned after training, so the best checkpoint is
        # the one with the lowest validation loss, not the best F1 at one fixed threshold.
        args=training_arguments(config, output_dir, has_validation, best_metric="loss" if multi_label else "f1_macro"),
        train_dataset=tokenized["train"],
        eval_dataset=length_ordered(tokenized.get("validation")),
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if torch.cuda.is_available() else None),
        compute_metrics=compute_metrics_for(config, label_map),
        compute_loss_func=class_weighted_loss(config, published, label_map),
        callbacks=list(callbacks) + extra_callbacks(config, has_validation),
    )
    sample_by_published_lengths(trainer)
    return trainer, tokenized


def fit_classification(
    config: PipelineConfig,
    published: PublishedDataset,
    output_dir: Path,
    callbacks=(),
    resume_from: Path | None = None,
) -> FitResult:
    timings = {}
    train_cfg = config.train
    if train_cfg.torch_threads:
        torch.set_num_threads(train_cfg.torch_threads)
    set_seed(train_cfg.seed)
    label_map = LabelMap.from_json(published.manifest["label_map"])

    stage = time.perf_counter()
    default_sigterm = signal.getsignal(signal.SIGTERM)  # before the Trainer installs its own
    trainer, tokenized = build_trainer(config, published, output_dir, callbacks)
    timings["tokenize"] = time.perf_counter() - stage
    stage = time.perf_counter()
    steps = f"max_steps {train_cfg.max_steps}" if train_cfg.max_steps > 0 else f"{train_cfg.epochs} epoch(s)"
    say(
        f"train: {len(trainer.train_dataset):,} rows, max_length {published.manifest['max_length']}, {steps}"
        + (f", resuming from {resume_from.name}" if resume_from else "")
    )
    run_trainer(trainer, resume_from, default_sigterm)
    timings["train"] = time.perf_counter() - stage

    stage = time.perf_counter()
    # The final scores come from the evaluation module, the one `lakefine evaluate`
    # runs: thresholds and temperature fitted on validation first, then both splits.
    predictor = Predictor(trainer.model.eval(), trainer.processing_class)
    data = published.load()
    settings, metrics = calibrate(config, predictor, data.get("validation"))
    evaluations = evaluate_splits(predictor, data, config.task, train_cfg.eval_batch_size)
    for evaluation in evaluations.values():
        metrics.update(evaluation.prefixed())
    if "temperature" in settings:
        for name, evaluation in evaluations.items():
            before = uncalibrated(evaluation.probabilities, settings["temperature"])
            metrics[f"{name}_ece_uncalibrated"] = expected_calibration_error(
                *calibration_inputs(config.task, evaluation.truth, before)
            )
    test_predictions = evaluations["test"].predictions if "test" in evaluations else {}
    timings["evaluate"] = time.perf_counter() - stage
    return FitResult(
        trainer.model,
        trainer.processing_class,
        label_map,
        {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))},
        test_predictions,
        timings,
        settings=settings,
        evaluations=evaluations,
        runtime=runtime_params(trainer.model),
    )
