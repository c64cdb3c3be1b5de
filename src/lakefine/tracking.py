"""MLflow: where runs go, what is logged, how the model is registered.

Locally the store is sqlite under the local root (``MLFLOW_TRACKING_URI`` wins, so a
real ``mlflow server`` works too); on Databricks the registry is Unity Catalog.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Optional

from lakefine import paths
from lakefine.config import PipelineConfig
from lakefine.errors import TrackingError
from lakefine.log import say
from lakefine.session import on_databricks

ALIAS = "challenger"
# mlflow's own requirement inference pulls in torchvision, which must never be
# installed here (it breaks transformers); state the requirements instead.
MODEL_PIP_REQUIREMENTS = ["torch", "transformers", "tokenizers", "accelerate", "safetensors"]
# How long the end of a run (last metrics, model, registration) waits for a tracking
# server that went away (a restart, a network blip) before giving up.
RETRY_SECONDS_ENV = "LAKEFINE_TRACKING_RETRY_SECONDS"
DEFAULT_RETRY_SECONDS = 300.0


def tracking_uri(config: PipelineConfig) -> str:
    return config.tracking.tracking_uri or default_tracking_uri(config.runtime.local_root)


def default_tracking_uri(local_root: str = ".lakefine") -> str:
    """$MLFLOW_TRACKING_URI, else Databricks, else sqlite under the local root."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    if on_databricks():
        return "databricks"
    root = paths.local_root(local_root)
    root.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{root / 'mlflow.db'}"


def setup(config: PipelineConfig) -> str:
    """Point MLflow at the store and experiment; fail fast if a server is unreachable.
    Returns the experiment id."""
    uri = tracking_uri(config)
    check_reachable(uri)  # before importing mlflow (seconds): an unusable server fails fast
    import mlflow

    mlflow.set_tracking_uri(uri)
    if on_databricks():
        mlflow.set_registry_uri("databricks-uc")
    name = config.experiment_name
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    artifact_location = None
    if uri.startswith("sqlite:"):
        artifact_location = (paths.local_root(config.runtime.local_root) / "mlartifacts").as_uri()
    return mlflow.create_experiment(name, artifact_location=artifact_location)


def check_reachable(uri: str, timeout_s: float = 5.0) -> None:
    """An HTTP tracking server must answer before any preparation or training.

    ``timeout_s`` bounds each socket operation, so a host that accepts connections
    but never answers fails in seconds too; so does something that is not an HTTP
    server (http.client.HTTPException is not an OSError)."""
    if not uri.startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout_s) as response:
            if response.status == 200:
                return
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = str(exc).strip() or type(exc).__name__
        raise TrackingError(
            f"MLflow tracking server {uri} is unreachable (GET /health: {reason[:200]}); start"
            " it, fix MLFLOW_TRACKING_URI, or unset MLFLOW_TRACKING_URI to use the local sqlite store"
        ) from None


def log_run_inputs(config: PipelineConfig, manifest: dict) -> None:
    import mlflow

    params = {f"lakefine.{k}": v[:500] for k, v in config.flat_params().items()}
    params.update({
        "data.key": manifest["key"],
        "data.rows": manifest["rows"],
        "data.max_length": manifest["max_length"],
    })
    if manifest["label_map"]:
        params["data.num_labels"] = len(manifest["label_map"]["id2label"])
    else:
        params["data.target_max_length"] = manifest.get("target_max_length")
    mlflow.log_params(params)
    mlflow.set_tags({"lakefine.pipeline": config.name, "lakefine.task": config.task,
                     "lakefine.dataset": manifest["key"]})
    if manifest["label_map"]:
        mlflow.log_dict(manifest["label_map"], "label_map.json")
    mlflow.log_dict(manifest["data_card"], "data_card.json")
    mlflow.log_dict(config.to_dict(), "pipeline_config.json")


