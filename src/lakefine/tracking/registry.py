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


def version_of_run(name: str, run_id: str):
    """The model version already registered from ``run_id`` under ``name``, if any: a
    retried final step reuses it instead of registering a second version."""
    import mlflow  # lazy: naming a model needs no MLflow import

    client = mlflow.tracking.MlflowClient()
    try:
        found = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    except mlflow.exceptions.MlflowException:  # no such registered model yet
        return None
    return min(found, key=lambda v: int(v.version)) if found else None
