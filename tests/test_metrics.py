"""The one metrics module, on cases small enough to compute by hand."""

from __future__ import annotations

import numpy as np
import pytest

from lakefine.core.metrics import (
    answer_scores,
    headline,
    multi_label_scores,
    normalize_answer,
    probabilities,
    sigmoid,
    single_label_scores,
    token_f1,
)


def test_binary_scores_by_hand():
    # label 1: TP 1, FP 0, FN 1 -> P 1, R 1/2, F1 2/3; label 0: P 2/3, R 1, F1 4/5
    scores = single_label_scores([0, 1, 1, 0], [0, 1, 0, 0], num_labels=2)
    assert scores["accuracy"] == pytest.approx(3 / 4)
    assert scores["f1"] == pytest.approx(2 / 3)
    assert scores["f1_macro"] == pytest.approx((4 / 5 + 2 / 3) / 2)


def test_three_classes_use_macro_f1_by_hand():
    # class 0: F1 1; class 1: never predicted, F1 0; class 2: P 2/3, R 1, F1 4/5
    scores = single_label_scores([0, 1, 2, 2], [0, 2, 2, 2], num_labels=3)
    assert scores["accuracy"] == pytest.approx(3 / 4)
    assert scores["f1"] == scores["f1_macro"] == pytest.approx((1 + 0 + 4 / 5) / 3)


def test_binary_or_macro_is_decided_by_the_label_map_not_the_sample():
    # Only ids 0 and 1 occur, but the label map has three classes: macro, not binary.
    labels, predicted = [0, 0, 0, 1], [0, 0, 1, 1]  # class 0: F1 4/5; class 1: F1 2/3
    assert single_label_scores(labels, predicted, num_labels=2)["f1"] == pytest.approx(2 / 3)
    assert single_label_scores(labels, predicted, num_labels=3)["f1"] == pytest.approx((4 / 5 + 2 / 3) / 2)


def test_multi_label_scores_by_hand():
    truth = [[1, 0, 1], [0, 1, 0]]
    predicted = [[1, 0, 0], [0, 1, 0]]
    scores = multi_label_scores(truth, predicted)
    assert scores["accuracy"] == pytest.approx(1 / 2)  # subset accuracy: only row 2 is all right
    assert scores["f1_micro"] == pytest.approx(2 * 1 * (2 / 3) / (1 + 2 / 3))  # TP 2, FP 0, FN 1
    assert scores["f1_macro"] == pytest.approx((1 + 1 + 0) / 3)


def test_exact_match_and_token_f1_by_hand():
    assert normalize_answer("The  Eiffel Tower!") == "eiffel tower"
    assert token_f1("paris france", "Paris") == pytest.approx(2 * (1 / 2) * 1 / (1 / 2 + 1))
    assert token_f1("london", "Paris") == 0.0
    scores = answer_scores(["The Eiffel Tower", "paris france"], ["eiffel tower", "Paris"])
    assert scores["exact_match"] == pytest.approx(1 / 2)
    assert scores["f1"] == pytest.approx((1 + 2 / 3) / 2)


def test_probabilities_and_sigmoid():
    probs = probabilities(np.array([[0.0, np.log(3.0)]]))
    assert probs[0].tolist() == pytest.approx([0.25, 0.75])
    assert sigmoid(np.array([0.0, np.log(3.0)])).tolist() == pytest.approx([0.5, 0.75])


def test_headline_shows_the_test_scores_only():
    line = headline({"test_accuracy": 0.82154, "test_loss": 0.4, "validation_accuracy": 0.8, "test_f1": 0.5})
    assert line == "test_accuracy=0.8215, test_f1=0.5000"
