"""Secrets stay out of configs and out of everything a run writes.

A pipeline file (or an override) that holds a token is refused: configs are logged to
MLflow as params. Every message, log line, param and tag goes through one redaction
helper (``lakefine.core.redact``): tokens and URI credentials in strings, lists and
nested dicts, on the success and the error paths. And a Databricks token planted in
the environment, as a job would have it, plus ``user:password@`` in the tracking URI,
must not show up in any output of a real end-to-end run against a real server."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import REPO, STORE_TEMPLATE, make_config
from lakefine.core.config import config_from_dict
from lakefine.core.errors import ConfigError

SMOKE = str(REPO / "pipelines/smoke.yaml")
# A fresh fake token per test run: a hit can only come from this run. Parallel
# workers (pytest-xdist) must collect the same test ids: they share the run's id.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID")
TOKEN = "dapi" + (hashlib.sha256(_RUN.encode()).hexdigest()[:32] if _RUN else secrets.token_hex(16))


def _base() -> dict:
    return {"name": "t", "source": {"path": "/Volumes/main/lakefine/raw/x.csv"}}


@pytest.mark.parametrize(
    "section, key, value",
    [
        ("tracking", "tracking_uri", TOKEN),  # a token where a URI belongs
        ("tracking", "tracking_uri", f"  {TOKEN}-2 "),  # with an index suffix and blanks
        ("tracking", "token", "s3cr3t-value"),  # an unknown key that names a secret
        ("tracking", "databricks_token", TOKEN),
        ("runtime", "api_key", "s3cr3t-value"),
        ("source", "options", {"password": "s3cr3t-value"}),  # reader options are logged too
        (None, "token", TOKEN),  # top level
    ],
)
def test_an_inline_secret_is_refused(section, key, value):
    raw = _base()
    if section is None:
        raw[key] = value
    else:
        raw.setdefault(section, {})[key] = value
    with pytest.raises(ConfigError) as error:
        config_from_dict(raw)
    message = str(error.value)
    secret_problems = [p for p in error.value.problems if "DATABRICKS_TOKEN" in p]
    assert secret_problems, message
    assert "profile" in secret_problems[0]  # the fix: an environment variable or a profile
    assert key in secret_problems[0] or "password" in secret_problems[0]  # names the key
    assert TOKEN not in message and "s3cr3t-value" not in message  # never echoes the secret


def test_a_token_inside_a_uri_is_refused():
    raw = {**_base(), "tracking": {"tracking_uri": f"https://token:{TOKEN}@dbc-1.cloud.databricks.com"}}
    with pytest.raises(ConfigError, match="DATABRICKS_TOKEN"):
        config_from_dict(raw)


def test_a_token_in_a_typed_field_is_not_echoed():
    raw = {**_base(), "train": {"batch_size": TOKEN}}
    with pytest.raises(ConfigError) as error:
        config_from_dict(raw)
    assert TOKEN not in str(error.value)


def test_ordinary_values_are_not_mistaken_for_secrets():
    config = make_config(tracking={"tracking_uri": "http://127.0.0.1:5000", "experiment": "dapi-like-name"})
    assert config.tracking.tracking_uri == "http://127.0.0.1:5000"


# ---------------------------------------------------------------- the redaction helper

HF_TOKEN = "hf_" + hashlib.sha256(TOKEN.encode()).hexdigest()[:34]
PASSWORD = "pw" + hashlib.sha256(HF_TOKEN.encode()).hexdigest()[:14]


@pytest.mark.parametrize(
    "text, kept",
    [
        (f"http://lakefine:{PASSWORD}@127.0.0.1:5000/api", "http://***@127.0.0.1:5000/api"),
        (f"https://token:{TOKEN}@dbc-1.cloud.databricks.com", "https://***@dbc-1.cloud.databricks.com"),
        (f"error from {TOKEN}-2 here", "error from *** here"),
        (f"login with {HF_TOKEN}", "login with ***"),
        (f"Authorization: Bearer {PASSWORD}", "Authorization: Bearer ***"),
        (f"GET /api?token={PASSWORD}&x=1", "GET /api?token=***&x=1"),  # the SDK's debug text
        (f'{{"password": "{PASSWORD}", "n": 1}}', '{"password": "***", "n": 1}'),
        ("http://user@host/x, dapi-like-name, hf_model, tokens p50/p99", None),  # nothing to mask
        ("tracking.token: secrets must not be written in a pipeline file", None),
    ],
    ids=["uri-password", "uri-token", "dapi", "hf", "bearer", "query", "json", "ordinary", "prose"],
)
def test_redact_masks_credentials_in_text(text, kept):
    from lakefine.core.redact import contains_secret, redact

    assert redact(text) == (kept if kept is not None else text)
    assert contains_secret(text) is (kept is not None)


def test_redact_walks_lists_nested_dicts_and_stops_at_a_cycle():
    from lakefine.core.redact import redact

    value = {"options": {"paths": ["a", {"auth": f"Bearer {TOKEN}"}], TOKEN: (HF_TOKEN, 3)}}
    assert redact(value) == {"options": {"paths": ["a", {"auth": "Bearer ***"}], "***": ("***", 3)}}
    loop: list = [f"x {TOKEN}"]
    loop.append(loop)  # a YAML alias that contains itself
    assert redact(loop) == ["x ***", "***"]


def test_an_hf_token_inside_a_list_is_refused_and_not_echoed():
    raw = {**_base(), "source": {**_base()["source"], "options": {"headers": ["a", f"Bearer {HF_TOKEN}"]}}}
    with pytest.raises(ConfigError) as error:
        config_from_dict(raw)
    assert error.value.problems[0].startswith("source.options.headers[1]: looks like a credential")
    assert HF_TOKEN not in str(error.value)


@pytest.mark.parametrize(
    "hub",
    [HF_TOKEN, [HF_TOKEN], {"name": {"user": "me", "header": "anything at all"}}],
    ids=["string", "list", "mapping-for-a-string"],
)
def test_a_bad_hub_section_never_echoes_its_value(hub):
    with pytest.raises(ConfigError) as error:
        config_from_dict({"name": "t", "source": {"hub": hub}})
    message = str(error.value)
    assert "source.hub" in message
    assert HF_TOKEN not in message and "anything at all" not in message


def test_credentials_in_an_unreachable_tracking_uri_are_not_printed(local_root):
    from test_tracking_resilience import free_port

    uri = f"http://lakefine:{PASSWORD}@127.0.0.1:{free_port()}"
    env = {**os.environ, "LAKEFINE_LOCAL_ROOT": str(local_root), "MLFLOW_TRACKING_URI": uri}
    result = subprocess.run(
        [sys.executable, "-m", "lakefine.cli", "run", SMOKE],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert "MLflow tracking server http://***@127.0.0.1:" in result.stderr and "unreachable" in result.stderr
    assert PASSWORD not in result.stdout + result.stderr and "Traceback" not in result.stderr


def test_the_health_check_sends_uri_credentials_as_basic_auth():
    """urllib took "user:password@host" for a host name: a reachable server with
    credentials in the URI was reported unreachable."""
    import base64
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from lakefine.tracking.client import check_reachable

    expected = "Basic " + base64.b64encode(f"lakefine:{PASSWORD}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200 if self.headers.get("Authorization") == expected else 401)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        check_reachable(f"http://lakefine:{PASSWORD}@127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()


def test_a_token_given_as_an_override_is_refused_by_the_cli(local_root):
    env = {**os.environ, "LAKEFINE_LOCAL_ROOT": str(local_root)}
    env.pop("MLFLOW_TRACKING_URI", None)
    result = subprocess.run(
        [sys.executable, "-m", "lakefine.cli", "run", SMOKE, f"tracking.tracking_uri={TOKEN}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "tracking.tracking_uri" in result.stderr and "DATABRICKS_TOKEN" in result.stderr
    assert "Traceback" not in result.stderr
    assert TOKEN not in result.stdout + result.stderr
    assert not (local_root / "Volumes/main/lakefine/prep").exists()


# ---------------------------------------------------------------- end to end


class _Scanner(threading.Thread):
    """Reads every file under ``base`` (again whenever it changes) while a run writes
    them, and once more at the end: checkpoints only live until the run finishes.
    Symlinks are not followed (they point at the shared input data, which no run
    writes). Collects the files whose bytes or names hold a needle."""

    def __init__(self, base: Path, needles: list[bytes]):
        super().__init__(daemon=True)
        self.base, self.needles = base, needles
        self.seen: set = set()
        self.scanned: set[str] = set()
        self.hits: set[str] = set()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.scan()

    def finish(self) -> None:
        self.done.set()
        self.join(timeout=60)
        self.scan()

    def scan(self) -> None:
        for directory, dirs, files in os.walk(self.base, followlinks=False):
            for name in files + dirs:
                path = os.path.join(directory, name)
                if any(n in path.encode() for n in self.needles):
                    self.hits.add(f"{path} (name)")
                if name not in files:
                    continue
                try:
                    st = os.lstat(path)
                    if not stat.S_ISREG(st.st_mode) or (path, st.st_size, st.st_mtime_ns) in self.seen:
                        continue
                    with open(path, "rb") as handle:
                        data = handle.read()
                except OSError:  # deleted meanwhile: it was read before, or is read next time
                    continue
                self.seen.add((path, st.st_size, st.st_mtime_ns))
                self.scanned.add(path)
                if any(n in data for n in self.needles):
                    self.hits.add(path)


@pytest.mark.slow
def test_a_databricks_token_and_tracking_credentials_appear_in_no_output(local_root, tmp_path, shared_root):
    """A real run against a real ``mlflow server`` whose URI carries ``user:password@``,
    with a Databricks token planted in the environment: neither appears in stdout,
    stderr (MLflow's own "View run at" line included), any file written, nor any param
    or tag on the server."""
    from test_tracking_resilience import MlflowServer, free_port

    scratch, home, tmp, cwd, store = (tmp_path / d for d in ("scratch", "home", "tmp", "cwd", "server"))
    for d in (scratch, home, tmp, cwd, store):
        d.mkdir()
    shutil.copyfile(shared_root / STORE_TEMPLATE, store / "db.sqlite")  # migrated once (4 s), not per server
    server = MlflowServer(store, free_port())
    server.start()
    env = {
        **os.environ,
        "LAKEFINE_LOCAL_ROOT": str(local_root),
        "DATABRICKS_TOKEN": TOKEN,
        "DATABRICKS_HOST": "https://dbc-00000000-0000.cloud.databricks.com",
        "MLFLOW_TRACKING_URI": server.uri.replace("http://", f"http://lakefine:{PASSWORD}@"),
        # anything written to the home directory or temp files is scanned too
        "HOME": str(home),
        "TMPDIR": str(tmp),
    }
    env.pop("DATABRICKS_RUNTIME_VERSION", None)
    needles = [TOKEN.encode(), TOKEN[4:].encode(), PASSWORD.encode()]  # also the bare hex part
    scanner = _Scanner(tmp_path, needles)
    scanner.start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "lakefine.cli", "run", SMOKE, f"runtime.working_dir={scratch}", "--json"],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=900,  # a safety net for a hung run, not a timing check: 300 s was hit at load 10
        )
    finally:
        scanner.finish()
        server.stop()
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads(result.stdout)
    run_id = summary["train"]["run_id"]

    assert TOKEN[4:] not in result.stdout + result.stderr and PASSWORD not in result.stdout + result.stderr
    assert f"train: MLflow run {run_id}" in result.stderr and "(http://***@127.0.0.1:" in result.stderr

    # the run really wrote what we scan: dataset, store, artifacts, model, checkpoints
    dataset = Path(summary["prepare"]["dataset"])
    assert (dataset / "manifest.json").is_file() and list(dataset.rglob("*.arrow"))
    assert (store / "db.sqlite").is_file() and list((store / "art").rglob("MLmodel"))
    assert (Path(summary["train"]["model_dir"]) / "config.json").is_file()
    checkpoint_files = {Path(p).name for p in scanner.scanned if "/checkpoint-" in p}
    assert {"training_args.bin", "trainer_state.json", "model.safetensors"} <= checkpoint_files
    assert str(store / "db.sqlite") in scanner.scanned
    assert sorted(scanner.hits) == []
    # the scan does find what is there: the run id is in the store's bytes
    control = _Scanner(store, [run_id.encode()])
    control.scan()
    assert str(store / "db.sqlite") in control.hits

    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{store / 'db.sqlite'}")  # the server's store, read directly
    run = client.get_run(run_id)
    assert run.data.params and run.data.tags
    logged = {**run.data.params, **run.data.tags}
    experiment = client.get_experiment(run.info.experiment_id)
    logged.update(experiment.tags)
    version = client.get_model_version_by_alias("smoke_classifier", "challenger")
    logged.update(version.tags)
    for model in client.search_logged_models(experiment_ids=[run.info.experiment_id]):
        logged.update({f"model.{k}": v for k, v in (model.params or {}).items()})
        logged.update({f"model.{k}": v for k, v in (model.tags or {}).items()})
    leaked = {k: v for k, v in logged.items() if TOKEN[4:] in f"{k}={v}" or PASSWORD in f"{k}={v}"}
    assert leaked == {}
    assert mlflow.active_run() is None
