"""Hugging Face datasets as a source: check the declared size with
``load_dataset_builder`` before anything is downloaded, then load the split and
hand its rows to Spark, where the same cleaning, label and split stages run.

``source.hub.name`` is a hub id or a dataset directory (a ``/Volumes/...`` path is
mapped like any other); datasets' cache goes where ``HF_DATASETS_CACHE`` says (on
Databricks: a volume, so it survives the cluster)."""

from __future__ import annotations

from pathlib import Path

from datasets import load_dataset, load_dataset_builder

from lakefine.core import paths
from lakefine.core.config import RuntimeConfig, SourceConfig
from lakefine.core.errors import DataError
from lakefine.core.log import first_line, say

MB = 1024 * 1024


def dataset_location(source: SourceConfig, runtime: RuntimeConfig) -> str:
    name = source.hub.name
    if name.startswith("/Volumes/"):
        return str(paths.resolve(name, runtime.local_root, key="source.hub.name"))
    return name


def check_size(source: SourceConfig, runtime: RuntimeConfig) -> dict:
    """Refuse before downloading when the declared size is over the limit, or unknown
    and the policy is to refuse. Returns the sizes (None where not declared)."""
    name, config = dataset_location(source, runtime), source.hub.config
    try:
        info = load_dataset_builder(name, config).info
    except Exception as exc:  # datasets raises many types for a missing or private dataset
        raise DataError(
            f"source.hub {source.hub.name!r}: cannot read its description"
            f" ({first_line(exc)}); check the name, the config and your access"
        ) from None
    sizes = {"download_size": info.download_size, "dataset_size": info.dataset_size}
    if not info.download_size or not info.dataset_size:
        message = (
            f"source.hub {source.hub.name!r} does not state its download and dataset sizes"
            " (its README has no dataset_info)"
        )
        if source.unknown_size == "refuse":
            raise DataError(f"{message}; set source.unknown_size: warn to load it anyway")
        say(f"prepare: warning: {message}; loading it anyway (source.unknown_size: warn)")
        return sizes
    needed = max(info.download_size, info.dataset_size) / MB
    if needed > source.max_download_mb:
        raise DataError(
            f"source.hub {source.hub.name!r}: download {info.download_size / MB:,.1f} MB, dataset"
            f" {info.dataset_size / MB:,.1f} MB is over source.max_download_mb ({source.max_download_mb:,.0f});"
            " raise the limit or choose a smaller config or split"
        )
    say(
        f"prepare: {source.hub.name}: download {info.download_size / MB:,.1f} MB,"
        f" dataset {info.dataset_size / MB:,.1f} MB"
    )
    return sizes


def read_hub(spark, source: SourceConfig, runtime: RuntimeConfig):
    check_size(source, runtime)
    split = source.hub.split
    try:
        location = dataset_location(source, runtime)
        # A local dataset directory is re-read every time: datasets' cache can return
        # an older copy of a directory with the same name (a stale read).
        mode = "force_redownload" if Path(location).is_dir() else None
        dataset = load_dataset(location, source.hub.config, split=split, download_mode=mode)
    except Exception as exc:
        raise DataError(f"source.hub {source.hub.name!r} split {split!r}: cannot load it ({first_line(exc)})") from None
    # Arrow -> pandas -> Spark: ClassLabel columns arrive as their integer ids.
    return spark.createDataFrame(dataset.to_pandas())
