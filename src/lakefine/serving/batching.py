"""Length-ordered model batches: rows sorted by token length and cut by a row cap and
a padded-token cap, so that a batch pads to its own longest row rather than to the
longest row that happened to land beside it. ``serving.predictor.Predictor`` cuts
every prediction with it; pure numpy (no torch), so the scoring bench measures the
same batches' padding without loading a model."""

from __future__ import annotations

import math

import numpy as np


def model_batches(lengths, max_rows: int, max_tokens: float = math.inf) -> list[np.ndarray]:
    """Row indices in ascending token length, cut so that no batch has more than
    ``max_rows`` rows or more than ``max_tokens`` padded tokens (rows x the longest).
    A single row longer than ``max_tokens`` is a batch of its own."""
    lengths = np.asarray(lengths)
    batches, current, longest = [], [], 0
    for index in np.argsort(lengths, kind="stable"):
        length = int(lengths[index])
        if current and (len(current) >= max_rows or (len(current) + 1) * max(longest, length) > max_tokens):
            batches.append(np.array(current))
            current, longest = [], 0
        current.append(index)
        longest = max(longest, length)
    if current:
        batches.append(np.array(current))
    return batches


def padding_efficiency(lengths, batches) -> float:
    """Real tokens / padded tokens over the model batches."""
    lengths = np.asarray(lengths)
    padded = sum(len(b) * int(lengths[b].max()) for b in batches)
    return float(lengths.sum() / padded) if padded else 1.0
