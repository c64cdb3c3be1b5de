"""The published dataset: what the Spark side hands to the training side.

A directory named by its cache key holding Arrow shards and ``manifest.json``
(written last, so a directory without one is never read). Each row carries its
texts, label, split and row hash, and the model inputs tokenized in Spark
(``input_ids``, ``token_type_ids`` where the tokenizer marks segments, the seq2seq
``labels``, ``length``; see ``lakefine.core.tokenization``); the manifest's
``tokenized`` entry records how. The rows are ordered by (split, row_hash); each
split is a contiguous range of that order, so loading a split is a zero-copy
``select``. This module reads, finds and prunes published versions; writing them is
``lakefine.prep.publish``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from lakefine.core.config import TRAINING_ONLY_LABEL_KEYS, PipelineConfig
from lakefine.core.errors import HandoffError
from lakefine.core.files import write_json_atomically
from lakefine.core.leases import live_leases
from lakefine.core.model_files import model_fingerprint, tokenizer_fingerprint
from lakefine.core.tokenization import VERSION as TOKENIZATION_VERSION

# The published order of the splits: row order, manifest ranges, split ranks.
SPLITS = ("train", "validation", "test")
MANIFEST = "manifest.json"
# 2: the manifest records the settings in clear, the key covers the model files and
# no longer labels.threshold (training only). Older datasets are cache misses.
FORMAT_VERSION = 2


def cache_key(parts: dict) -> str:
    """A short, stable digest of everything that decides the published rows."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class PublishedDataset:
    path: Path
    manifest: dict

    @classmethod
    def open(cls, path: str | Path) -> PublishedDataset:
        path = Path(path)
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise HandoffError(f"{path} is not a complete published dataset (no {MANIFEST}); run `lakefine prepare`")
        manifest = json.loads(manifest_path.read_text())
        missing = [f for f in manifest["files"] if not (path / f).is_file()]
        if missing:
            raise HandoffError(
                f"{path}: manifest lists files that are gone: {missing[:3]}; run `lakefine prepare` again"
            )
        return cls(path, manifest)

    @property
    def key(self) -> str:
        return self.manifest["key"]

    @property
    def split_rows(self) -> dict[str, int]:
        return {name: end - start for name, (start, end) in self.manifest["splits"].items()}

    def load(self):
        """A DatasetDict over the published Arrow files (memory-mapped, zero copy)."""
        # Lazy: the core stays importable in a second; only readers of the rows need datasets.
        from datasets import Dataset, DatasetDict, concatenate_datasets

        shards = [Dataset.from_file(str(self.path / f)) for f in self.manifest["files"]]
        full = concatenate_datasets(shards) if len(shards) > 1 else shards[0]
        return DatasetDict(
            {
                name: full.select(range(start, end))
                for name, (start, end) in self.manifest["splits"].items()
                if end > start
            }
        )


def find_published(root: Path, key: str) -> PublishedDataset | None:
    candidate = root / key
    if (candidate / MANIFEST).is_file():
        return PublishedDataset.open(candidate)
    return None


def latest_published(root: Path) -> PublishedDataset | None:
    complete = _complete_manifests(root)
    if not complete:
        return None
    newest = max(complete, key=lambda p: json.loads(p.read_text())["published_at"])
    return PublishedDataset.open(newest.parent)


def _complete_manifests(root: Path) -> list[Path]:
    """Manifests of published versions; a hidden ``.staging-*`` directory may hold a
    manifest too (killed before its rename) and is never a published version."""
    if not root.is_dir():
        return []
    return [p for p in root.glob("*/" + MANIFEST) if not p.parent.name.startswith(".")]


def complete_versions(root: Path) -> list[PublishedDataset]:
    """Every complete published version under ``root``, newest first."""
    found = [PublishedDataset.open(p.parent) for p in _complete_manifests(root)]
    return sorted(found, key=lambda d: d.manifest["published_at"], reverse=True)


