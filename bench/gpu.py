"""The GPU training benchmark: lakefine's training arguments on a CUDA GPU (bf16 where
supported, TF32, pinned-memory dataloader workers; lakefine.training.common.device_arguments)
with dynamic padding, against the same model padded to 128 tokens, for MiniLM and a
BERT-base-sized model, in one run: samples/s, non-pad tokens/s, mean GPU utilisation
and peak memory.

    .venv/bin/python bench/gpu.py [--steps 60] [--out bench/results/gpu.json]

Without a CUDA device it says so, writes ``{"skipped": ...}`` and exits 0: nothing is
measured on the CPU in its place (``--device cpu --models tiny`` only checks the code
path, as tests/test_bench_gpu.py does).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
WARMUP_STEPS = 3  # kernel selection, allocator growth, torch.compile if on: not timed
MAX_LENGTH = 128  # the baseline's padding, and the truncation of both


def model_config(name: str, vocab_size: int):
    """Random-weight configs: ``bert-base`` has BERT-base's shape (110M parameters),
    ``tiny`` is the code-path check's."""
    from transformers import BertConfig

    shapes = {
        "bert-base": {
            "hidden_size": 768,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "intermediate_size": 3072,
        },
        "tiny": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64},
    }
    return BertConfig(vocab_size=vocab_size, num_labels=2, **shapes[name])


def load_model(name: str, tokenizer, minilm_dir: str):
    from transformers import AutoModelForSequenceClassification

    if name == "minilm":
        return AutoModelForSequenceClassification.from_pretrained(minilm_dir, num_labels=2)
    return AutoModelForSequenceClassification.from_config(model_config(name, len(tokenizer)))


def review_texts(limit: int) -> list[str]:
    """Real Rotten Tomatoes reviews, read from the bundled data package."""
    import pandas as pd

    from lakefine.core.assets import DATASETS, package_dir

    package, inner, _ = DATASETS["rotten_tomatoes"]
    frame = pd.read_csv(package_dir(package) / inner)
    return frame["text"].dropna().astype(str).head(limit).tolist()


class StepClock:
    """A TrainerCallback timing the steps after the warm-up, sampling GPU utilisation."""

    def __init__(self, device: str):
        from transformers import TrainerCallback

        clock = self

        class _Callback(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if state.global_step == WARMUP_STEPS:
                    clock.start()

        self.callback = _Callback()
        self.device, self.started, self.samples = device, None, []
        self._stop = threading.Event()

    def start(self) -> None:
        self.started = time.perf_counter()
        if self.device == "cuda":
            threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        import torch

        while not self._stop.wait(0.5):
            try:
                self.samples.append(torch.cuda.utilization())
            except Exception:  # no pynvml: utilisation is reported as not available
                return

    def stop(self) -> float:
        self._stop.set()
        return time.perf_counter() - self.started


def measure(model_name: str, padding: str, device: str, steps: int, batch_size: int, texts: list[str]) -> dict:
    """``steps`` optimizer steps of ``model_name`` with lakefine's arguments for
    ``device``; ``padding`` is "dynamic" (lakefine's collator) or "max_length" (128)."""
    import torch
    from datasets import Dataset
    from transformers import AutoTokenizer, DataCollatorWithPadding, Trainer, TrainingArguments

    from lakefine.core.assets import resolve_model
    from lakefine.core.config import load_config
    from lakefine.training.common import device_arguments

    minilm = resolve_model("minilm")
    tokenizer = AutoTokenizer.from_pretrained(minilm)
    pad = {"padding": "max_length"} if padding == "max_length" else {}
    encoded = tokenizer(texts, truncation=True, max_length=MAX_LENGTH, **pad)
    data = Dataset.from_dict({**encoded, "labels": [i % 2 for i in range(len(texts))]})
    real_tokens = sum(map(sum, encoded["attention_mask"]))  # pads have mask 0 in either padding
    config = load_config(REPO / "pipelines/rotten_tomatoes.yaml")
    arguments = device_arguments(config) if device == "cuda" else {"use_cpu": True, "dataloader_num_workers": 0}
    model = load_model(model_name, tokenizer, minilm)
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    clock = StepClock(device)
    trainer = Trainer(
        model=model,
        args=TrainingArguments(
            output_dir=str(REPO / ".lakefine" / "gpu-bench"),
            max_steps=steps,
            per_device_train_batch_size=batch_size,
            learning_rate=5e-5,
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            **arguments,
        ),
        train_dataset=data,
        data_collator=DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if device == "cuda" else None),
        callbacks=[clock.callback],
    )
    trainer.train()
    seconds = clock.stop()
    samples = (steps - WARMUP_STEPS) * batch_size / seconds
    return {
        "model": model_name,
        "padding": padding,
        "parameters": sum(p.numel() for p in model.parameters()),
        "samples_per_s": samples,
        # the sampler draws rows uniformly: the mean real length times samples/s
        "non_pad_tokens_per_s": samples * real_tokens / len(texts),
        "peak_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None,
        "gpu_utilisation_pct": sum(clock.samples) / len(clock.samples) if clock.samples else None,
        "arguments": arguments,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--models", nargs="*", default=["minilm", "bert-base"])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--out", default=str(BENCH / "results" / "gpu.json"))
    args = parser.parse_args(argv)
    if args.steps <= WARMUP_STEPS:
        parser.error(f"--steps must be more than the {WARMUP_STEPS} warm-up steps")
    import torch

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.device == "cuda" and not torch.cuda.is_available():
        reason = f"no CUDA device (torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'})"
        print(f"[bench] gpu: skipped: {reason}; nothing measured", file=sys.stderr)
        out.write_text(json.dumps({"skipped": reason}, indent=2))
        return 0
    texts = review_texts(args.steps * args.batch_size)
    rows = []
    for name in args.models:
        pair = {p: measure(name, p, args.device, args.steps, args.batch_size, texts) for p in ("dynamic", "max_length")}
        ratio = {k: pair["dynamic"][k] / pair["max_length"][k] for k in ("samples_per_s", "non_pad_tokens_per_s")}
        rows.append({"model": name, "lakefine": pair["dynamic"], "pad_128": pair["max_length"], "ratio": ratio})
        print(
            f"[bench] gpu {name}: {pair['dynamic']['samples_per_s']:.1f} vs {pair['max_length']['samples_per_s']:.1f}"
            f" samples/s ({ratio['samples_per_s']:.2f}x), non-pad tokens/s {ratio['non_pad_tokens_per_s']:.2f}x",
            file=sys.stderr,
        )
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    meta = {"device": device_name, "steps": args.steps, "batch_size": args.batch_size, "warmup_steps": WARMUP_STEPS}
    out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
