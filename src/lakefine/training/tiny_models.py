"""Tiny models built from config with MiniLM's real tokenizer: they wire the whole
pipeline in seconds (smoke runs, tests). ``lakefine.core.assets`` runs this module in
a subprocess (``python -m lakefine.training.tiny_models <name> <target>``) so that
resolving a model name never loads torch into the Spark side."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import torch
from transformers import AutoTokenizer, BertConfig, BertModel, EncoderDecoderModel, T5Config, T5ForConditionalGeneration

from lakefine.core.assets import BERT2BERT, TINY_MODEL, TINY_T5, resolve_model


def _build_once(target: Path, make_model) -> Path:
    """Build a model directory once (atomically), with MiniLM's real tokenizer."""
    if (target / "config.json").is_file():
        return target
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
    return _build_once(
        target,
        lambda tokenizer: BertModel(
            BertConfig(
                vocab_size=tokenizer.vocab_size,
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                intermediate_size=64,
                max_position_embeddings=512,
            )
        ),
    )


def build_tiny_t5(target: Path) -> Path:
    """A tiny random T5 (2 layers, d_model 32) on MiniLM's WordPiece vocabulary: the
    T5 code path without a SentencePiece model (none is reachable offline)."""
    return _build_once(
        target,
        lambda tokenizer: T5ForConditionalGeneration(
            T5Config(
                vocab_size=tokenizer.vocab_size,
                d_model=32,
                d_ff=64,
                d_kv=16,
                num_layers=2,
                num_heads=2,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.sep_token_id,
                decoder_start_token_id=tokenizer.pad_token_id,
            )
        ),
    )


def build_bert2bert(target: Path) -> Path:
    """An encoder-decoder warm-started from the real MiniLM on both sides (49M params)."""

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


BUILDERS = {TINY_MODEL: build_tiny_model, TINY_T5: build_tiny_t5, BERT2BERT: build_bert2bert}

if __name__ == "__main__":
    name, target = sys.argv[1], Path(sys.argv[2])
    BUILDERS[name](target)
