"""The tracking server misbehaves: nobody listens, something listens but never answers
(or answers garbage), or a real ``mlflow server`` dies in the middle of training and
comes back. lakefine must fail fast before any Spark work in the first cases, and
lose neither the run nor a single per-step metric in the last one."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, STORE_TEMPLATE, store_untouched, with_smoke_dataset

SMOKE = str(REPO / "pipelines/smoke.yaml")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli_env(local_root: Path, tracking_uri: str, **extra: str) -> dict:
    env = {**os.environ, "LAKEFINE_LOCAL_ROOT": str(local_root), "MLFLOW_TRACKING_URI": tracking_uri}
    env.update(extra)
    return env


# ------------------------------------------------------------- no usable server


class _SocketServer:
    """A TCP port that accepts connections and then either says nothing at all
    (``silent``: a hung host) or answers with something that is not HTTP."""

    def __init__(self, mode: str):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self.mode == "garbage":
                try:
                    conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")
                finally:
                    conn.close()
            else:
                self.held.append(conn)  # accepted, never answered

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture(params=["refused", "silent", "garbage"])
def bad_tracking_uri(request):
    if request.param == "refused":
        yield f"http://127.0.0.1:{free_port()}"  # nobody listens there
        return
    server = _SocketServer(request.param)
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.close()


def test_bad_tracking_server_fails_before_any_work(local_root, bad_tracking_uri):
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "lakefine.cli", "run", SMOKE],
        env=cli_env(local_root, bad_tracking_uri),
        capture_output=True,
        text=True,
        timeout=60,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr[-3000:]
    assert elapsed < 15, f"took {elapsed:.1f} s to give up on {bad_tracking_uri}"
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    message = [line for line in result.stderr.splitlines() if line.startswith("lakefine: error:")]
    assert message and bad_tracking_uri in message[0], result.stderr[-3000:]
    assert "MLFLOW_TRACKING_URI" in message[0]  # ... and how to fix it
    assert "prepare:" not in result.stderr and "train:" not in result.stderr
    assert not (local_root / "Volumes/main/lakefine/prep").exists()  # no dataset, model, checkpoint
    assert store_untouched(local_root)


def test_check_reachable_gives_up_on_a_silent_host_within_its_timeout():
    from lakefine.core.errors import TrackingError
    from lakefine.tracking.client import check_reachable

    server = _SocketServer("silent")
    try:
        started = time.monotonic()
        with pytest.raises(TrackingError, match="unreachable"):
            check_reachable(f"http://127.0.0.1:{server.port}", timeout_s=1.0)
        assert time.monotonic() - started < 3
    finally:
        server.close()


def test_with_retry_waits_for_an_unreachable_server_then_gives_up(monkeypatch):
    """Only "cannot reach the server" is retried (bounded); a rejected request is not."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from lakefine.core.errors import TrackingError
    from lakefine.tracking import client as tracking

    # A real refused request, as MLflow reports it (no client retries: fast).
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    client = MlflowClient(tracking_uri=f"http://127.0.0.1:{free_port()}")
    with pytest.raises(MlflowException) as refused:
        client.get_run("0" * 32)
    assert tracking.server_unavailable(refused.value)
    assert not tracking.server_unavailable(MlflowException("RESOURCE_DOES_NOT_EXIST"))

    calls = []

    def flaky():
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise refused.value
        return "logged"

    monkeypatch.setenv(tracking.RETRY_SECONDS_ENV, "30")
    assert tracking.with_retry("log something", flaky) == "logged" and len(calls) == 3

    def rejected():
        calls.append(time.monotonic())
        raise MlflowException("INVALID_PARAMETER_VALUE: no")

    calls.clear()
    with pytest.raises(MlflowException, match="INVALID_PARAMETER_VALUE"):
        tracking.with_retry("log something", rejected)
    assert len(calls) == 1

    monkeypatch.setenv(tracking.RETRY_SECONDS_ENV, "2")
    started = time.monotonic()
    with pytest.raises(TrackingError, match="could not log something.*still unreachable"):
        tracking.with_retry("log something", client.get_run, "0" * 32)
    assert time.monotonic() - started < 10


# ------------------------------------------------ a real server that goes away


def _processes_in_group(pgid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # fields after the command: state, ppid, pgrp, ...; zombies are already dead
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


class MlflowServer:
    """``mlflow server`` on a sqlite store, in its own process group so that
    stopping it kills the uvicorn worker too (a crash, not a clean shutdown)."""

    def __init__(self, workdir: Path, port: int):
        self.workdir = workdir
        self.port = port
        self.uri = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self, timeout: float = 90) -> float:
        started = time.monotonic()
        self.starts += 1
        log = open(self.workdir / f"server-{self.starts}.log", "wb")  # noqa: SIM115 (the server's stdout while it lives)
        mlflow_bin = Path(sys.executable).with_name("mlflow")
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no huey workers
        env.pop("MLFLOW_TRACKING_URI", None)
        self.proc = subprocess.Popen(
            [
                str(mlflow_bin),
                "server",
                "--backend-store-uri",
                f"sqlite:///{self.workdir / 'db.sqlite'}",
                "--default-artifact-root",
                str(self.workdir / "art"),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.workdir,
            start_new_session=True,
        )
        log.close()
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.3)
        self.stop()
        pytest.fail(
            f"mlflow server did not come up on {self.uri}:\n"
            + (self.workdir / f"server-{self.starts}.log").read_text()[-3000:]
        )

    def stop(self) -> None:
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the leader's pid is the group id
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)
        deadline = time.monotonic() + 10
        while _processes_in_group(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _processes_in_group(pgid), f"server processes left in group {pgid}"
        self.proc = None

    def get(self, endpoint: str, **query) -> dict:
        url = f"{self.uri}/api/2.0/mlflow/{endpoint}?{urllib.parse.urlencode(query)}"
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())


