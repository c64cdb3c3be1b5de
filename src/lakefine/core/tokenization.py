"""The token ids a published dataset carries, made by one function on both sides.

``prepare`` runs ``encode`` in Spark (a pandas_udf, ``lakefine.prep.tokenize``) on the
model's fast tokenizer loaded from its ``tokenizer.json``; training runs the same
``encode`` on the backend of the transformers tokenizer it loads, for a dataset that
carries no ids (an older lakefine) or ids its tokenizer would not make. ``encode``
takes a ``tokenizers.Tokenizer`` and imports nothing itself: transformers' tokenizer
classes import torch (5.x), which the Spark side must never load.

What ``encode`` reproduces, per task shape, is what training did with
``tokenizer(...)`` before the ids moved to Spark:

- single texts and multi-label: ``tokenizer(texts, truncation=True, max_length=L)``;
- sentence pairs: ``tokenizer(texts, pairs, truncation=True, max_length=L)``, i.e.
  ``longest_first`` (the longer text loses tokens first);
- seq2seq: ``question_prefix`` + text paired with ``context_prefix`` + context,
  ``truncation="only_second"`` (only the context is cut), no token types; targets
  ``tokenizer(text_target=targets, truncation=True, max_length=target_max_length)``
  as ``labels`` (the collator pads them with -100).

No padding and no attention mask: the collator pads per batch and builds the mask.
``token_type_ids`` are kept only when the tokenizer marks segments with a non-zero
type id (BERT pairs); all-zero type ids (single BERT texts) are what the models
assume without them, so they are not stored. ``length`` (input tokens) is what the
length-grouped sampler reads.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

# Bump when ``encode`` changes what it writes: the dataset settings carry it, so the
# cache key changes and every dataset is tokenized again.
VERSION = 1
# Every column ``encode`` may write.
ID_COLUMNS = ("input_ids", "token_type_ids", "labels", "length")


@dataclass(frozen=True)
class Encoding:
    """Everything besides the tokenizer that decides the ids (recorded in the manifest)."""

    task: str  # config.task
    max_length: int
    with_pair: bool  # a second text (the pair, or the seq2seq context)
    token_type_ids: bool = False
    target_max_length: int | None = None  # seq2seq only
    question_prefix: str = ""
    context_prefix: str = ""
    truncation_side: str = "right"  # the tokenizer's: which end a long text loses

    @classmethod
    def of(
        cls,
        task: str,
        max_length: int,
        with_pair: bool,
        tokenizer,
        truncation_side: str = "right",
        target_max_length: int | None = None,
        seq2seq: dict | None = None,
    ) -> Encoding:
        """The encoding of a task shape; ``seq2seq`` holds the two prefixes."""
        if task == "seq2seq":
            return cls(
                task,
                int(max_length),
                with_pair,
                token_type_ids=False,  # T5 and encoder-decoders take no token types
                target_max_length=int(target_max_length),
                question_prefix=seq2seq["question_prefix"],
                context_prefix=seq2seq["context_prefix"] if with_pair else "",
                truncation_side=truncation_side,
            )
        return cls(
            task, int(max_length), with_pair, marks_segments(tokenizer, with_pair), truncation_side=truncation_side
        )

    @property
    def seq2seq(self) -> bool:
        return self.task == "seq2seq"

    @property
    def truncation(self) -> str:
        return "only_second" if self.seq2seq and self.with_pair else "longest_first"

    @property
    def columns(self) -> list[str]:
        """The columns ``encode`` returns, in order."""
        return (
            ["input_ids"]
            + (["token_type_ids"] if self.token_type_ids else [])
            + (["labels"] if self.seq2seq else [])
            + ["length"]
        )

    def to_json(self) -> dict:
        return {"version": VERSION, **asdict(self), "truncation": self.truncation, "columns": self.columns}


def encode(tokenizer, encoding: Encoding, texts, pairs=None, targets=None) -> dict[str, list]:
    """One batch of rows -> ``{column: values}`` for ``encoding.columns``. ``tokenizer``
    is a ``tokenizers.Tokenizer``; its own truncation and padding are restored after."""
    texts = list(texts)
    pairs = list(pairs) if pairs is not None and encoding.with_pair else None
    if encoding.seq2seq:
        texts = [encoding.question_prefix + text for text in texts]
        if pairs is not None:
            pairs = [encoding.context_prefix + pair for pair in pairs]
    with _truncating(tokenizer, encoding.max_length, encoding.truncation, encoding.truncation_side):
        encoded = tokenizer.encode_batch_fast(list(zip(texts, pairs)) if pairs is not None else texts)
    columns = {"input_ids": [e.ids for e in encoded]}
    if encoding.token_type_ids:
        columns["token_type_ids"] = [e.type_ids for e in encoded]
    if encoding.seq2seq:
        with _truncating(tokenizer, encoding.target_max_length, "longest_first", encoding.truncation_side):
            columns["labels"] = [e.ids for e in tokenizer.encode_batch_fast(list(targets))]
    columns["length"] = [len(ids) for ids in columns["input_ids"]]
    return columns


def marks_segments(tokenizer, with_pair: bool) -> bool:
    """True when the tokenizer gives some token a non-zero type id (BERT: the second
    text of a pair). Decided by the tokenizer alone, never by the data."""
    with _truncating(tokenizer, 16, "longest_first"):
        probe = tokenizer.encode("a", "b") if with_pair else tokenizer.encode("a")
    return any(probe.type_ids)


@contextlib.contextmanager
def _truncating(tokenizer, max_length: int, strategy: str, side: str = "right"):
    """Truncate at ``max_length`` with ``strategy``, never pad (some tokenizer.json files
    pad to 128 by themselves), as transformers' tokenizer call does; then put the
    tokenizer's settings back: a cached tokenizer also counts untruncated lengths."""
    truncation, padding = tokenizer.truncation, tokenizer.padding
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length, stride=0, strategy=strategy, direction=side)
    try:
        yield
    finally:
        if truncation is None:
            tokenizer.no_truncation()
        else:
            tokenizer.enable_truncation(**truncation)
        if padding is not None:
            tokenizer.enable_padding(**padding)
