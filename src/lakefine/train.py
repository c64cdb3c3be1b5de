"""Fine-tuning on a published dataset: tokenize (batched, cached next to the
dataset), then a Trainer composed through its arguments (collator, metrics,
callbacks). Never imports pyspark: training meets preparation only through the
published dataset."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from lakefine.config import PipelineConfig
from lakefine.errors import Preempted, TrainingError
from lakefine.handoff import PublishedDataset
from lakefine.labels import LabelMap
from lakefine.log import say
from lakefine.metrics import classification_metrics, probabilities


@dataclass
class FitResult:
    model: object
    tokenizer: object
    label_map: LabelMap
    metrics: dict  # validation and test metrics
    test_predictions: dict  # row_hash, label, probabilities on the test split
    timings: dict = field(default_factory=dict)


def load_tokenizer(model_dir: str, max_length: int):
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError) as exc:
        raise TrainingError(
            f"model.name_or_path: {model_dir} is not a model directory with a tokenizer"
            f" ({str(exc).splitlines()[0][:200]}); point it at a save_pretrained directory"
        ) from None
    # Saved with the model, so prediction truncates exactly as training did.
    tokenizer.model_max_length = max_length
    return tokenizer


def tokenize(dataset_dict, tokenizer, published: PublishedDataset, max_length: int):
    """Batched, truncating, unpadded (the collator pads per batch); cached on the
    volume under a key of the dataset, the tokenizer and max_length."""
    with_pair = "text_pair" in dataset_dict["train"].column_names
    tokenizer_key = hashlib.sha256(
        (tokenizer.backend_tokenizer.to_str() if tokenizer.is_fast else repr(tokenizer)).encode()
        + str(max_length).encode()
    ).hexdigest()[:12]
    cache_dir = published.path / "tokenized" / tokenizer_key
    cache_dir.mkdir(parents=True, exist_ok=True)

    def encode(batch):
        pairs = batch["text_pair"] if with_pair else None
        encoded = tokenizer(batch["text"], pairs, truncation=True, max_length=max_length)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    drop = [c for c in ("text", "text_pair", "split") if c in dataset_dict["train"].column_names]
    return dataset_dict.map(
        encode,
        batched=True,
        batch_size=1000,
        remove_columns=drop,
        cache_file_names={split: str(cache_dir / f"{split}.arrow") for split in dataset_dict},
        desc="tokenize",
    )


def fit(config: PipelineConfig, published: PublishedDataset, output_dir: Path, callbacks=(),
        resume_from: Optional[Path] = None) -> FitResult:
    """Train and evaluate. Raises Preempted if SIGTERM stopped training (a checkpoint
    was saved first: transformers' JIT checkpoint); a rerun resumes from it."""
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        EarlyStoppingCallback,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    timings = {}
    train_cfg = config.train
    if train_cfg.torch_threads:
        torch.set_num_threads(train_cfg.torch_threads)
    set_seed(train_cfg.seed)
    manifest = published.manifest
    label_map = LabelMap.from_json(manifest["label_map"])
    max_length = int(manifest["max_length"])
    model_dir = manifest["model_dir"]

    stage = time.perf_counter()
    tokenizer = load_tokenizer(model_dir, max_length)
    tokenized = tokenize(published.load(), tokenizer, published, max_length)
    timings["tokenize"] = time.perf_counter() - stage

    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            model_dir,
            num_labels=len(label_map.labels),
            id2label=label_map.id2label,
            label2id=label_map.label2id,
        )
    except (OSError, ValueError) as exc:
        raise TrainingError(
            f"model.name_or_path: cannot load a model from {model_dir}"
            f" ({str(exc).splitlines()[0][:200]}); point it at a save_pretrained directory"
        ) from None

    has_validation = "validation" in tokenized
    every = train_cfg.checkpoint_steps or (train_cfg.max_steps if train_cfg.max_steps > 0 else None)
    by_steps = every is not None
    strategy = "steps" if by_steps else "epoch"
    eval_strategy = strategy if has_validation else "no"
    use_gpu = torch.cuda.is_available()
    args = TrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=train_cfg.epochs,
        max_steps=train_cfg.max_steps,
        per_device_train_batch_size=train_cfg.batch_size,
        per_device_eval_batch_size=train_cfg.eval_batch_size,
        gradient_accumulation_steps=train_cfg.gradient_accumulation_steps,
        learning_rate=train_cfg.learning_rate,
        weight_decay=train_cfg.weight_decay,
        warmup_steps=train_cfg.warmup_ratio,  # a float < 1 is a ratio of the total steps in transformers 5
        eval_strategy=eval_strategy,
        save_strategy=strategy,
        eval_steps=every if has_validation else None,
        save_steps=every,
        enable_jit_checkpoint=True,  # SIGTERM (spot preemption) saves a checkpoint first
        logging_steps=train_cfg.logging_steps,
        load_best_model_at_end=has_validation,
        metric_for_best_model="f1_macro" if has_validation else None,
        save_total_limit=2,
        seed=train_cfg.seed,
        data_seed=train_cfg.seed,
        train_sampling_strategy="group_by_length" if train_cfg.group_by_length else "random",
        length_column_name="length",
        bf16=use_gpu and torch.cuda.is_bf16_supported(),
        use_cpu=not use_gpu,
        report_to="none",  # tracking is lakefine's callback: it survives server outages
        disable_tqdm=os.environ.get("CI") == "true",
        dataloader_num_workers=0,
    )
    default_sigterm = signal.getsignal(signal.SIGTERM)  # before the Trainer installs its own
    trainer_callbacks = list(callbacks)
    if train_cfg.early_stopping_patience and has_validation:
        trainer_callbacks.append(EarlyStoppingCallback(train_cfg.early_stopping_patience))
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"] if has_validation else None,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if use_gpu else None),
        compute_metrics=classification_metrics(len(label_map.labels)),
        callbacks=trainer_callbacks,
    )
    stage = time.perf_counter()
    say(f"train: {len(tokenized['train']):,} rows, max_length {max_length}, "
        f"{'max_steps ' + str(train_cfg.max_steps) if train_cfg.max_steps > 0 else str(train_cfg.epochs) + ' epoch(s)'}"
        + (f", resuming from {resume_from.name}" if resume_from else ""))
    with _sigterm_recorded(restore=default_sigterm) as preempted:
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    if preempted.is_set():
        raise Preempted(f"training stopped by SIGTERM at step {trainer.state.global_step} after saving a"
                        " checkpoint; run the same command again to resume from it")
    timings["train"] = time.perf_counter() - stage

    stage = time.perf_counter()
    metrics = {}
    if has_validation:
        metrics.update(trainer.evaluate(metric_key_prefix="validation"))
    test_predictions = {}
    if "test" in tokenized:
        output = trainer.predict(tokenized["test"], metric_key_prefix="test")
        metrics.update(output.metrics)
        probs = probabilities(output.predictions)
        test_predictions = {
            "row_hash": [int(h) for h in tokenized["test"]["row_hash"]],
            "label": [int(x) for x in output.label_ids],
            "predicted": [int(x) for x in np.argmax(probs, axis=-1)],
            "probabilities": probs.tolist(),
        }
    timings["evaluate"] = time.perf_counter() - stage
    return FitResult(trainer.model, tokenizer, label_map,
                     {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))},
                     test_predictions, timings)


@contextlib.contextmanager
def _sigterm_recorded(restore):
    """Note a SIGTERM and pass it on to the handler already installed (the Trainer's
    JIT checkpoint): training then stops cleanly and we must not call it finished.
    Afterwards ``restore`` is reinstalled, so a later SIGTERM terminates as usual."""
    preempted = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield preempted
        return
    previous = signal.getsignal(signal.SIGTERM)

    def record(signum, frame):
        preempted.set()
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, record)
    try:
        yield preempted
    finally:
        signal.signal(signal.SIGTERM, restore)
