"""Preparation, start to publish: read -> clean -> split -> labels -> data card ->
handoff. The stages are pure DataFrame functions; this module does the I/O around
them and reports the counts (input rows = used + quarantined, always)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from lakefine import assets, datacard, handoff, paths
from lakefine.clean import mark_unusable, to_canonical, with_key
from lakefine.config import PipelineConfig
from lakefine.errors import DataError
from lakefine.labels import LabelMap, apply_label_ids
from lakefine.log import say
from lakefine.session import get_spark, session_kind
from lakefine.sources import read_source, require_columns
from lakefine.split import assign_split


@dataclass(frozen=True)
class PrepareResult:
    dataset: handoff.PublishedDataset
    label_map: LabelMap
    counts: dict  # input, used, quarantined, by_reason
    cache_hit: bool
    quarantine_path: Optional[str] = None
    timings: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {
            "dataset": str(self.dataset.path),
            "key": self.dataset.key,
            "cache_hit": self.cache_hit,
            "rows": self.counts,
            "splits": self.dataset.split_rows,
            "labels": list(self.label_map.labels),
            "max_length": self.dataset.manifest["max_length"],
            "quarantine": self.quarantine_path,
            "data_card": self.dataset.manifest["data_card"],
        }


def datasets_root(config: PipelineConfig) -> Path:
    return paths.resolve(f"{config.runtime.volume}/datasets/{config.name}", config.runtime.local_root)


def prepare(config: PipelineConfig, spark=None, df: Optional[DataFrame] = None) -> PrepareResult:
    """Run preparation. ``df`` replaces the configured source (notebooks pass one)."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    spark = spark or get_spark(config.runtime.spark_master)
    timings["spark_start"] = time.perf_counter() - started

    stage = time.perf_counter()
    raw = df if df is not None else read_source(spark, config.source, config.runtime)
    src = config.source
    require_columns(raw, {
        "source.text_column": src.text_column,
        "source.text_pair_column": src.text_pair_column,
        "source.label_column": src.label_column,
        "source.id_column": src.id_column,
    })
    rows = assign_split(with_key(mark_unusable(to_canonical(raw, src), config.labels)), config.split)
    rows = _quarantine_conflicts(rows).persist()
    try:
        result = _prepare_rows(config, spark, rows, timings)
    finally:
        rows.unpersist()
    timings["prepare_total"] = time.perf_counter() - stage
    return dataclasses.replace(result, timings=timings)


