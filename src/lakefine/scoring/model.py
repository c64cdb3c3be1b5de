"""Which model scores, decided once on the driver.

``--model`` (a model directory or an MLflow URI), else the registered ``champion``,
else the ``challenger`` (with a message). An alias is resolved to its version and the
model's files are copied once into ``<volume>/scoring/models/<name>/v<version>``, a
directory every worker can read (the volume is mounted on every node): workers load
that model directory and never call the registry or the tracking store, so a thousand tasks are not a thousand
registry calls, and an alias moved mid-job cannot mix two models in one output.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from lakefine.core import paths
from lakefine.core.config import PipelineConfig
from lakefine.core.errors import TrackingError, TrainingError
from lakefine.core.log import first_line, say
from lakefine.tracking import client as tracking_client
from lakefine.tracking.registry import ALIAS, CHAMPION, registered_name, version_by_alias

_BY_ALIAS = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/]+)$")
_BY_VERSION = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


@dataclass(frozen=True)
class ScoringModel:
    """``uri``: what scored (the lineage column ``model_uri``); ``version``: the
    registered version, None for a directory or a run's model; ``path``: the local
    model files the workers load; ``task``: the shape of its predictions."""

    uri: str
    version: int | None
    path: str
    task: str


def resolve_model(config: PipelineConfig, model_uri: str | None = None) -> ScoringModel:
    if model_uri and Path(model_uri).is_dir():
        path = Path(model_uri).absolute()
        return ScoringModel(str(path), None, str(path), model_task(path, config))
    tracking_client.setup(config)
    if model_uri is None:
        name = registered_name(config)
        alias, version = CHAMPION, version_by_alias(name, CHAMPION)
        if version is None:
            alias, version = ALIAS, version_by_alias(name, ALIAS)
            if version is None:
                raise TrackingError(
                    f"registered model {name!r} has neither a {CHAMPION!r} nor a {ALIAS!r} alias in"
                    f" {tracking_client.tracking_uri(config)}; train and register it first (`lakefine run`)"
                    " or pass --model <directory | MLflow URI>"
                )
            say(f"score: {name} has no {CHAMPION} yet: scoring the {ALIAS}, version {version.version}")
        return _registered(config, name, int(version.version), f"models:/{name}@{alias}")
    by_alias, by_version = _BY_ALIAS.match(model_uri), _BY_VERSION.match(model_uri)
    if by_alias:
        version = version_by_alias(by_alias["name"], by_alias["alias"])
        if version is None:
            raise TrackingError(f"--model {model_uri}: no such registered model or alias")
        return _registered(config, by_alias["name"], int(version.version), model_uri)
    if by_version:
        return _registered(config, by_version["name"], int(by_version["version"]), model_uri)
    key = "uri-" + hashlib.sha256(model_uri.encode()).hexdigest()[:16]  # runs:/..., models:/m-...: immutable
    path = _materialized(config, model_uri, key)
    return ScoringModel(model_uri, None, str(path), model_task(path, config))


def _registered(config: PipelineConfig, name: str, version: int, uri: str) -> ScoringModel:
    path = _materialized(config, f"models:/{name}/{version}", f"{_safe(name)}/v{version}")
    return ScoringModel(uri, version, str(path), model_task(path, config))


def _materialized(config: PipelineConfig, source: str, key: str) -> Path:
    """The MLflow model's files under the volume, downloaded once into a staging
    directory, arranged as one model directory (``files/``: config, weights,
    tokenizer), then renamed, so a worker never sees half a model. Workers load
    ``files/`` with ``Predictor.from_directory``: loading through MLflow would look the
    model up in the tracking store from every worker."""
    target = paths.resolve(f"{config.runtime.volume}/scoring/models/{key}", config.runtime.local_root)
    if (target / "MLmodel").is_file():
        return _model_files(target, source)
    import mlflow  # set up by tracking_client.setup above

    staging = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(staging))
        if not (staging / "MLmodel").is_file():
            raise TrackingError(f"--model {source}: not an MLflow model (no MLmodel file in its artifacts)")
        _arrange(staging, source)
        _model_files(staging, source)
    except TrackingError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    except Exception as exc:  # mlflow raises many types for a bad URI or an unreachable store
        shutil.rmtree(staging, ignore_errors=True)
        raise TrackingError(f"--model {source}: cannot download this MLflow model ({first_line(exc)})") from None
    try:
        staging.rename(target)
    except OSError:  # another scoring run copied it meanwhile: theirs is the same files
        shutil.rmtree(staging, ignore_errors=True)
    say(f"score: model {source} copied to {target}")
    return _model_files(target, source)


def _flavors(directory: Path) -> dict:
    return (yaml.safe_load((directory / "MLmodel").read_text()) or {}).get("flavors") or {}


def _arrange(directory: Path, source: str) -> None:
    """Transformers flavor: the weights (``model/``) and the saved components
    (``components/tokenizer/``) moved into one ``files/`` directory, as save_pretrained
    writes it. Lakefine's pyfunc already wraps such a directory (its ``model_dir``
    artifact): nothing to move."""
    transformers_flavor = _flavors(directory).get("transformers")
    if not transformers_flavor:
        return
    files = directory / "files"
    (directory / transformers_flavor.get("model_binary", "model")).rename(files)
    for component in transformers_flavor.get("components") or []:
        for item in (directory / "components" / component).iterdir():
            if not (files / item.name).exists():
                item.rename(files / item.name)


def _model_files(directory: Path, source: str) -> Path:
    flavors = _flavors(directory)
    artifacts = (flavors.get("python_function") or {}).get("artifacts") or {}
    candidates = [directory / "files"]
    if "model_dir" in artifacts:
        candidates.append(directory / artifacts["model_dir"]["path"])
    for candidate in candidates:
        if (candidate / "config.json").is_file():
            return candidate
    raise TrackingError(
        f"--model {source}: no model directory (config.json) in this MLflow model (flavors: {', '.join(flavors)});"
        " lakefine scores models logged by `lakefine train`: the transformers flavor or lakefine's pyfunc"
    )


def model_task(path: Path, config: PipelineConfig) -> str:
    """The pipeline's task, checked against what the model's config.json says it is
    (read as JSON: the driver never loads torch)."""
    found = next((p for p in [path / "config.json", *sorted(path.rglob("config.json"))] if p.is_file()), None)
    if found is None:
        return config.task  # a model whose files lakefine does not know: trust the pipeline
    model_config = json.loads(found.read_text())
    if model_config.get("is_encoder_decoder") or model_config.get("model_type") in ("t5", "encoder-decoder"):
        kind = "seq2seq"
    elif model_config.get("problem_type") == "multi_label_classification":
        kind = "multi_label"
    else:
        kind = "classification"
    if kind != config.task and not (kind == "classification" and config.task == "pair_classification"):
        raise TrainingError(
            f"the model at {path} is a {kind} model, but pipeline {config.name!r} has task {config.task!r};"
            " score it with the pipeline it was trained with (or pass the matching --model)"
        )
    return config.task


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]", "_", name)
