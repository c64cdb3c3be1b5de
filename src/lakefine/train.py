"""Fine-tuning on a published dataset: tokenize (batched, cached next to the
dataset), then a Trainer composed through its arguments (collator, metrics,
callbacks). Never imports pyspark: training meets preparation only through the
published dataset."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lakefine.config import PipelineConfig
from lakefine.errors import TrainingError
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


def fit(config: PipelineConfig, published: PublishedDataset, output_dir: Path, callbacks=()) -> FitResult:
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
    by_steps = train_cfg.max_steps > 0
    strategy = ("steps" if by_steps else "epoch") if has_validation else "no"
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
        eval_strategy=strategy,
        save_strategy=strategy,
        eval_steps=train_cfg.max_steps if by_steps else None,
        save_steps=train_cfg.max_steps if by_steps else None,
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
        f"{'max_steps ' + str(train_cfg.max_steps) if by_steps else str(train_cfg.epochs) + ' epoch(s)'}")
    trainer.train()
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
