"""The MLflow client side: where runs go, whether the server answers, and retries
while it restarts.

Locally the store is sqlite under the local root (``MLFLOW_TRACKING_URI`` wins, so a
real ``mlflow server`` works too); on Databricks the registry is Unity Catalog.
``mlflow`` itself is imported inside ``setup`` and the error paths only: it takes
seconds to import, and an unreachable server must fail before that.
"""

from __future__ import annotations

import base64
import http.client
import logging
import os
import time
import urllib.parse
import urllib.request

import requests

from lakefine.core import paths
from lakefine.core.config import PipelineConfig
from lakefine.core.errors import TrackingError
from lakefine.core.log import first_line, say
from lakefine.core.redact import contains_secret, redact_text
from lakefine.core.session import on_databricks

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
    import mlflow  # see the module docstring

    redact_mlflow_logs()
    if contains_secret(uri):
        # MLflow writes "View run ... at: <uri>/#/..." straight to stdout, credentials and
        # all; lakefine's own "train: MLflow run ..." line names the run (redacted).
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
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
        with urllib.request.urlopen(_health_request(uri), timeout=timeout_s) as response:
            if response.status == 200:
                return
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise TrackingError(
            f"MLflow tracking server {uri} is unreachable (GET /health: {first_line(exc)}); start"
            " it, fix MLFLOW_TRACKING_URI, or unset MLFLOW_TRACKING_URI to use the local sqlite store"
        ) from None


def _health_request(uri: str) -> urllib.request.Request:
    """GET <uri>/health; credentials in the URI (``http://user:password@host``) go into a
    Basic Authorization header, as MLflow's own client sends them (urllib would take
    ``user:password@host`` for the host name)."""
    parts = urllib.parse.urlsplit(uri.rstrip("/"))
    headers = {}
    if parts.username is not None or parts.password is not None:
        user = urllib.parse.unquote(parts.username or "")
        password = urllib.parse.unquote(parts.password or "")
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
    return urllib.request.Request(f"{urllib.parse.urlunsplit(parts)}/health", headers=headers)


class RedactingFilter(logging.Filter):
    """MLflow logs the tracking URI itself ("View run ... at: http://user:password@host/#/...");
    installed on its handlers, this masks credentials in every record they emit."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def redact_mlflow_logs() -> None:
    """Put a RedactingFilter on the handlers of MLflow's logger and the root logger
    (filters on a logger would miss its children's records; handlers see them all)."""
    for logger in (logging.getLogger("mlflow"), logging.getLogger()):
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())


def retry_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(RETRY_SECONDS_ENV) or DEFAULT_RETRY_SECONDS))
    except ValueError:
        return DEFAULT_RETRY_SECONDS


def server_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the tracking server could not be reached (refused,
    reset, timed out, 503) rather than that it rejected the request."""
    unreachable = (
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        requests.exceptions.RetryError,
        ConnectionError,
        TimeoutError,
    )
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
                import mlflow  # only on this error path: see the module docstring

                raise TrackingError(
                    f"could not {what}: the MLflow tracking server {mlflow.get_tracking_uri()} is"
                    f" still unreachable after {time.monotonic() - started:.0f} s; check the server"
                    f" (or raise {RETRY_SECONDS_ENV}) and run again"
                ) from None
            say(f"tracking: could not {what} (server unreachable); retrying in {delay:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, 10.0)