def prune_versions(
    root: Path, keep: int, lease_seconds: float = 300.0, quarantine_root: Path | None = None
) -> list[Path]:
    """Remove all but the ``keep`` newest complete versions (with their tokenized
    caches, inside them, and their quarantine under ``quarantine_root``), and abandoned
    staging dirs. Never removed: the version the pointer names (what ``train`` reads
    next) and a version a live training holds a lease on (what it reads now)."""
    removed = []
    complete = sorted(
        (p.parent for p in _complete_manifests(root)),
        key=lambda d: json.loads((d / MANIFEST).read_text())["published_at"],
        reverse=True,
    )
    pointed_key = (read_pointer(root) or {}).get("key")
    for stale in complete[keep:]:
        if stale.name == pointed_key or live_leases(stale, lease_seconds):
            continue
        shutil.rmtree(stale, ignore_errors=True)
        removed.append(stale)
        if quarantine_root is not None and (quarantine_root / stale.name).is_dir():
            shutil.rmtree(quarantine_root / stale.name, ignore_errors=True)
            removed.append(quarantine_root / stale.name)
    for partial in root.glob(".staging-*"):
        # Another process may be publishing right now: only sweep old leftovers.
        if time.time() - partial.stat().st_mtime > 6 * 3600:
            shutil.rmtree(partial, ignore_errors=True)
            removed.append(partial)
    return removed


def split_ranges(split_rows: dict[str, int]) -> dict[str, list[int]]:
    """``{split: [start, end)}`` in the published order, from the rows per split."""
    ranges, start = {}, 0
    for name in SPLITS:
        rows = split_rows.get(name, 0)
        ranges[name] = [start, start + rows]
        start += rows
    return ranges


# ---------------------------------------------------------------- the prepare -> train seam

# ``<datasets root>/CURRENT.json`` names the dataset ``prepare`` produced or found last
# for the pipeline: ``train`` reads that one, never "the newest".
POINTER = "CURRENT.json"


def point_to(root: Path, published: PublishedDataset) -> None:
    write_json_atomically(root / POINTER, {"key": published.key, "pointed_at": time.time()})


def read_pointer(root: Path) -> dict | None:
    file = root / POINTER
    return json.loads(file.read_text()) if file.is_file() else None


def pointed_dataset(root: Path) -> PublishedDataset | None:
    """The dataset the pointer names; None before the first prepare. A pointer to a
    dataset that is gone is an error, never a silent fallback to another version."""
    pointer = read_pointer(root)
    if pointer is None:
        return None
    return PublishedDataset.open(root / pointer["key"])


# ---------------------------------------------------------------- what a dataset was prepared with


def dataset_settings(config: PipelineConfig, model_dir: str) -> dict:
    """Everything besides the data that decides the published rows, keyed like the
    config: the cache key hashes it, the manifest keeps it in clear, and ``train``
    compares it with the config it is about to log. ``labels.threshold`` (and the
    other threshold settings) are left out: only training uses them."""
    return {
        "format": FORMAT_VERSION,
        "task": config.task,
        "split": config.split.model_dump(),
        "labels": config.labels.model_dump(exclude=set(TRAINING_ONLY_LABEL_KEYS)),
        "model": {
            "name_or_path": config.model.name_or_path,
            "max_length": config.model.max_length,  # as configured: "auto" compares with "auto"
            "files": model_fingerprint(model_dir),
            "tokenizer": tokenizer_fingerprint(model_dir),
        },
        "seq2seq": config.seq2seq.model_dump() if config.task == "seq2seq" else None,
        # The rows carry token ids made in Spark, by this version of the encoding
        # (lakefine.core.tokenization); a dataset without the entry (an older lakefine)
        # has none, and training tokenizes it itself.
        "tokenized": TOKENIZATION_VERSION,
    }


def _flat(settings: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in settings.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def settings_mismatch(manifest: dict, settings: dict) -> list[str]:
    """``key: dataset <value>, config <value>`` for every setting that differs."""
    recorded = manifest.get("settings")
    if recorded is None:
        return [f"format: the dataset was prepared by an older lakefine (format {manifest.get('format_version')})"]
    prepared, wanted = _flat(recorded), _flat(settings)
    return [
        f"{key}: dataset {prepared.get(key)!r}, config {wanted.get(key)!r}"
        for key in sorted(set(prepared) | set(wanted))
        if prepared.get(key) != wanted.get(key)
    ]
