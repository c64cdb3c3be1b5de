"""Fine-tuning on a published dataset: tokenize (batched, cached next to the
dataset), then a Trainer composed through its arguments (collator, metrics, loss
hook, callbacks). Never imports pyspark: training meets preparation only through
the published dataset.

Tasks: classification and pair_classification (softmax), multi_label (sigmoid,
multi-hot labels) here; seq2seq in ``lakefine.seq2seq`` on the same scaffolding.
"""

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
from lakefine.metrics import classification_metrics, multilabel_metrics, probabilities, sigmoid


@dataclass
class FitResult:
    model: object
    tokenizer: object
    label_map: Optional[LabelMap]
    metrics: dict  # validation and test metrics
    test_predictions: dict  # row_hash, label, predictions on the test split
    timings: dict = field(default_factory=dict)


def load_pretrained(auto_class, model_dir: str, what: str, **kwargs):
    """``auto_class.from_pretrained`` with one clear error naming the config key."""
    try:
        return auto_class.from_pretrained(model_dir, **kwargs)
    except (OSError, ValueError) as exc:
        raise TrainingError(
            f"model.name_or_path: cannot load {what} from {model_dir}"
            f" ({str(exc).splitlines()[0][:200]}); point it at a save_pretrained directory"
        ) from None


def load_tokenizer(model_dir: str, max_length: int):
    from transformers import AutoTokenizer

    tokenizer = load_pretrained(AutoTokenizer, model_dir, "a tokenizer")
    # Saved with the model, so prediction truncates exactly as training did.
    tokenizer.model_max_length = max_length
    return tokenizer


def tokenizer_key(tokenizer, *settings) -> str:
    state = tokenizer.backend_tokenizer.to_str() if tokenizer.is_fast else repr(tokenizer)
    return hashlib.sha256((state + repr(settings)).encode()).hexdigest()[:12]


def cached_map(dataset_dict, encode, published: PublishedDataset, key: str, drop: list[str]):
    """``Dataset.map`` batched, with its cache files under the published dataset,
    named by ``key`` (tokenizer + settings), so a rerun reuses them."""
    cache_dir = published.path / "tokenized" / key
    cache_dir.mkdir(parents=True, exist_ok=True)
    return dataset_dict.map(
        encode,
        batched=True,
        batch_size=1000,
        remove_columns=[c for c in drop if c in dataset_dict["train"].column_names],
        cache_file_names={split: str(cache_dir / f"{split}.arrow") for split in dataset_dict},
        desc="tokenize",
    )


def tokenize(dataset_dict, tokenizer, published: PublishedDataset, max_length: int):
    """Batched, truncating, unpadded (the collator pads per batch)."""
    with_pair = "text_pair" in dataset_dict["train"].column_names

    def encode(batch):
        pairs = batch["text_pair"] if with_pair else None
        encoded = tokenizer(batch["text"], pairs, truncation=True, max_length=max_length)
        encoded["length"] = [len(ids) for ids in encoded["input_ids"]]
        return encoded

    return cached_map(dataset_dict, encode, published, tokenizer_key(tokenizer, max_length),
                      ["text", "text_pair", "split"])


def training_arguments(config: PipelineConfig, output_dir: Path, has_validation: bool, best_metric: str,
                       args_class=None, **extra):
    """The TrainingArguments every task shares: the fast defaults measured in bench/."""
    import torch
    from transformers import TrainingArguments

    train_cfg = config.train
    every = train_cfg.checkpoint_steps or (train_cfg.max_steps if train_cfg.max_steps > 0 else None)
    strategy = "steps" if every else "epoch"
    use_gpu = torch.cuda.is_available()
    return (args_class or TrainingArguments)(
        output_dir=str(output_dir),
        num_train_epochs=train_cfg.epochs,
        max_steps=train_cfg.max_steps,
        per_device_train_batch_size=train_cfg.batch_size,
        per_device_eval_batch_size=train_cfg.eval_batch_size,
        gradient_accumulation_steps=train_cfg.gradient_accumulation_steps,
        learning_rate=train_cfg.learning_rate,
        weight_decay=train_cfg.weight_decay,
        warmup_steps=train_cfg.warmup_ratio,  # a float < 1 is a ratio of the total steps in transformers 5
        eval_strategy=strategy if has_validation else "no",
        save_strategy=strategy,
        eval_steps=every if has_validation else None,
        save_steps=every,
        enable_jit_checkpoint=True,  # SIGTERM (spot preemption) saves a checkpoint first
        logging_steps=train_cfg.logging_steps,
        load_best_model_at_end=has_validation,
        metric_for_best_model=best_metric if has_validation else None,
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
        # Our models return a mean loss; True would scale it by the world size under DDP
        # (train.num_processes > 1): doubled gradients on 2 processes. No effect on 1.
        average_tokens_across_devices=False,
        **extra,
    )


def run_trainer(trainer, resume_from: Optional[Path], default_sigterm) -> None:
    """``trainer.train`` that raises Preempted when SIGTERM stopped it early."""
    with _sigterm_recorded(restore=default_sigterm) as preempted:
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    if preempted.is_set():
        raise Preempted(f"training stopped by SIGTERM at step {trainer.state.global_step} after saving a"
                        " checkpoint; run the same command again to resume from it")


