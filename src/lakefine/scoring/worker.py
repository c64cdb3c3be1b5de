"""What runs in each Python worker: the model loaded once per process (a
module-level cache, reused across Arrow batches and tasks), and the valid rows of an
Arrow batch predicted through ``serving.predictor.Predictor`` (so truncation,
thresholds and whatever else the saved model carries apply exactly as in ``lakefine
predict``), which sorts them by token length, cuts them into model batches capped by
rows and by padded tokens, and puts the answers back in the rows' order.

torch is imported only inside ``predictor()``: this module is imported on the driver
too (the UDF refers to it), and the driver never needs torch.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd

_LOADED: dict[str, object] = {}


def predictor(path: str, torch_threads: int | None, load_log: str | None = None):
    """The Predictor for ``path``, loaded once per Python worker process."""
    if path in _LOADED:
        return _LOADED[path]
    started = time.perf_counter()
    import torch  # worker side only: see the module docstring

    from lakefine.serving.predictor import Predictor

    loaded = Predictor.load(path)
    device = _device(torch)
    if device.type == "cuda":  # one model per GPU; bf16 where the GPU supports it
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        loaded.model.to(device=device, dtype=dtype)
    elif torch_threads:
        torch.set_num_threads(torch_threads)
    _LOADED[path] = loaded
    if load_log:  # one short line per load; O_APPEND keeps concurrent workers' lines whole
        line = json.dumps({"pid": os.getpid(), "path": path, "seconds": round(time.perf_counter() - started, 3)})
        with open(load_log, "a") as handle:
            handle.write(line + "\n")
    return loaded


def _device(torch):
    """The GPU Spark assigned to this task (GPU scheduling), else the first one, else CPU."""
    if not torch.cuda.is_available():
        return torch.device("cpu")
    try:
        from pyspark import TaskContext

        context = TaskContext.get()
        gpus = context.resources().get("gpu") if context else None
        if gpus and gpus.addresses:
            return torch.device(f"cuda:{gpus.addresses[0]}")
    except Exception:  # no task context (e.g. called outside Spark): the first GPU
        pass
    return torch.device("cuda:0")


def _problem(value, column: str) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return f"{column!r} is null"
    if not str(value).strip():
        return f"{column!r} is empty"
    return None


def score_batch(loaded, task: str, batch: pd.DataFrame, columns: list[str], max_rows: int, max_tokens: int):
    """One Arrow batch -> its predictions, same rows, same order. ``batch`` holds the
    text (and the pair or context) columns as ``c0``, ``c1``; ``columns`` their names in
    the input, for the ``score_error`` of a null or empty value."""
    n = len(batch)
    predictions: list = [None] * n
    errors: list = [None] * n
    values = [batch[f"c{i}"].tolist() for i in range(len(columns))]
    valid = []
    for row in range(n):
        problem = next(filter(None, (_problem(v[row], c) for v, c in zip(values, columns))), None)
        if problem:
            errors[row] = problem
        else:
            valid.append(row)
    if valid:
        texts = [values[0][row] for row in valid]
        pairs = [values[1][row] for row in valid] if len(values) > 1 else None
        # The predictor sorts the rows by token length and cuts them by rows and padded tokens
        got = loaded.predict(texts, pairs, batch_size=max_rows, max_tokens=max_tokens)
        for row, prediction in zip(valid, got):
            predictions[row] = _shaped(task, prediction)
    return pd.DataFrame({"prediction": predictions, "score_error": errors})


def _shaped(task: str, prediction: dict) -> dict:
    if task == "seq2seq":
        return {"answer": prediction["answer"]}
    if task == "multi_label":
        return {"labels": list(prediction["labels"]), "probabilities": prediction["probabilities"]}
    return {
        "label": prediction["label"],
        "label_id": int(prediction["label_id"]),
        "score": float(prediction["probabilities"][prediction["label"]]),
        "probabilities": prediction["probabilities"],
    }
