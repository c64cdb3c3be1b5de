"""Registered model names and aliases: one path for the local registry and Unity
Catalog (``catalog.schema.model``), through ``MlflowClient``."""

from __future__ import annotations

from lakefine.core.config import PipelineConfig
from lakefine.core.paths import parse_volume_path
from lakefine.core.session import on_databricks

ALIAS = "challenger"


def registered_name(config: PipelineConfig) -> str:
    """Unity Catalog needs catalog.schema.model: on Databricks a bare name is put in
    the schema of the working volume."""
    name = config.registered_model_name
    if on_databricks() and name.count(".") != 2:
        volume = parse_volume_path(config.runtime.volume, "runtime.volume")
        return f"{volume.catalog}.{volume.schema}.{name}"
    return name
