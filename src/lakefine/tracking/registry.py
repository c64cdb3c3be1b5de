"""Registered model names and aliases: one path for the local registry and Unity
Catalog (``catalog.schema.model``), through ``MlflowClient``."""

from __future__ import annotations

from lakefine.core.config import PipelineConfig
from lakefine.core.paths import parse_volume_path
from lakefine.core.session import on_databricks

ALIAS = "challenger"
CHAMPION = "champion"  # the model in use; `lakefine score` prefers it to the challenger


def registered_name(config: PipelineConfig) -> str:
    """Unity Catalog needs catalog.schema.model: on Databricks a bare name is put in
    the schema of the working volume."""
    name = config.registered_model_name
    if on_databricks() and name.count(".") != 2:
        volume = parse_volume_path(config.runtime.volume, "runtime.volume")
        return f"{volume.catalog}.{volume.schema}.{name}"
    return name


def version_by_alias(name: str, alias: str):
    """The ModelVersion ``name@alias`` points at, or None when the alias (or the model)
    does not exist. Any other registry failure is raised."""
    import mlflow  # only callers that talk to the registry pay for the import
    from mlflow.exceptions import MlflowException

    try:
        return mlflow.tracking.MlflowClient().get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
            return None
        raise