def _prepare_rows(config: PipelineConfig, spark, rows: DataFrame, timings: dict) -> PrepareResult:
    stage = time.perf_counter()
    # One groupBy gives the label discovery, the per-split counts and the reasons.
    grouped = rows.groupBy("reason", "label", "split").count().collect()
    by_reason: dict[str, int] = {}
    for row in grouped:
        if row["reason"]:
            by_reason[row["reason"]] = by_reason.get(row["reason"], 0) + row["count"]
    usable_counts: dict[str, dict[str, int]] = {}  # {label: {split: rows}}
    for row in grouped:
        if row["reason"] is None:
            usable_counts.setdefault(row["label"], {})[row["split"]] = row["count"]
    input_rows = sum(row["count"] for row in grouped)
    if input_rows == 0:
        raise DataError(f"{_where(config)}: the source has no rows")

    # Label policy: rare classes and classes absent from train cannot be learned.
    rare = {label for label, c in usable_counts.items() if sum(c.values()) < config.labels.min_count}
    not_in_train = {label for label, c in usable_counts.items() if not c.get("train")} - rare
    kept = {label: c for label, c in usable_counts.items() if label not in rare | not_in_train}
    for reason, labels in (("rare_label", rare), ("label_not_in_train", not_in_train)):
        if labels:
            by_reason[reason] = sum(sum(usable_counts[label].values()) for label in labels)
    datacard.check_usable(kept, _where(config))
    label_map = LabelMap.from_labels(kept)
    timings["discover_labels"] = time.perf_counter() - stage

    reason = F.col("reason")
    if rare:
        reason = F.when(reason.isNull() & F.col("label").isin(sorted(rare)), "rare_label").otherwise(reason)
    if not_in_train:
        reason = F.when(reason.isNull() & F.col("label").isin(sorted(not_in_train)),
                        "label_not_in_train").otherwise(reason)
    rows = rows.withColumn("reason", reason)
    used = apply_label_ids(rows.where(F.col("reason").isNull()), label_map)
    quarantined = rows.where(F.col("reason").isNotNull())
    counts = {
        "input": input_rows,
        "used": input_rows - sum(by_reason.values()),
        "quarantined": sum(by_reason.values()),
        "by_reason": dict(sorted(by_reason.items())),
    }

    stage = time.perf_counter()
    model_dir = assets.resolve_model(config.model.name_or_path, config.runtime.local_root)
    key = handoff.cache_key({
        "format": handoff.FORMAT_VERSION,
        "task": config.task,
        "data": _content_digest(used),
        "labels": label_map.fingerprint,
        "split": dataclasses.asdict(config.split),
        "label_policy": dataclasses.asdict(config.labels),
        "tokenizer": tokenizer_fingerprint(model_dir),
        "max_length": config.model.max_length,
    })
    timings["cache_key"] = time.perf_counter() - stage
    root = datasets_root(config)
    existing = handoff.find_published(root, key)
    quarantine_dir = paths.resolve(f"{config.runtime.volume}/quarantine/{config.name}/{key}",
                                   config.runtime.local_root)
    if existing is not None:
        say(f"prepare: cache hit {existing.path} ({counts['used']:,} rows, data unchanged)")
        return PrepareResult(existing, label_map, counts, True,
                             str(quarantine_dir) if counts["quarantined"] else None)

    stage = time.perf_counter()
    percentiles = datacard.length_percentiles(used, model_dir, config.split.seed)
    max_length = (config.model.max_length if config.model.max_length != "auto"
                  else datacard.choose_max_length(percentiles, model_max_length(model_dir)))
    card = {
        "rows": counts,
        "label_counts": {label: kept[label] for label in label_map.labels},
        "token_lengths": percentiles,
        **datacard.duplicate_stats(used),
    }
    timings["data_card"] = time.perf_counter() - stage
    say(f"prepare: {counts['input']:,} rows in, {counts['used']:,} used, {counts['quarantined']:,}"
        f" quarantined {counts['by_reason'] or ''}; labels {list(label_map.labels)};"
        f" tokens p50/p99/max {percentiles['p50']}/{percentiles['p99']}/{percentiles['p100']}"
        f" -> max_length {max_length}")

    stage = time.perf_counter()
    if counts["quarantined"]:
        quarantined.drop("key").write.mode("overwrite").parquet(str(quarantine_dir))
    method = config.runtime.handoff
    if method == "auto":
        method = "parquet" if session_kind(spark) == "connect" else "from_spark"
    columns = ["text"] + (["text_pair"] if "text_pair" in used.columns else []) + ["label", "split", "row_hash"]
    published = handoff.publish(
        used.withColumn("label", F.col("label_id")).select(*columns),
        root=root,
        key=key,
        features=dataset_features(label_map, "text_pair" in used.columns),
        split_rows={s: sum(c.get(s, 0) for c in kept.values()) for s in ("train", "validation", "test")},
        method=method,
        working_dir=paths.scratch_dir(config.runtime.working_dir, "working"),
        num_partitions=int(spark.conf.get("spark.sql.shuffle.partitions") or 4),
        manifest_extra={
            "pipeline": config.name,
            "task": config.task,
            "label_map": label_map.to_json(),
            "max_length": max_length,
            "model_dir": model_dir,
            "data_card": card,
        },
    )
    handoff.prune_versions(root, config.runtime.keep_versions)
    timings["handoff"] = time.perf_counter() - stage
    say(f"prepare: published {published.path} ({published.split_rows}) via {method}"
        f" in {timings['handoff']:.1f} s")
    return PrepareResult(published, label_map, counts, False,
                         str(quarantine_dir) if counts["quarantined"] else None)


def _quarantine_conflicts(rows: DataFrame) -> DataFrame:
    """The same key with two different labels cannot be learned: quarantine all of them."""
    labels_per_key = F.size(F.collect_set("label").over(Window.partitionBy("key")))
    usable = F.col("reason").isNull()
    return rows.withColumn(
        "reason",
        F.when(usable & (labels_per_key > 1), F.lit("conflicting_labels")).otherwise(F.col("reason")),
    )


def _content_digest(df: DataFrame) -> list:
    """Row count plus an order-independent sum of row hashes: changes when any row does."""
    columns = [c for c in ("text", "text_pair", "label_id", "split") if c in df.columns]
    row = df.agg(
        F.count("*").alias("rows"),
        F.sum(F.xxhash64(*columns).cast("decimal(38,0)")).alias("hash_sum"),
    ).first()
    return [int(row["rows"]), str(row["hash_sum"])]


def tokenizer_fingerprint(model_dir: str) -> str:
    directory = Path(model_dir)
    if not directory.is_dir():
        return model_dir  # a hub id: its name is all we know without downloading it
    digest = hashlib.sha256()
    for name in ("tokenizer.json", "vocab.txt", "spiece.model", "tokenizer_config.json",
                 "special_tokens_map.json"):
        if (directory / name).is_file():
            digest.update(name.encode() + (directory / name).read_bytes())
    return digest.hexdigest()[:16]


def model_max_length(model_dir: str) -> int:
    directory = Path(model_dir)
    for name, field_name in (("config.json", "max_position_embeddings"),
                             ("tokenizer_config.json", "model_max_length")):
        if (directory / name).is_file():
            value = json.loads((directory / name).read_text()).get(field_name)
            if isinstance(value, int) and 0 < value < 1_000_000:
                return value
    return 512


def dataset_features(label_map: LabelMap, with_pair: bool):
    from datasets import ClassLabel, Features, Value

    columns = {"text": Value("string")}
    if with_pair:
        columns["text_pair"] = Value("string")
    columns.update({"label": ClassLabel(names=list(label_map.labels)), "split": Value("string"),
                    "row_hash": Value("int64")})
    return Features(columns)


def _where(config: PipelineConfig) -> str:
    src = config.source
    return f"source {src.table or src.path or 'sql'} (text {src.text_column!r}, label {src.label_column!r})"
