"""Task dispatch: one ``fit`` for every task shape. Classification, sentence pairs
and multi-label train in ``classification``; text-to-text in ``seq2seq``."""

from __future__ import annotations

from pathlib import Path

from lakefine.core.config import PipelineConfig
from lakefine.core.dataset import PublishedDataset
from lakefine.training.callbacks import FirstStepTimer
from lakefine.training.classification import fit_classification
from lakefine.training.common import FitResult
from lakefine.training.seq2seq import fit_seq2seq


def fit(
    config: PipelineConfig,
    published: PublishedDataset,
    output_dir: Path,
    callbacks=(),
    resume_from: Path | None = None,
) -> FitResult:
    """Train and evaluate. Raises Preempted if SIGTERM stopped training (a checkpoint
    was saved first: transformers' JIT checkpoint); a rerun resumes from it."""
    trainer_fit = fit_seq2seq if config.task == "seq2seq" else fit_classification
    first_step = FirstStepTimer()
    result = trainer_fit(config, published, output_dir, (*callbacks, first_step), resume_from)
    if first_step.seconds is not None:
        result.timings["first_step"] = first_step.seconds
    return result
