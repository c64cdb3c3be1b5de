"""What an MLflow run records (config, dataset, data card, label map, test
predictions) and how an interrupted training finds its unfinished run again."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import mlflow

from lakefine.core.config import PipelineConfig
from lakefine.core.redact import redact
from lakefine.tracking.client import with_retry


def log_run_inputs(config: PipelineConfig, manifest: dict) -> None:
    params = {f"lakefine.{k}": redact(v)[:500] for k, v in config.flat_params().items()}  # redact, then cut
    params.update(
        {
            "data.key": manifest["key"],
            "data.rows": manifest["rows"],
            "data.max_length": manifest["max_length"],
        }
    )
    if manifest["label_map"]:
        params["data.num_labels"] = len(manifest["label_map"]["id2label"])
    else:
        params["data.target_max_length"] = manifest.get("target_max_length")
    # Params, tags and the logged config go through the one redaction helper: a URI
    # with user:password@ or a token in a reader option must not reach the server.
    mlflow.log_params(redact(params))
    mlflow.set_tags(
        redact({"lakefine.pipeline": config.name, "lakefine.task": config.task, "lakefine.dataset": manifest["key"]})
    )
    if manifest["label_map"]:
        mlflow.log_dict(manifest["label_map"], "label_map.json")
    mlflow.log_dict(manifest["data_card"], "data_card.json")
    mlflow.log_dict(redact(config.to_dict()), "pipeline_config.json")


ATTEMPT_TAG = "lakefine.attempt"


@contextlib.contextmanager
def started_run(**start_kwargs):
    """``mlflow.start_run`` whose closing call waits (bounded) for a tracking server
    that is restarting; a failure marks the run FAILED when the server allows it."""
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


def unfinished_runs(experiment_id: str, attempt: str) -> list:
    """This attempt's runs that did not finish (killed, preempted, failed), newest first."""
    found = mlflow.tracking.MlflowClient().search_runs(
        [experiment_id],
        filter_string=f"tags.`{ATTEMPT_TAG}` = '{attempt}'",
        order_by=["attribute.start_time DESC"],
        max_results=50,
    )
    return [run for run in found if run.info.status != "FINISHED"]


def mark_killed(run_id: str) -> None:
    with_retry("mark a dead run KILLED", mlflow.tracking.MlflowClient().set_terminated, run_id, "KILLED")


def last_logged_step(run_id: str, key: str = "loss") -> int:
    history = mlflow.tracking.MlflowClient().get_metric_history(run_id, key)
    return max((m.step for m in history), default=0)


def log_test_predictions(predictions: dict) -> None:
    if predictions:
        with_retry("log the test predictions", mlflow.log_dict, predictions, "test_predictions.json")


def load_json_artifact(run_id: str, path: str) -> dict | None:
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path)
    return json.loads(Path(local).read_text())