def extra_callbacks(config: PipelineConfig, has_validation: bool) -> list:
    from transformers import EarlyStoppingCallback

    if config.train.early_stopping_patience and has_validation:
        return [EarlyStoppingCallback(config.train.early_stopping_patience)]
    return []


def fit(config: PipelineConfig, published: PublishedDataset, output_dir: Path, callbacks=(),
        resume_from: Optional[Path] = None) -> FitResult:
    """Train and evaluate. Raises Preempted if SIGTERM stopped training (a checkpoint
    was saved first: transformers' JIT checkpoint); a rerun resumes from it."""
    if config.task == "seq2seq":
        from lakefine.seq2seq import fit_seq2seq

        return fit_seq2seq(config, published, output_dir, callbacks, resume_from)

    import torch
    from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer, set_seed

    timings = {}
    train_cfg = config.train
    if train_cfg.torch_threads:
        torch.set_num_threads(train_cfg.torch_threads)
    set_seed(train_cfg.seed)
    manifest = published.manifest
    label_map = LabelMap.from_json(manifest["label_map"])
    max_length = int(manifest["max_length"])
    model_dir = manifest["model_dir"]
    multi_label = config.task == "multi_label"

    stage = time.perf_counter()
    tokenizer = load_tokenizer(model_dir, max_length)
    tokenized = tokenize(published.load(), tokenizer, published, max_length)
    timings["tokenize"] = time.perf_counter() - stage

    model = load_pretrained(
        AutoModelForSequenceClassification, model_dir, "a model",
        num_labels=len(label_map.labels),
        id2label=label_map.id2label,
        label2id=label_map.label2id,
        problem_type="multi_label_classification" if multi_label else "single_label_classification",
    )
    if multi_label:
        model.config.lakefine_threshold = config.labels.threshold  # saved with the model for prediction

    has_validation = "validation" in tokenized
    args = training_arguments(config, output_dir, has_validation, best_metric="f1_macro")
    default_sigterm = signal.getsignal(signal.SIGTERM)  # before the Trainer installs its own
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"] if has_validation else None,
        processing_class=tokenizer,
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if torch.cuda.is_available() else None),
        compute_metrics=(multilabel_metrics(config.labels.threshold) if multi_label
                         else classification_metrics(len(label_map.labels))),
        compute_loss_func=_class_weighted_loss(config, manifest, label_map),
        callbacks=list(callbacks) + extra_callbacks(config, has_validation),
    )
    stage = time.perf_counter()
    say(f"train: {len(tokenized['train']):,} rows, max_length {max_length}, "
        f"{'max_steps ' + str(train_cfg.max_steps) if train_cfg.max_steps > 0 else str(train_cfg.epochs) + ' epoch(s)'}"
        + (f", resuming from {resume_from.name}" if resume_from else ""))
    run_trainer(trainer, resume_from, default_sigterm)
    timings["train"] = time.perf_counter() - stage

    stage = time.perf_counter()
    metrics = {}
    if has_validation:
        metrics.update(trainer.evaluate(metric_key_prefix="validation"))
    test_predictions = {}
    if "test" in tokenized:
        output = trainer.predict(tokenized["test"], metric_key_prefix="test")
        metrics.update(output.metrics)
        logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
        probs = sigmoid(logits) if multi_label else probabilities(logits)
        predicted = ((probs >= config.labels.threshold).astype(int).tolist() if multi_label
                     else [int(x) for x in np.argmax(probs, axis=-1)])
        test_predictions = {
            "row_hash": [int(h) for h in tokenized["test"]["row_hash"]],
            "label": np.asarray(output.label_ids).tolist(),
            "predicted": predicted,
            "probabilities": probs.tolist(),
        }
    timings["evaluate"] = time.perf_counter() - stage
    return FitResult(trainer.model, tokenizer, label_map,
                     {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))},
                     test_predictions, timings)


def class_weights(label_counts: dict[str, dict[str, int]], label_map: LabelMap) -> list[float]:
    """sklearn's "balanced": n_train / (n_classes * train rows of the class)."""
    train = [label_counts[label].get("train", 0) for label in label_map.labels]
    total = sum(train)
    return [total / (len(train) * max(1, n)) for n in train]


def _class_weighted_loss(config: PipelineConfig, manifest: dict, label_map: LabelMap):
    """A ``compute_loss_func`` for the Trainer (no subclass), or None."""
    if config.train.class_weights == "none" or config.task == "multi_label":
        return None
    import torch

    weights = torch.tensor(class_weights(manifest["data_card"]["label_counts"], label_map), dtype=torch.float32)
    say(f"train: class weights {dict(zip(label_map.labels, [round(w, 3) for w in weights.tolist()]))}")

    def weighted_cross_entropy(outputs, labels, num_items_in_batch=None):
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs[0]
        return torch.nn.functional.cross_entropy(logits, labels, weight=weights.to(logits.device))

    return weighted_cross_entropy


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
