"""What every task shape's training shares: loading pretrained parts with one clear
error, the model inputs (the token ids the published dataset carries, made in Spark;
tokenized here only for a dataset without them), the TrainingArguments with the
measured fast defaults, and SIGTERM handling (a spot preemption saves a checkpoint,
then raises ``Preempted``)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, EarlyStoppingCallback, TrainingArguments
from transformers.trainer_pt_utils import LengthGroupedSampler

from lakefine.core.config import PipelineConfig
from lakefine.core.dataset import PublishedDataset
from lakefine.core.errors import Preempted, TrainingError
from lakefine.core.labels import LabelMap
from lakefine.core.log import first_line, say
from lakefine.core.tokenization import ID_COLUMNS, Encoding, encode


@dataclass
class FitResult:
    model: object
    tokenizer: object
    label_map: LabelMap | None
    metrics: dict  # validation and test metrics
    test_predictions: dict  # row_hash, label, predictions on the test split
    timings: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)  # fitted on validation, saved with the model (thresholds, T)
    evaluations: dict = field(default_factory=dict)  # split -> lakefine.evaluation.scoring.Evaluation
    runtime: dict = field(default_factory=dict)  # what the model ran with (runtime_params), for the run


def runtime_params(model) -> dict:
    """The run's params of what training really used, known only once the model is
    loaded: the attention kernel transformers picked (eager, sdpa, flash_attention_2),
    the weights' dtype (bf16 autocast leaves them float32) and the device type."""
    return {
        "train.attn_implementation": getattr(model.config, "_attn_implementation", None) or "eager",
        "train.weights_dtype": str(model.dtype).removeprefix("torch."),
        "train.device": model.device.type,
    }


def load_pretrained(auto_class, model_dir: str, what: str, **kwargs):
    """``auto_class.from_pretrained`` with one clear error naming the config key."""
    try:
        return auto_class.from_pretrained(model_dir, **kwargs)
    except (OSError, ValueError) as exc:
        raise TrainingError(
            f"model.name_or_path: cannot load {what} from {model_dir}"
            f" ({first_line(exc)}); point it at a save_pretrained directory"
        ) from None


def load_tokenizer(model_dir: str, max_length: int):
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


# The published columns that are not model inputs (the Trainer would drop most of them
# by itself; ``length`` stays for the length-grouped sampler, ``label`` for the loss).
TEXT_COLUMNS = ["text", "text_pair", "target", "split", "row_hash"]
# Rows of a pre-tokenized dataset that training tokenizes again to check the ids.
CHECKED_ROWS = 32


def encoding_for(config: PipelineConfig, published: PublishedDataset, tokenizer, data) -> Encoding:
    """How this training encodes the rows: the dataset's lengths, the config's seq2seq
    prefixes, the tokenizer's truncation side and segment marks."""
    manifest = published.manifest
    return Encoding.of(
        config.task,
        int(manifest["max_length"]),
        "text_pair" in data["train"].column_names,
        backend(tokenizer),
        truncation_side=tokenizer.truncation_side,
        target_max_length=int(manifest.get("target_max_length") or config.seq2seq.max_target_length),
        seq2seq=config.seq2seq.model_dump(),
    )


def model_inputs(data, tokenizer, published: PublishedDataset, encoding: Encoding):
    """The splits the Trainer reads. A dataset prepared by this lakefine carries the ids
    (tokenized in Spark by ``prepare``): they are used as they are, no tokenize stage.
    Otherwise (an older dataset, another encoding, ids this tokenizer would not make)
    the rows are tokenized here with the same ``encode``, batched and cached next to
    the dataset, as before the ids moved to Spark."""
    reason = _why_not_ready(data, tokenizer, published, encoding)
    if reason is None:
        ready = data.remove_columns([c for c in TEXT_COLUMNS if c in data["train"].column_names])
    else:
        say(f"train: tokenizing on the driver: {reason}")
        ready = cached_map(
            data.remove_columns([c for c in ID_COLUMNS if c in data["train"].column_names]),
            _encoder(backend(tokenizer), encoding),
            published,
            tokenizer_key(tokenizer, encoding.to_json()),
            TEXT_COLUMNS,
        )
    if "token_type_ids" in ready["train"].column_names and "token_type_ids" not in tokenizer.model_input_names:
        ready = ready.remove_columns("token_type_ids")  # what transformers' own call would return
    return ready


def backend(tokenizer):
    """The ``tokenizers.Tokenizer`` inside a transformers tokenizer (``encode``'s input)."""
    if not getattr(tokenizer, "is_fast", False):
        raise TrainingError(
            f"model.name_or_path: the tokenizer ({type(tokenizer).__name__}) is not a fast tokenizer;"
            " save the model with a tokenizer.json (transformers' tokenizer.save_pretrained writes one)"
        )
    return tokenizer.backend_tokenizer


def _encoder(fast, encoding: Encoding):
    def encode_batch(batch):
        return encode(fast, encoding, batch["text"], batch.get("text_pair"), batch.get("target"))

    return encode_batch


