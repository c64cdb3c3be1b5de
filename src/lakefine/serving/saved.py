"""What lakefine saves next to a model's ``save_pretrained`` files, so that a model
directory alone (no registry, no MLflow) predicts exactly what its evaluation scored:
``lakefine_model.json`` (task, label map, multi-label thresholds, the temperature, the
dataset it was trained on) and the model card ``README.md``."""

from __future__ import annotations

import json
from pathlib import Path

SETTINGS_FILE = "lakefine_model.json"
CARD_FILE = "README.md"


def read_settings(model_dir: str | Path) -> dict:
    """The saved settings; ``{}`` for a directory lakefine did not write (any HF model)."""
    file = Path(model_dir) / SETTINGS_FILE
    return json.loads(file.read_text()) if file.is_file() else {}


def write_settings(model_dir: str | Path, settings: dict) -> Path:
    path = Path(model_dir)
    path.mkdir(parents=True, exist_ok=True)
    (path / SETTINGS_FILE).write_text(json.dumps(settings, indent=2, sort_keys=True, default=str))
    return path / SETTINGS_FILE


def save_model(model, tokenizer, model_dir: str | Path, settings: dict, card: str | None = None) -> Path:
    """``save_pretrained`` for the model and tokenizer, plus the settings and the card."""
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    write_settings(model_dir, settings)
    if card is not None:
        (Path(model_dir) / CARD_FILE).write_text(card)
    return Path(model_dir)
