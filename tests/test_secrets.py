"""Secrets stay out of configs and out of everything a run writes.

A pipeline file (or an override) that holds a token is refused: configs are logged to
MLflow as params. And a Databricks token planted in the environment, as a job would
have it, must not show up in any output of a real end-to-end run."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import REPO, make_config
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
def test_a_databricks_token_in_the_environment_appears_in_no_output(local_root, tmp_path):
    scratch, home, tmp, cwd = (tmp_path / d for d in ("scratch", "home", "tmp", "cwd"))
    for d in (scratch, home, tmp, cwd):
        d.mkdir()
    env = {
        **os.environ,
        "LAKEFINE_LOCAL_ROOT": str(local_root),
        "DATABRICKS_TOKEN": TOKEN,
        "DATABRICKS_HOST": "https://dbc-00000000-0000.cloud.databricks.com",
        # anything written to the home directory or temp files is scanned too
        "HOME": str(home),
        "TMPDIR": str(tmp),
    }
    env.pop("MLFLOW_TRACKING_URI", None)  # the sqlite store under the local root
    env.pop("DATABRICKS_RUNTIME_VERSION", None)
    needles = [TOKEN.encode(), TOKEN[4:].encode()]  # also the bare hex part
    scanner = _Scanner(tmp_path, needles)
    scanner.start()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "lakefine.cli", "run", SMOKE, f"runtime.working_dir={scratch}", "--json"],
            env=env,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        scanner.finish()
    assert result.returncode == 0, result.stderr[-4000:]
    summary = json.loads(result.stdout)
    run_id = summary["train"]["run_id"]

    assert TOKEN[4:] not in result.stdout + result.stderr

    # the run really wrote what we scan: dataset, store, artifacts, model, checkpoints
    dataset = Path(summary["prepare"]["dataset"])
    assert (dataset / "manifest.json").is_file() and list(dataset.rglob("*.arrow"))
    assert (local_root / "mlflow.db").is_file() and list((local_root / "mlartifacts").rglob("MLmodel"))
    assert (Path(summary["train"]["model_dir"]) / "config.json").is_file()
    checkpoint_files = {Path(p).name for p in scanner.scanned if "/checkpoint-" in p}
    assert {"training_args.bin", "trainer_state.json", "model.safetensors"} <= checkpoint_files
    assert str(local_root / "mlflow.db") in scanner.scanned
    assert sorted(scanner.hits) == []
    # the scan does find what is there: the run id is in the store's bytes
    control = _Scanner(local_root, [run_id.encode()])
    control.scan()
    assert str(local_root / "mlflow.db") in control.hits

    import mlflow
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{local_root / 'mlflow.db'}")
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
    leaked = {k: v for k, v in logged.items() if TOKEN[4:] in f"{k}={v}"}
    assert leaked == {}
    assert mlflow.active_run() is None
