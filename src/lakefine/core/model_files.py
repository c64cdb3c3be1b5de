"""What a model directory says about itself, read from its files (no torch): the
fingerprints of the model and its tokenizer for cache keys, the longest input it takes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "spiece.model", "tokenizer_config.json", "special_tokens_map.json")


def tokenizer_fingerprint(model_dir: str) -> str:
    directory = Path(model_dir)
    if not directory.is_dir():
        return model_dir  # a hub id: its name is all we know without downloading it
    digest = hashlib.sha256()
    for name in TOKENIZER_FILES:
        if (directory / name).is_file():
            digest.update(name.encode() + (directory / name).read_bytes())
    return digest.hexdigest()[:16]


def model_max_length(model_dir: str) -> int:
    directory = Path(model_dir)
    for name, field_name in (("config.json", "max_position_embeddings"), ("tokenizer_config.json", "model_max_length")):
        if (directory / name).is_file():
            value = json.loads((directory / name).read_text()).get(field_name)
            if isinstance(value, int) and 0 < value < 1_000_000:
                return value
    return 512


WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".index.json")


def model_fingerprint(model_dir: str) -> str:
    """``config.json``'s content plus each weight file's name and size: another model
    with the same tokenizer is another dataset (hashing gigabytes of weights is not
    needed to tell models apart)."""
    directory = Path(model_dir)
    if not directory.is_dir():
        return model_dir  # a hub id: its name is all we know without downloading it
    digest = hashlib.sha256()
    if (directory / "config.json").is_file():
        digest.update((directory / "config.json").read_bytes())
    for weights in sorted(p for p in directory.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)):
        digest.update(f"{weights.name}\0{weights.stat().st_size}\n".encode())
    return digest.hexdigest()[:16]


def truncation_side(model_dir: str) -> str:
    """Which end transformers cuts a long text from (``tokenizer_config.json``'s
    ``truncation_side``; "right" unless the checkpoint says otherwise)."""
    config = Path(model_dir) / "tokenizer_config.json"
    if config.is_file():
        side = json.loads(config.read_text()).get("truncation_side")
        if side in ("left", "right"):
            return side
    return "right"
