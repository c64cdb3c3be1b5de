"""Fitted on the validation split after training, saved with the model:

- multi-label: one decision threshold per label (the one maximising its F1; the
  global ``labels.threshold`` for labels with too few validation positives);
- single-label: a temperature T (``train.temperature_scaling``), folded into the
  classifier head (weights and bias divided by T), so the transformers flavor,
  serving and scoring apply it with no extra code."""

from __future__ import annotations

import numpy as np
import torch

from lakefine.core import metrics as scores
from lakefine.core.calibration import fit_temperature, tune_thresholds
from lakefine.core.config import PipelineConfig
from lakefine.core.log import say
from lakefine.evaluation.scoring import truth_of


def classifier_head(model) -> torch.nn.Linear:
    """The last Linear layer with one output per label: the head the logits come from
    (``classifier`` in BERT, ``classifier.out_proj`` in RoBERTa, ``score`` elsewhere)."""
    num_labels = len(model.config.id2label)
    heads = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == num_labels]
    if not heads:
        raise ValueError(
            f"{type(model).__name__}: no Linear layer with {num_labels} outputs to fold a temperature into"
        )
    return heads[-1]


def fold_temperature(model, temperature: float) -> None:
    """logits / T, computed by the head itself: W x + b -> (W / T) x + b / T."""
    head = classifier_head(model)
    with torch.no_grad():
        head.weight.div_(temperature)
        if head.bias is not None:
            head.bias.div_(temperature)


def calibrate(config: PipelineConfig, predictor, validation) -> tuple[dict, dict]:
    """Fit what the config asks for on ``validation``, apply it to ``predictor`` (its
    model and settings), and return the settings to save and the metrics to log."""
    settings: dict = {}
    logged: dict = {}
    if validation is None or len(validation) == 0 or config.task == "seq2seq":
        return settings, logged
    batch = config.train.eval_batch_size
    texts = validation["text"][:]
    pairs = validation["text_pair"][:] if "text_pair" in validation.column_names else None
    truth = truth_of(validation, config.task)
    if config.task == "multi_label":
        settings["global_threshold"] = config.labels.threshold
        if config.labels.thresholds == "per_label":
            probs = predictor.probabilities(texts, pairs, batch)
            thresholds, tuned = tune_thresholds(truth, probs, config.labels.threshold, config.labels.min_positives)
            settings.update(thresholds=thresholds, thresholds_tuned=tuned)
            logged["thresholds_tuned"] = float(sum(tuned))
            say(
                f"train: per-label thresholds tuned on validation for {sum(tuned)} of {len(tuned)} labels"
                f" (the others keep {config.labels.threshold}: fewer than {config.labels.min_positives} positives)"
            )
        else:
            settings["thresholds"] = [config.labels.threshold] * len(predictor.labels)
        predictor.settings.update(settings)
    elif config.train.temperature_scaling:
        logits = predictor.logits(texts, pairs, batch)
        temperature = fit_temperature(logits, truth)
        before = scores.expected_calibration_error(
            *scores.calibration_inputs("classification", truth, _softmax(logits))
        )
        fold_temperature(predictor.model, temperature)
        settings.update(temperature=temperature, temperature_folded=True)
        logged.update(temperature=temperature, validation_ece_uncalibrated=before)
        say(f"train: temperature {temperature:.3f} fitted on validation, folded into the classifier head")
    predictor.settings.update(settings)
    return settings, logged


def uncalibrated(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities before a folded temperature: softmax(T * log p) = p^T / sum p^T."""
    powered = np.power(np.clip(probs, 1e-300, 1.0), temperature)
    return powered / powered.sum(axis=1, keepdims=True)


def _softmax(logits):
    return scores.probabilities(logits)
