"""bench/gpu.py: without a CUDA device it skips cleanly (exit 0, says why, writes
only the reason); its measurement runs, on the CPU, through the same Trainer path
with the tiny model; its BERT-base-sized model has BERT-base's size."""

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
import gpu  # noqa: E402  (bench/ is not a package)


def test_without_cuda_the_gpu_bench_skips_and_says_why(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no device even on a GPU machine
    done = subprocess.run(
        [sys.executable, str(REPO / "bench/gpu.py"), "--out", str(out)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "gpu: skipped: no CUDA device" in done.stderr
    written = json.loads(out.read_text())
    assert list(written) == ["skipped"] and "no CUDA device" in written["skipped"]  # no numbers in its place


def test_the_measurement_runs_through_the_trainer_with_both_paddings():
    texts = gpu.review_texts(40)
    assert len(texts) == 40 and len(set(texts)) > 30  # real reviews
    dynamic, padded = (
        gpu.measure("tiny", p, "cpu", steps=5, batch_size=4, texts=texts) for p in ("dynamic", "max_length")
    )
    assert dynamic["samples_per_s"] > 0 and padded["samples_per_s"] > 0
    # non-pad tokens are the reviews' real lengths whatever the padding: same per sample
    per_sample = [r["non_pad_tokens_per_s"] / r["samples_per_s"] for r in (dynamic, padded)]
    assert per_sample[0] == pytest.approx(per_sample[1]) and 5 < per_sample[0] < gpu.MAX_LENGTH
    assert dynamic["peak_memory_gib"] is None and dynamic["arguments"]["use_cpu"] is True


def test_the_bert_base_sized_model_has_bert_bases_parameter_count():
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_config(gpu.model_config("bert-base", 30522))
    assert 105e6 < sum(p.numel() for p in model.parameters()) < 115e6  # BERT-base: 110M