def _why_not_ready(data, tokenizer, published: PublishedDataset, encoding: Encoding) -> str | None:
    """None when the published ids are the ids this training would make, else why not.
    A few rows are encoded again (the first ones and the longest, where truncation
    shows): the Spark side read the model's tokenizer.json, which transformers may
    adjust when it builds the tokenizer (added tokens, a normalizer option)."""
    recorded = published.manifest.get("tokenized")
    if recorded is None:
        return "the dataset carries no token ids (prepared by an older lakefine)"
    if recorded != encoding.to_json():
        wanted = encoding.to_json()
        differ = sorted(k for k in set(recorded) | set(wanted) if recorded.get(k) != wanted.get(k))
        return f"its ids were made with other settings ({', '.join(differ)})"
    train = data["train"]
    lengths = np.asarray(train["length"][:])  # [:] reads the column at once; the lazy Column row by row
    longest = np.argsort(-lengths, kind="stable")[:CHECKED_ROWS].tolist()
    rows = sorted({*range(min(CHECKED_ROWS, len(train))), *longest})
    sample = train.select(rows).to_dict()
    expected = _encoder(backend(tokenizer), encoding)(sample)
    for column, values in expected.items():
        for row, published_ids, ids in zip(rows, sample[column], values):
            if published_ids != ids:
                return f"the published {column} of training row {row} are not this tokenizer's"
    return None


def sample_by_published_lengths(trainer) -> None:
    """Length-grouped batches from the dataset's ``length`` column (input tokens, written
    with the ids). transformers' own sampler is handed the train split after the columns
    the model does not take (``length`` among them) were dropped, so it decodes every
    row's ``input_ids`` to measure it again: most of a 27.7 s first step at 800k rows.
    Same sampler class, same lengths, same order (torch's global RNG, seeded as before).
    The Trainer has no public hook for its sampler: this replaces the method it calls."""
    train = trainer.train_dataset
    if trainer.args.train_sampling_strategy != "group_by_length" or "length" not in train.column_names:
        return
    lengths = train["length"][:]  # one Arrow read: a list, not the lazy column (40 us a row)
    batch = trainer.args.train_batch_size * trainer.args.gradient_accumulation_steps
    trainer._get_train_sampler = lambda dataset=None: LengthGroupedSampler(batch, lengths=lengths)


def length_ordered(split):
    """``split`` in ascending ``length``, for the Trainer's evaluation: its loader reads
    the rows in order and pads each batch to its longest row, so sorted rows pad far
    less, and the metrics (accuracy, F1, loss means) do not depend on the order. The
    sorted order is an in-memory index: nothing is written next to the published dataset."""
    if split is None or "length" not in split.column_names:
        return split
    # numpy's argsort, not Dataset.sort: datasets 5.2 names an indices cache file for a
    # dataset read from disk and then refuses it beside keep_in_memory
    order = np.argsort(np.asarray(split["length"][:]), kind="stable")
    return split.select(order, keep_in_memory=True)


def training_arguments(
    config: PipelineConfig, output_dir: Path, has_validation: bool, best_metric: str, args_class=None, **extra
):
    """The TrainingArguments every task shares: the fast defaults measured in bench/."""
    train_cfg = config.train
    every = train_cfg.checkpoint_steps or (train_cfg.max_steps if train_cfg.max_steps > 0 else None)
    strategy = "steps" if every else "epoch"
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
        report_to="none",  # tracking is lakefine's callback: it survives server outages
        disable_tqdm=os.environ.get("CI") == "true",
        **device_arguments(config),
        # Our models return a mean loss; True would scale it by the world size under DDP
        # (train.num_processes > 1): doubled gradients on 2 processes. No effect on 1.
        average_tokens_across_devices=False,
        **extra,
    )


def device_arguments(config: PipelineConfig) -> dict:
    """The TrainingArguments that depend on the hardware. On CPU exactly what training
    always used (no bf16, no dataloader workers: the batches are tiny and workers would
    compete with torch for the cores). On a CUDA GPU: bf16 where the GPU supports it,
    TF32 matmuls on Ampere or newer, dataloader workers that stay alive between epochs
    (collating and padding off the training loop) with pinned memory, and
    ``train.torch_compile`` if asked for."""
    if not torch.cuda.is_available():
        return {"bf16": False, "use_cpu": True, "dataloader_num_workers": 0}
    # A few workers per GPU, leaving a core for the training loop itself.
    per_gpu = max(1, torch.cuda.device_count())
    workers = max(1, min(4, (os.cpu_count() or 2) // per_gpu - 1))
    return {
        "bf16": torch.cuda.is_bf16_supported(),
        "tf32": torch.cuda.get_device_capability()[0] >= 8,  # Ampere (sm_80) and newer
        "use_cpu": False,
        "dataloader_num_workers": workers,
        "dataloader_pin_memory": True,
        "dataloader_persistent_workers": True,
        "torch_compile": config.train.torch_compile,
    }


def run_trainer(trainer, resume_from: Path | None, default_sigterm) -> None:
    """``trainer.train`` that raises Preempted when SIGTERM stopped it early."""
    with _sigterm_recorded(restore=default_sigterm) as preempted:
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    if preempted.is_set():
        raise Preempted(
            f"training stopped by SIGTERM at step {trainer.state.global_step} after saving a"
            " checkpoint; run the same command again to resume from it"
        )


def extra_callbacks(config: PipelineConfig, has_validation: bool) -> list:
    if config.train.early_stopping_patience and has_validation:
        return [EarlyStoppingCallback(config.train.early_stopping_patience)]
    return []


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