def metrics_callback(logged_until_step: int = 0):
    """A TrainerCallback that logs every log line as MLflow metrics. Metrics that
    fail to reach the server (a restart, a network blip) are kept and sent with
    the next log call or at the end of training, with their original step.

    After a resume, the steps between the checkpoint and the interruption are
    trained again; their metrics were already logged by the interrupted attempt,
    so steps up to ``logged_until_step`` are not logged twice: the run keeps one
    continuous history."""
    import mlflow
    from transformers import TrainerCallback

    class MlflowMetrics(TrainerCallback):
        def __init__(self):
            self.pending: list = []
            self.failing = False  # say so once per outage, not on every log line

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not state.is_world_process_zero or not logs:
                return
            if 0 < state.global_step <= logged_until_step and "loss" in logs:
                return
            now = int(time.time() * 1000)
            for key, value in logs.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.pending.append(mlflow.entities.Metric(key, float(value), now, state.global_step))
            self.flush(final=False)

        def on_train_end(self, args, state, control, **kwargs):
            self.flush(final=True)

        def flush(self, final: bool) -> None:
            # During training one attempt (training goes on); at the end, keep trying
            # for up to retry_seconds() so a server restart does not cost the run.
            deadline = time.monotonic() + (retry_seconds() if final else 0.0)
            attempt, error = 0, None
            while self.pending:
                try:
                    run_id = mlflow.active_run().info.run_id
                    mlflow.tracking.MlflowClient().log_batch(run_id, metrics=self.pending[:1000])
                    del self.pending[:1000]
                    if self.failing and not self.pending:
                        say("tracking: the tracking server is back; buffered metrics logged")
                        self.failing = False
                except Exception as exc:  # the server is away: keep the metrics, retry later
                    error = exc
                    if not self.failing:
                        say(f"tracking: could not log {len(self.pending)} metrics yet ({type(exc).__name__});"
                            " keeping them and retrying")
                        self.failing = True
                    attempt += 1
                    if time.monotonic() >= deadline or (final and not server_unavailable(exc)):
                        break
                    time.sleep(min(1.0 * attempt, 10.0))
            if final and self.pending:
                raise TrackingError(
                    f"{len(self.pending)} metrics could not be logged to MLflow at"
                    f" {mlflow.get_tracking_uri()} ({str(error).splitlines()[0][:200] if error else ''});"
                    f" check the server (a restart may take up to {RETRY_SECONDS_ENV}="
                    f"{retry_seconds():.0f} s) and run again"
                )

    return MlflowMetrics()


ATTEMPT_TAG = "lakefine.attempt"


@contextlib.contextmanager
def started_run(**start_kwargs):
    """``mlflow.start_run`` whose closing call waits (bounded) for a tracking server
    that is restarting; a failure marks the run FAILED when the server allows it."""
    import mlflow

    run = mlflow.start_run(**start_kwargs)
    try:
        yield run
    except BaseException:
        if mlflow.active_run() is not None:
            try:
                mlflow.end_run(status="FAILED")
            except Exception:  # the server is away: the run stays unfinished, a rerun resumes it
                pass
        raise
    with_retry("finish the run", mlflow.end_run)


def find_unfinished_run(experiment_id: str, attempt: str):
    """The newest run of this attempt that did not finish (killed, preempted, failed)."""
    import mlflow

    runs = mlflow.tracking.MlflowClient().search_runs(
        [experiment_id], filter_string=f"tags.`{ATTEMPT_TAG}` = '{attempt}'",
        order_by=["attribute.start_time DESC"], max_results=1,
    )
    if runs and runs[0].info.status != "FINISHED":
        return runs[0]
    return None


def last_logged_step(run_id: str, key: str = "loss") -> int:
    import mlflow

    history = mlflow.tracking.MlflowClient().get_metric_history(run_id, key)
    return max((m.step for m in history), default=0)


def retry_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(RETRY_SECONDS_ENV) or DEFAULT_RETRY_SECONDS))
    except ValueError:
        return DEFAULT_RETRY_SECONDS


