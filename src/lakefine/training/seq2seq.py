"""Text-to-text fine-tuning (the T5 shape): question (+ context) -> answer.

The input is the question with its prefix paired with the context with its prefix,
truncating only the context (``truncation="only_second"``); targets are cut at
``seq2seq.max_target_length`` and their padding becomes -100 in the collator, so the
loss ignores it. ``prepare`` made these ids in Spark (``lakefine.core.tokenization``,
the same encoding prediction's ``serving.text2text`` builds). ``Seq2SeqTrainer`` evaluates with ``generate`` (beams and
``no_repeat_ngram_size`` from config) and scores exact match and token F1 with the
usual answer normalisation."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import torch
from transformers import (
    AutoModelForSeq2SeqLM,
    DataCollatorForSeq2Seq,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    set_seed,
)

from lakefine.core.config import PipelineConfig
from lakefine.core.dataset import PublishedDataset
from lakefine.core.log import say
from lakefine.core.metrics import answer_scores
from lakefine.evaluation.scoring import evaluate_splits
from lakefine.serving.predictor import Predictor
from lakefine.serving.text2text import decode
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


def fit_seq2seq(
    config: PipelineConfig,
    published: PublishedDataset,
    output_dir: Path,
    callbacks=(),
    resume_from: Path | None = None,
) -> FitResult:
    timings = {}
    if config.train.torch_threads:
        torch.set_num_threads(config.train.torch_threads)
    set_seed(config.train.seed)
    manifest = published.manifest
    max_length = int(manifest["max_length"])
    model_dir = manifest["model_dir"]
    settings = {"question_prefix": config.seq2seq.question_prefix, "context_prefix": config.seq2seq.context_prefix}

    stage = time.perf_counter()
    tokenizer = load_tokenizer(model_dir, max_length)
    data = published.load()
    encoding = encoding_for(config, published, tokenizer, data)
    target_length = encoding.target_max_length
    tokenized = model_inputs(data, tokenizer, published, encoding)  # the ids prepare made in Spark
    timings["tokenize"] = time.perf_counter() - stage

    model = load_pretrained(AutoModelForSeq2SeqLM, model_dir, "a seq2seq model (T5 or encoder-decoder)")
    generation = model.generation_config
    generation.num_beams = config.seq2seq.num_beams
    generation.no_repeat_ngram_size = config.seq2seq.no_repeat_ngram_size
    generation.max_new_tokens = config.seq2seq.max_new_tokens
    generation.max_length = None
    model.config.lakefine_seq2seq = settings  # saved with the model: prediction builds inputs the same way

    def compute_metrics(eval_prediction):
        predictions = (
            eval_prediction.predictions[0]
            if isinstance(eval_prediction.predictions, tuple)
            else eval_prediction.predictions
        )
        return answer_scores(decode(tokenizer, predictions), decode(tokenizer, eval_prediction.label_ids))

    has_validation = "validation" in tokenized
    args = training_arguments(
        config,
        output_dir,
        has_validation,
        best_metric="f1",
        args_class=Seq2SeqTrainingArguments,
        predict_with_generate=True,
        generation_config=generation,
    )
    default_sigterm = signal.getsignal(signal.SIGTERM)
    trainer = Seq2SeqTrainer(
        model=model,
        args=args,
        train_dataset=tokenized["train"],
        eval_dataset=length_ordered(tokenized.get("validation")),
        processing_class=tokenizer,
        data_collator=DataCollatorForSeq2Seq(tokenizer, model=model, label_pad_token_id=-100),
        compute_metrics=compute_metrics,
        callbacks=list(callbacks) + extra_callbacks(config, has_validation),
    )
    sample_by_published_lengths(trainer)
    stage = time.perf_counter()
    say(
        f"train: seq2seq, {len(tokenized['train']):,} rows, input {max_length} / target {target_length} tokens"
        + (f", resuming from {resume_from.name}" if resume_from else "")
    )
    run_trainer(trainer, resume_from, default_sigterm)
    timings["train"] = time.perf_counter() - stage

    stage = time.perf_counter()
    # Both splits through the evaluation module (the serving code path, as `lakefine
    # evaluate` scores them): the reported answers are what the registered model answers.
    evaluations = evaluate_splits(
        Predictor(trainer.model.eval(), tokenizer), data, config.task, config.train.eval_batch_size
    )
    metrics = {}
    for evaluation in evaluations.values():
        metrics.update(evaluation.prefixed())
    test_predictions = evaluations["test"].predictions if "test" in evaluations else {}
    timings["evaluate"] = time.perf_counter() - stage
    return FitResult(
        trainer.model,
        tokenizer,
        None,
        {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))},
        test_predictions,
        timings,
        evaluations=evaluations,
        runtime=runtime_params(trainer.model),
    )