@pytest.fixture()
def mlflow_server(tmp_path, shared_root):
    servers: list[MlflowServer] = []

    def make() -> MlflowServer:
        workdir = tmp_path / f"server{len(servers)}"
        workdir.mkdir()
        shutil.copyfile(shared_root / STORE_TEMPLATE, workdir / "db.sqlite")  # migrated once, not per server
        server = MlflowServer(workdir, free_port())
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


class _Lines:
    """Reads a subprocess's stderr in a thread (so it never blocks on a full pipe)
    and calls ``on_marker`` as soon as a line containing ``marker`` arrives."""

    def __init__(self, stream, marker: str | None = None, on_marker=None):
        self.lines: list[str] = []
        self.marker, self.on_marker = marker, on_marker
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.append(line)
            if self.marker and self.marker in line:
                self.marker = None
                self.on_marker()

    def find(self, prefix: str):
        return next((line for line in self.lines if prefix in line), None)

    @property
    def text(self) -> str:
        return "".join(self.lines)


MAX_STEPS = 60


@pytest.mark.slow
@pytest.mark.parametrize(
    "client_retries, outages",
    [
        ("mlflow-default", ["training"]),  # MLflow's own HTTP retries wait for the server
        # MLFLOW_HTTP_REQUEST_MAX_RETRIES=0: lakefine's callback buffers the steps, then the
        # server goes down again while the model is saved, logged and registered.
        ("none", ["training", "end-of-run"]),
    ],
    ids=["mlflow-default-training", "none-training-then-end-of-run"],
)
def test_training_survives_a_tracking_server_restart(
    local_root, tmp_path, mlflow_server, smoke_dataset, client_retries, outages
):
    """The server is SIGKILLed (with its worker) while training logs per-step metrics,
    and/or just when the end-of-run calls start (the model is being saved), and
    restarted on the same port and store a few seconds later, each time. Exit 0, every
    step's loss in the history, the run finished, the model logged and registered on the
    restarted server."""
    with_smoke_dataset(local_root, smoke_dataset)  # about training: the run starts no Spark
    server = mlflow_server()
    first_start = server.start()
    extra = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"} if client_retries == "none" else {}
    started = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lakefine.cli",
            "run",
            SMOKE,
            f"train.max_steps={MAX_STEPS}",
            "train.logging_steps=1",
            "train.batch_size=8",
            f"runtime.working_dir={tmp_path / 'scratch'}",
            "--json",
        ],
        env=cli_env(local_root, server.uri, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    err = _Lines(proc.stderr)
    run_id, logged, seen = None, [], []
    try:
        for outage_during in outages:
            # Training: the run id, then a few logged steps. End of run: the final
            # metrics arrived (mlflow.log_metrics); the model is saved, logged and
            # registered next, which takes seconds.
            ready = False
            deadline = time.monotonic() + 150
            while not ready and time.monotonic() < deadline and proc.poll() is None:
                line = err.find("train: MLflow run ")
                if line and run_id is None:
                    run_id = line.split("train: MLflow run ")[1].split()[0]
                if run_id and outage_during == "training":
                    history = server.get("metrics/get-history", run_id=run_id, metric_key="loss")
                    logged = [m["step"] for m in history.get("metrics", [])]
                    ready = len(logged) >= 3
                elif run_id:
                    run = server.get("runs/get", run_id=run_id)["run"]
                    ready = any(m["key"] == "test_accuracy" for m in run["data"].get("metrics", []))
                time.sleep(0.1)
            assert ready, f"never reached the {outage_during} phase:\n{err.text[-3000:]}"
            server.stop()
            assert proc.poll() is None, f"the pipeline had finished before the server went away ({outage_during})"
            killed_at = time.monotonic()
            time.sleep(3)  # the server is away
            restart = server.start()
            seen.append(
                f"killed {'at step ' + str(max(logged)) if outage_during == 'training' else 'at end of run'},"
                f" outage {time.monotonic() - killed_at:.1f} s (restart {restart:.1f} s)"
            )
        out, _ = proc.communicate(timeout=240)
        err.thread.join(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, err.text[-4000:]
    assert "Traceback" not in err.text
    summary = json.loads(out)
    run_id = summary["train"]["run_id"]
    if "training" in outages:
        assert max(logged) < MAX_STEPS, "training had finished before the server went away"
    print(f"\n[{client_retries}] first start {first_start:.1f} s, {'; '.join(seen)}, pipeline {elapsed:.1f} s")
    print("\n".join(re.findall(r"\[lakefine\] tracking:[^\r\n]*", err.text)))
    if client_retries == "none":  # the outage was seen, and waited out, by lakefine itself
        assert "tracking: could not" in err.text, err.text[-3000:]

    history = server.get("metrics/get-history", run_id=run_id, metric_key="loss")["metrics"]
    steps = [m["step"] for m in history]
    assert set(steps) == set(range(1, MAX_STEPS + 1)), sorted(set(range(1, MAX_STEPS + 1)) - set(steps))
    run = server.get("runs/get", run_id=run_id)["run"]
    assert run["info"]["status"] == "FINISHED"
    metrics = {m["key"] for m in run["data"].get("metrics", [])}
    assert {"test_accuracy", "validation_f1_macro"} <= metrics
    alias = server.get("registered-models/alias", name="smoke_classifier", alias="challenger")
    assert alias["model_version"]["run_id"] == run_id