def server_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the tracking server could not be reached (refused,
    reset, timed out, 503) rather than that it rejected the request."""
    import requests

    unreachable = (requests.exceptions.ConnectionError, requests.exceptions.Timeout,
                   requests.exceptions.RetryError, ConnectionError, TimeoutError)
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, unreachable):
            return True
        if getattr(exc, "error_code", None) == "TEMPORARILY_UNAVAILABLE":
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def with_retry(what: str, call, *args, **kwargs):
    """``call(*args, **kwargs)``; while the tracking server is unreachable, retry with
    backoff for up to retry_seconds(), then fail with a TrackingError. Other errors
    are raised at once. For the end-of-run calls: a server restart must not cost a
    finished training."""
    started = time.monotonic()
    delay = 1.0
    while True:
        try:
            return call(*args, **kwargs)
        except Exception as exc:
            if not server_unavailable(exc):
                raise
            if time.monotonic() + delay > started + retry_seconds():
                import mlflow

                raise TrackingError(
                    f"could not {what}: the MLflow tracking server {mlflow.get_tracking_uri()} is"
                    f" still unreachable after {time.monotonic() - started:.0f} s; check the server"
                    f" (or raise {RETRY_SECONDS_ENV}) and run again"
                ) from None
            say(f"tracking: could not {what} (server unreachable); retrying in {delay:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


def log_and_register_model(config: PipelineConfig, fit_result, model_dir: Path) -> dict:
    """Log the model with the transformers flavor (and its signature), register it
    under the pipeline's model name and point the ``challenger`` alias at it. Each
    step waits (bounded) for a tracking server that is restarting."""
    import mlflow

    if config.task == "seq2seq":
        # transformers 5 has no text2text-generation pipeline for the transformers
        # flavor: log a pyfunc that wraps the saved model directory instead.
        from mlflow.models import infer_signature

        from lakefine.mlflow_models import Seq2SeqModel

        info = with_retry(
            "log the model", mlflow.pyfunc.log_model,
            name="model",
            python_model=Seq2SeqModel(),
            artifacts={"model_dir": str(model_dir)},
            pip_requirements=MODEL_PIP_REQUIREMENTS + ["lakefine"],
            signature=infer_signature(["a question"], ["an answer"]),
        )
    else:
        info = with_retry(
            "log the model", mlflow.transformers.log_model,
            transformers_model={"model": fit_result.model, "tokenizer": fit_result.tokenizer},
            name="model",
            task="text-classification",
            pip_requirements=MODEL_PIP_REQUIREMENTS,
            input_example=["an example sentence"],
        )
    result = {"model_uri": info.model_uri, "registered_model": None, "version": None}
    if config.tracking.register:
        name = registered_name(config)
        version = with_retry("register the model", mlflow.register_model, info.model_uri, name)
        client = mlflow.tracking.MlflowClient()
        with_retry("set the model alias", client.set_registered_model_alias, name, ALIAS, version.version)
        result.update(registered_model=name, version=int(version.version),
                      registered_uri=f"models:/{name}@{ALIAS}")
    with_retry("log the model location", mlflow.log_dict, {"model_dir": str(model_dir)},
               "lakefine_model_location.json")
    return result


def registered_name(config: PipelineConfig) -> str:
    """Unity Catalog needs catalog.schema.model: on Databricks a bare name is put in
    the schema of the working volume."""
    name = config.registered_model_name
    if on_databricks() and name.count(".") != 2:
        catalog, schema = config.runtime.volume.split("/")[2:4]
        return f"{catalog}.{schema}.{name}"
    return name


def log_test_predictions(predictions: dict) -> None:
    import mlflow

    if predictions:
        with_retry("log the test predictions", mlflow.log_dict, predictions, "test_predictions.json")


def load_json_artifact(run_id: str, path: str) -> Optional[dict]:
    import mlflow

    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path)
    return json.loads(Path(local).read_text())
