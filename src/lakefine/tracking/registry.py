"""Registered model names and aliases: one path for the local registry and Unity
Catalog (``catalog.schema.model``), through ``MlflowClient``. ``challenger`` is what
training registered last; ``champion`` is the version in use, moved only by the
evaluation gate."""

from __future__ import annotations

import re
from dataclasses import dataclass

from lakefine.core.config import PipelineConfig
from lakefine.core.errors import TrackingError
from lakefine.core.log import first_line
from lakefine.core.paths import parse_volume_path
from lakefine.core.session import on_databricks

ALIAS = "challenger"
CHALLENGER = ALIAS
CHAMPION = "champion"

_MODELS_URI = re.compile(r"^models:/(?P<name>[^@/]+)(?:@(?P<alias>[^/]+)|/(?P<version>\d+))$")
_RUNS_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)/")


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


@dataclass(frozen=True)
class ModelRef:
    """Where a model URI points: its run and, for a registered model, name and version."""

    uri: str
    run_id: str | None = None
    name: str | None = None
    version: int | None = None

    @property
    def version_uri(self) -> str | None:
        return f"models:/{self.name}/{self.version}" if self.name and self.version else None


def _client():
    import mlflow  # lazy: the core of this package stays importable without mlflow's import time

    return mlflow.tracking.MlflowClient()


def alias_version(name: str, alias: str):
    """The ModelVersion ``alias`` points at, or None (no such alias or model yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return _client().get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise


def set_alias(name: str, alias: str, version: int) -> None:
    _client().set_registered_model_alias(name, alias, str(version))


def resolve(uri: str) -> ModelRef:
    """A ``models:/name@alias``, ``models:/name/N`` or ``runs:/id/...`` URI -> its run
    (and registered version). Anything else (a directory) has no run here."""
    from mlflow.exceptions import MlflowException

    match = _MODELS_URI.match(uri)
    if match:
        name = match["name"]
        try:
            version = (
                _client().get_model_version_by_alias(name, match["alias"])
                if match["alias"]
                else _client().get_model_version(name, match["version"])
            )
        except MlflowException as exc:
            raise TrackingError(
                f"{uri}: no such registered model version ({first_line(exc)}); train one first"
                f" (`lakefine train`) or pass --model with a model directory or another URI"
            ) from None
        return ModelRef(uri, version.run_id, name, int(version.version))
    match = _RUNS_URI.match(uri)
    if match:
        return ModelRef(uri, match["run_id"])
    return ModelRef(uri)


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
