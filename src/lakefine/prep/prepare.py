"""Preparation, start to publish: read -> clean -> split -> labels -> data card ->
tokenize -> handoff. The stages are pure DataFrame functions; this module does the I/O around
them and reports the counts (input rows = used + quarantined, always).

``prepare`` reads top to bottom along the seams: usable rows, counts and the label
policy, the dataset key (a cache hit stops here), the data card, then publishing
(the rows tokenized in Spark at the data card's ``max_length`` on the way).
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from datasets import ClassLabel, Features, List, Value
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from lakefine.core import assets, paths
from lakefine.core.config import PipelineConfig
from lakefine.core.dataset import (
    SPLITS,
    PublishedDataset,
    cache_key,
    complete_versions,
    dataset_settings,
    find_published,
    point_to,
    prune_versions,
)
from lakefine.core.errors import DataError, HandoffError, LakefineError, TrainingError
from lakefine.core.files import write_failure
from lakefine.core.labels import LABEL_POLICY, NUMBER_PATTERN, LabelMap, case_variants, numeric_spellings
from lakefine.core.log import first_line, say
from lakefine.core.model_files import model_max_length
from lakefine.core.session import session_kind
from lakefine.core.tokenization import Encoding
from lakefine.prep import datacard, diagnose, tokenize
from lakefine.prep.clean import (
    FLAGS,
    fix_mojibake,
    label_strings,
    mark_unusable,
    quarantine_conflicts,
    quarantine_duplicates,
    to_canonical,
    unify_numeric_labels,
    with_key,
)
from lakefine.prep.label_ids import apply_label_ids, apply_multi_hot
from lakefine.prep.publish import publish
from lakefine.prep.session import get_spark
from lakefine.prep.sources import check_source_exists, read_source, require_columns
from lakefine.prep.split import assign_split
from lakefine.prep.versions import source_version


@dataclass(frozen=True)
class PrepareResult:
    dataset: PublishedDataset
    label_map: LabelMap | None  # None for seq2seq
    counts: dict  # input, used, quarantined, by_reason
    cache_hit: bool
    quarantine_path: str | None = None
    timings: dict = field(default_factory=dict)

    def summary(self) -> dict:
        return {
            "dataset": str(self.dataset.path),
            "key": self.dataset.key,
            "cache_hit": self.cache_hit,
            "rows": self.counts,
            "splits": self.dataset.split_rows,
            "labels": list(self.label_map.labels) if self.label_map else [],
            "max_length": self.dataset.manifest["max_length"],
            "quarantine": self.quarantine_path,
            "data_card": self.dataset.manifest["data_card"],
        }


@dataclass(frozen=True)
class Labelled:
    """The rows after the label policy: the map, every row with its final ``reason``,
    the usable rows with ``label_id``, and the counts the data card reports."""

    label_map: LabelMap | None
    rows: DataFrame
    used: DataFrame
    split_rows: dict[str, int]
    label_counts: dict
    cleaning: dict = field(default_factory=dict)  # what cleaning did and by which policy (data card)


@contextmanager
def timed(timings: dict, name: str):
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = time.perf_counter() - started


def datasets_root(config: PipelineConfig) -> Path:
    return paths.datasets_root(config.runtime.volume, config.name, config.runtime.local_root)


def quarantine_root(config: PipelineConfig) -> Path:
    """Quarantined rows of each version, under the same key as the dataset."""
    return paths.resolve(f"{config.runtime.volume}/quarantine/{config.name}", config.runtime.local_root)


def prepare(config: PipelineConfig, spark=None, df: DataFrame | None = None) -> PrepareResult:
    """Run preparation. ``df`` replaces the configured source (notebooks pass one)."""
    timings: dict[str, float] = {}
    model_dir = usable_model_dir(config)  # a wrong model path fails before any Spark work

    def session():
        nonlocal spark
        if spark is None:
            with timed(timings, "spark_start"):
                spark = get_spark(config.runtime.spark_master)
        return spark

    # Fast path: an unchanged source version (Delta history, file listing) with the
    # same settings was published already: no Spark job, and for files no Spark at all.
    source_key, version = (None, None) if df is not None else _source_key(config, session, model_dir)
    if source_key and (known := _published_for_source(config, source_key)):
        say(f"prepare: cache hit {known.path} (source version unchanged, no Spark job)")
        point_to(datasets_root(config), known)
        return _result_from_manifest(known, timings)
    if df is None:
        check_source_exists(config.source, config.runtime)  # a missing file fails before Spark starts
    spark = session()

    stage = time.perf_counter()
    raw = df if df is not None else read_source(spark, config.source, config.runtime)
    rows, cleaning = usable_rows(config, raw, model_dir)
    rows = rows.persist()
    try:
        result = _prepare_rows(config, spark, rows, cleaning, timings, model_dir, source_key, version)
    finally:
        rows.unpersist()
    timings["prepare_total"] = time.perf_counter() - stage
    return dataclasses.replace(result, timings=timings)


def usable_rows(config: PipelineConfig, raw: DataFrame, model_dir: str | None = None) -> tuple[DataFrame, dict]:
    """Canonical columns, a ``reason`` for every unusable row, the keys and the split;
    and what the cleaning decided (for the data card). One small Spark job decides
    whether every label is a number (then their spellings are unified)."""
    src = config.source
    require_columns(
        raw,
        {
            "source.text_column": src.text_column,
            "source.text_pair_column": src.text_pair_column,
            "source.label_column": src.label_column,
            "source.id_column": src.id_column,
        },
        arrays_ok=("source.label_column",) if config.task == "multi_label" else (),
    )
    canonical = to_canonical(raw, src, config.task)
    rows = mark_unusable(fix_mojibake(canonical, src.mojibake, config.task), config.labels, src.mojibake)
    spellings = {} if config.task == "seq2seq" else numeric_spellings(_label_values(label_strings(raw, src)))
    folds = config.labels.conflict_key == "folded" or (
        config.labels.conflict_key == "auto" and model_dir is not None and datacard.tokenizer_folds(model_dir)
    )
    fold = datacard.folded(model_dir) if folds and model_dir is not None else None
    rows = assign_split(with_key(unify_numeric_labels(rows, spellings), fold=fold), config.split)
    if src.deduplicate:
        rows = quarantine_duplicates(rows)
    cleaning = {
        "label_policy": {**LABEL_POLICY, "case": config.labels.case} if config.task != "seq2seq" else None,
        "numeric_labels_unified": spellings,
        "check_key": "folded by the tokenizer's normalizer" if fold is not None else "exact",
        "mojibake": src.mojibake,
        "max_text_chars": src.max_text_chars,
    }
    return quarantine_conflicts(rows), cleaning


def _label_values(labels: DataFrame) -> list[str]:
    """The distinct labels when every one of them is a number; else one non-number
    (enough for ``numeric_spellings`` to leave the labels alone), from a job that stops
    at the first one: string labels cost almost nothing here."""
    not_numeric = labels.where(~F.col("label").rlike(NUMBER_PATTERN)).limit(1).collect()
    if not_numeric:
        return [not_numeric[0]["label"]]
    return [row["label"] for row in labels.distinct().collect()]


def _prepare_rows(
    config: PipelineConfig,
    spark,
    rows: DataFrame,
    cleaning: dict,
    timings: dict,
    model_dir: str,
    source_key: str | None,
    version: str | None = None,
) -> PrepareResult:
    with timed(timings, "discover_labels"):
        input_rows, usable_counts, by_reason, flags, row_hashes = count_rows(config, rows)
        gate = diagnose.check_quarantine(config, rows, input_rows, by_reason)  # before the label policy's reasons
        labelled = apply_label_policy(config, rows, usable_counts, by_reason)  # adds its reasons
        labelled = dataclasses.replace(labelled, cleaning={**cleaning, **flags, "quarantine_gate": gate})
    counts = {
        "input": input_rows,
        "used": input_rows - sum(by_reason.values()),
        "quarantined": sum(by_reason.values()),
        "by_reason": dict(sorted(by_reason.items())),
    }
    with timed(timings, "cache_key"):
        key = cache_key(
            {
                **dataset_settings(config, model_dir),
                "data": _content_digest(config, labelled, row_hashes),
                "label_map": labelled.label_map.fingerprint if labelled.label_map else None,
            }
        )
    root = datasets_root(config)
    quarantine_dir = quarantine_root(config) / key
    quarantine = str(quarantine_dir) if counts["quarantined"] else None
    if (existing := find_published(root, key)) is not None:
        say(f"prepare: cache hit {existing.path} ({counts['used']:,} rows, data unchanged)")
        point_to(root, existing)
        return PrepareResult(existing, labelled.label_map, counts, True, quarantine)

    with timed(timings, "data_card"):
        card, lengths = build_data_card(config, labelled, counts, model_dir)
    say(
        f"prepare: {counts['input']:,} rows in, {counts['used']:,} used, {counts['quarantined']:,}"
        f" quarantined {counts['by_reason'] or ''}; labels {_shown(labelled.label_map)};"
        f" tokens p50/p99/max {card['token_lengths']['p50']}/{card['token_lengths']['p99']}"
        f"/{card['token_lengths']['p100']} -> max_length {lengths['max_length']}"
        f" ({card['truncated_rows']:,} training texts longer: truncated)" + _cleaning_note(labelled.cleaning)
    )

    with timed(timings, "handoff"), volume_writes(root, cleanup=[quarantine_dir]):
        if quarantine:
            quarantined = labelled.rows.where(F.col("reason").isNotNull())
            quarantined.drop("key", "check_key", *FLAGS).write.mode("overwrite").parquet(quarantine)
        published, method = _publish(
            config,
            spark,
            labelled,
            key,
            root,
            {
                "quarantine": quarantine,
                "pipeline": config.name,
                "task": config.task,
                "label_map": labelled.label_map.to_json() if labelled.label_map else None,
                **lengths,
                "model_dir": model_dir,
                "data_card": card,
                "source_key": source_key,
                # in clear for the model card: Delta version or file listing (None for a DataFrame or a query)
                "source_version": version,
                "settings": dataset_settings(config, model_dir),  # in clear: train checks its config against it
                "label_policy": labelled.cleaning.get("label_policy"),
            },
        )
        point_to(root, published)  # before pruning: the pointed version is kept
        prune_versions(
            root, config.runtime.keep_versions, config.runtime.lease_seconds, quarantine_root=quarantine_root(config)
        )
    say(f"prepare: published {published.path} ({published.split_rows}) via {method} in {timings['handoff']:.1f} s")
    return PrepareResult(published, labelled.label_map, counts, False, quarantine)


# ---------------------------------------------------------------- counts and policy


def count_rows(config: PipelineConfig, rows: DataFrame) -> tuple[int, dict, dict, dict, dict]:
    """One groupBy gives the label discovery, the per-split counts, the reasons, the
    cleaning flags and the content digest's row hashes: input rows, ``{label: {split:
    rows}}`` of usable rows, ``{reason: rows}``, ``{"cut_texts": n, "repaired_rows": n,
    "mojibake_kept_rows": n}``, ``{label: sum of the usable rows' hashes}``."""
    flags = [name for name in FLAGS if name in rows.columns]
    hashed = [c for c in DIGEST_COLUMNS if c in rows.columns]
    row_hash = F.when(F.col("reason").isNull(), F.xxhash64(*hashed).cast("decimal(38,0)"))
    grouped = (
        rows.groupBy("reason", "label", "split")
        .agg(
            F.count("*").alias("count"),
            F.sum(row_hash).alias("hash_sum"),
            *[F.sum(F.col(name).cast("long")).alias(name) for name in flags],
        )
        .collect()
    )
    names = {"_cut": "cut_texts", "_repaired": "repaired_rows", "_mojibake_kept": "mojibake_kept_rows"}
    flag_counts = {names[name]: sum(int(row[name] or 0) for row in grouped) for name in flags}
    by_reason: dict[str, int] = {}
    usable_counts: dict[str, dict[str, int]] = {}
    row_hashes: dict[str, int] = {}
    for row in grouped:
        if row["reason"]:
            by_reason[row["reason"]] = by_reason.get(row["reason"], 0) + row["count"]
        else:
            usable_counts.setdefault(row["label"], {})[row["split"]] = row["count"]
            row_hashes[row["label"]] = row_hashes.get(row["label"], 0) + int(row["hash_sum"])
    if not grouped:
        where = f" after source.where {config.source.where!r}" if config.source.where else ""
        raise DataError(
            f"{_where(config)}: the source has no rows{where}; check that the table or"
            " files hold data (and source.where, if set)"
        )
    # Class names only: a seq2seq target ("Paris" / "paris") is free text.
    if config.task != "seq2seq" and config.labels.case == "exact" and (variants := case_variants(usable_counts)):
        shown = "; ".join(" vs ".join(repr(label) for label in group) for group in variants[:5])
        raise DataError(
            f"{_where(config)}: labels that differ only in case or spaces would become separate"
            f" classes: {shown}. Set labels.case: normalize to merge them, or fix the values in"
            f" column {config.source.label_column!r}"
        )
    return sum(row["count"] for row in grouped), usable_counts, by_reason, flag_counts, row_hashes


def apply_label_policy(config: PipelineConfig, rows: DataFrame, usable_counts: dict, by_reason: dict) -> Labelled:
    """The label map for the task, and ``label_id`` on the usable rows."""
    if config.task in ("classification", "pair_classification"):
        label_map, rows, split_rows, label_card = _single_label_policy(config, rows, usable_counts, by_reason)
        return Labelled(
            label_map, rows, apply_label_ids(rows.where(F.col("reason").isNull()), label_map), split_rows, label_card
        )
    if config.task == "multi_label":
        label_map, split_rows, label_card = _multi_label_policy(config, rows, usable_counts, by_reason)
        return Labelled(
            label_map, rows, apply_multi_hot(rows.where(F.col("reason").isNull()), label_map), split_rows, label_card
        )
    # seq2seq: the label is the target text, there is no label map
    split_rows = _split_rows(usable_counts)
    if split_rows["train"] == 0:
        datacard.check_usable({}, _where(config), by_reason)
    return Labelled(None, rows, rows.where(F.col("reason").isNull()), split_rows, {})


def _split_rows(counts: dict[str, dict[str, int]]) -> dict[str, int]:
    return {split: sum(c.get(split, 0) for c in counts.values()) for split in SPLITS}


def _single_label_policy(config: PipelineConfig, rows: DataFrame, usable_counts: dict, by_reason: dict):
    """Rare classes and classes absent from train cannot be learned: quarantine them."""
    rare = {label for label, c in usable_counts.items() if sum(c.values()) < config.labels.min_count}
    not_in_train = {label for label, c in usable_counts.items() if not c.get("train")} - rare
    kept = {label: c for label, c in usable_counts.items() if label not in rare | not_in_train}
    for reason, labels in (("rare_label", rare), ("label_not_in_train", not_in_train)):
        if labels:
            by_reason[reason] = sum(sum(usable_counts[label].values()) for label in labels)
    datacard.check_usable(kept, _where(config), by_reason)
    label_map = LabelMap.from_labels(kept)
    reason = F.col("reason")
    if rare:
        reason = F.when(reason.isNull() & F.col("label").isin(sorted(rare)), "rare_label").otherwise(reason)
    if not_in_train:
        reason = F.when(reason.isNull() & F.col("label").isin(sorted(not_in_train)), "label_not_in_train").otherwise(
            reason
        )
    card = {label: kept[label] for label in label_map.labels}
    return label_map, rows.withColumn("reason", reason), _split_rows(kept), card


def _multi_label_policy(config: PipelineConfig, rows: DataFrame, usable_counts: dict, by_reason: dict):
    """Labels are discovered over the exploded label sets. A label seen in fewer than
    labels.min_count rows, or in no training row, is left out of the label map (the
    rows keep their other labels): a row is never lost for one rare label."""
    exploded = (
        rows.where(F.col("reason").isNull())
        .select(F.explode("labels").alias("label"), "split")
        .groupBy("label", "split")
        .count()
        .collect()
    )
    per_label: dict[str, dict[str, int]] = {}
    for row in exploded:
        per_label.setdefault(row["label"], {})[row["split"]] = row["count"]
    kept = {label: c for label, c in per_label.items() if sum(c.values()) >= config.labels.min_count and c.get("train")}
    dropped = sorted(set(per_label) - set(kept))
    if dropped:
        say(f"prepare: labels left out of the map (rare or not in train): {dropped[:10]}")
    datacard.check_usable(kept, _where(config), by_reason)
    label_map = LabelMap.from_labels(kept)
    return label_map, _split_rows(usable_counts), {label: kept[label] for label in label_map.labels}


# ---------------------------------------------------------------- the dataset key


# What a row's hash covers. Not label_id: the label map decides it, and its fingerprint
# is in the key too.
DIGEST_COLUMNS = ("text", "text_pair", "label", "split")


def _content_digest(config: PipelineConfig, labelled: Labelled, row_hashes: dict[str, int]) -> list:
    """Row count plus an order-independent sum of row hashes of the rows to publish:
    changes when any row does. From the counting pass's sums per label (no Spark job of
    its own), less the labels the policy quarantined (single-label: the rare ones)."""
    if config.task in ("classification", "pair_classification"):
        row_hashes = {label: h for label, h in row_hashes.items() if label in labelled.label_map.label2id}
    return [sum(labelled.split_rows.values()), str(sum(row_hashes.values()))]


def _source_key(config: PipelineConfig, session, model_dir: str) -> tuple[str | None, str | None]:
    """The key of the source version and the version itself (both None when unknown)."""
    version = source_version(session, config.source, config.runtime)
    if version is None:
        return None, None
    key = cache_key({**dataset_settings(config, model_dir), "source": config.source.model_dump(), "version": version})
    return key, version


def _published_for_source(config: PipelineConfig, source_key: str) -> PublishedDataset | None:
    for candidate in complete_versions(datasets_root(config)):
        if candidate.manifest.get("source_key") == source_key:
            return candidate
    return None


def _result_from_manifest(published: PublishedDataset, timings: dict) -> PrepareResult:
    manifest = published.manifest
    label_map = LabelMap.from_json(manifest["label_map"]) if manifest.get("label_map") else None
    rows = manifest["data_card"]["rows"]
    return PrepareResult(published, label_map, rows, True, manifest.get("quarantine"), timings)


# ---------------------------------------------------------------- data card


def build_data_card(config: PipelineConfig, labelled: Labelled, counts: dict, model_dir: str) -> tuple[dict, dict]:
    """The data card and the lengths it decides: ``max_length`` (and for seq2seq
    ``target_max_length``)."""
    used = labelled.used
    train_rows = labelled.split_rows["train"]
    histogram, scale = datacard.length_histogram(used, model_dir, config.split.seed, train_rows)
    percentiles = datacard.percentiles_from_histogram(histogram)
    extra = _prefix_tokens(config, model_dir)
    max_length = (
        config.model.max_length
        if config.model.max_length != "auto"
        else datacard.choose_max_length({"p99": percentiles["p99"] + extra}, model_max_length(model_dir))
    )
    card = {
        "rows": counts,
        "label_counts": labelled.label_counts,
        "cleaning": labelled.cleaning,
        "token_lengths": percentiles,
        # the whole histogram (the data card plot draws it): {n_tokens: training rows, sampled if large}
        "token_length_histogram": {str(length): n for length, n in sorted(histogram.items())},
        "token_length_scale": scale,
        # training texts longer than max_length: kept, and cut to max_length when tokenized
        "truncated_rows": datacard.rows_longer_than(histogram, max_length - extra, scale),
        **datacard.duplicate_stats(used),
    }
    target_max_length = None
    if config.task == "seq2seq":
        targets, _ = datacard.length_histogram(
            used.select(F.col("label").alias("text"), "split"), model_dir, config.split.seed, train_rows
        )
        card["target_token_lengths"] = datacard.percentiles_from_histogram(targets)
        target_max_length = min(
            config.seq2seq.max_target_length,
            datacard.choose_max_length(card["target_token_lengths"], model_max_length(model_dir)),
        )
    return card, {"max_length": max_length, "target_max_length": target_max_length}


def _prefix_tokens(config: PipelineConfig, model_dir: str) -> int:
    """Tokens the seq2seq prefixes add to every input (0 for other tasks)."""
    if config.task != "seq2seq":
        return 0
    tokenizer = datacard.fast_tokenizer(model_dir)
    prefixes = [config.seq2seq.question_prefix, config.seq2seq.context_prefix if config.source.text_pair_column else ""]
    return sum(len(tokenizer.encode(p, add_special_tokens=False).ids) for p in prefixes if p)


# ---------------------------------------------------------------- publishing


@contextmanager
def volume_writes(root: Path, cleanup: list[Path]):
    """A full, read-only or failing volume is one clear error, and nothing is published
    (the staging directory is removed by ``publish``; partial quarantine output here)."""
    try:
        yield
    except Exception as exc:
        reason = write_failure(exc)
        if reason is None or isinstance(exc, LakefineError):
            raise
        for path in cleanup:
            shutil.rmtree(path, ignore_errors=True)
        raise HandoffError(
            f"cannot write the prepared dataset under {root}: {reason}. Nothing was published."
            " Free space on the volume (or raise its quota), check that it is writable, then run"
            " `lakefine prepare` again"
        ) from None


def _publish(
    config: PipelineConfig, spark, labelled: Labelled, key: str, root: Path, manifest_extra: dict
) -> tuple[PublishedDataset, str]:
    method = config.runtime.handoff
    if method == "auto":
        method = "parquet" if session_kind(spark) == "connect" else "from_spark"
    used = labelled.used
    with_pair = "text_pair" in used.columns
    if config.task == "seq2seq":
        handed, target_column = used.withColumn("target", F.col("label")), "target"
    else:
        handed, target_column = used.withColumn("label", F.col("label_id")), "label"
    columns = ["text"] + (["text_pair"] if with_pair else []) + [target_column, "split", "row_hash"]
    model_dir = manifest_extra["model_dir"]
    # Tokenized here, in Spark, at the data card's max_length: training reads the ids.
    encoding = tokenize.encoding_for(config, model_dir, manifest_extra, with_pair)
    published = publish(
        handed.select(*columns),
        root=root,
        key=key,
        features=dataset_features(labelled.label_map, with_pair, config.task, encoding),
        split_rows=labelled.split_rows,
        method=method,
        working_dir=paths.scratch_dir(config.runtime.working_dir, "working"),
        num_partitions=int(spark.conf.get("spark.sql.shuffle.partitions") or 4),
        manifest_extra={**manifest_extra, "tokenized": encoding.to_json()},
        add_columns=lambda ordered: tokenize.with_token_ids(ordered, model_dir, encoding),
    )
    return published, method


# The datasets features of the columns ``lakefine.prep.tokenize`` adds.
TOKEN_FEATURES = {
    "input_ids": List(Value("int32")),
    "token_type_ids": List(Value("int8")),
    "labels": List(Value("int32")),
    "length": Value("int32"),
}


def dataset_features(
    label_map: LabelMap | None, with_pair: bool, task: str = "classification", encoding: Encoding | None = None
) -> Features:
    columns = {"text": Value("string")}
    if with_pair:
        columns["text_pair"] = Value("string")
    if task == "seq2seq":
        columns["target"] = Value("string")
    elif task == "multi_label":
        columns["label"] = List(Value("float32"), length=len(label_map.labels))
    else:
        columns["label"] = ClassLabel(names=list(label_map.labels))
    columns.update({"split": Value("string"), "row_hash": Value("int64")})
    columns.update({name: TOKEN_FEATURES[name] for name in (encoding.columns if encoding else [])})
    return Features(columns)


# ---------------------------------------------------------------- messages


def usable_model_dir(config: PipelineConfig) -> str:
    """Resolve ``model.name_or_path`` and load its tokenizer here, on the driver: a path
    that is not a model fails with one message naming the key, not inside a Spark task."""
    name = config.model.name_or_path
    model_dir = assets.resolve_model(name, config.runtime.local_root)
    path = Path(model_dir).expanduser()
    fix = (
        "point model.name_or_path at a save_pretrained directory (config.json and tokenizer"
        " files) or a model alias such as minilm"
    )
    looks_like_path = path.is_absolute() or model_dir.startswith((".", "~"))
    if looks_like_path and not path.exists():
        raise TrainingError(f"model.name_or_path: no directory at {name!r} ({path}); {fix}")
    if path.is_dir() and not (path / "config.json").is_file():
        what = "an empty directory" if not any(path.iterdir()) else "a directory without config.json"
        raise TrainingError(f"model.name_or_path: {name!r} ({path}) is {what}, not a model; {fix}")
    try:
        datacard.fast_tokenizer(model_dir)
    except Exception as exc:  # tokenizers/transformers raise many types for a bad directory
        raise TrainingError(
            f"model.name_or_path: cannot load a tokenizer from {name!r} ({first_line(exc)}); {fix}"
        ) from None
    return model_dir


def _cleaning_note(cleaning: dict) -> str:
    notes = []
    if cleaning.get("repaired_rows"):
        notes.append(f"{cleaning['repaired_rows']:,} rows repaired (mojibake, ftfy)")
    if cleaning.get("mojibake_kept_rows"):
        notes.append(f"{cleaning['mojibake_kept_rows']:,} rows with mojibake kept")
    if cleaning.get("cut_texts"):
        notes.append(f"{cleaning['cut_texts']:,} texts cut to {cleaning['max_text_chars']:,} characters")
    if cleaning.get("numeric_labels_unified"):
        notes.append(f"label spellings unified {cleaning['numeric_labels_unified']}")
    return f"; {'; '.join(notes)}" if notes else ""


def _shown(label_map: LabelMap | None) -> str:
    if label_map is None:
        return "(text targets)"
    labels = list(label_map.labels)
    return f"{labels[:8]}{f' ... ({len(labels)} in all)' if len(labels) > 8 else ''}"


def _where(config: PipelineConfig) -> str:
    src = config.source
    return f"source {src.table or src.path or 'sql'} (text {src.text_column!r}, label {src.label_column!r})"
