"""Seq2seq inputs and outputs, built the same way for training and prediction: the
question with its prefix paired with the context with its prefix, truncating only the
context; generated ids decoded with padding and special tokens removed."""

from __future__ import annotations

import numpy as np


def encoder_inputs(tokenizer, questions, contexts, settings, max_length: int, **kwargs):
    questions = [settings["question_prefix"] + q for q in questions]
    if contexts is not None:
        contexts = [settings["context_prefix"] + c for c in contexts]
        return tokenizer(
            questions, contexts, truncation="only_second", max_length=max_length, return_token_type_ids=False, **kwargs
        )
    return tokenizer(questions, truncation=True, max_length=max_length, return_token_type_ids=False, **kwargs)


def decode(tokenizer, token_ids) -> list[str]:
    ids = np.where(np.asarray(token_ids) < 0, tokenizer.pad_token_id, np.asarray(token_ids))
    return [text.strip() for text in tokenizer.batch_decode(ids, skip_special_tokens=True)]
