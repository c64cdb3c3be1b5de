"""Shared fixtures: one local SparkSession for the run, an isolated local root
(stand-in volume + MLflow store) per test that needs one, the real bundled data
staged once, and a tiny random BERT built from config with MiniLM's tokenizer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


# The local Spark Connect session of the Connect tests' child scripts, with the same
# small-machine tuning as lakefine.prep.session.local_session. Static confs take effect
# when the local server starts; setting them again on the session only warns.
CONNECT_SESSION = r"""
import warnings
from pyspark.sql import SparkSession
from lakefine.prep.session import local_java_options

warnings.filterwarnings("ignore", message="Failed to set spark")
jvm_opts = local_java_options()
spark = (SparkSession.builder.remote("local[2]")
         .config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false")
         .config("spark.sql.shuffle.partitions", "4")
         .config("spark.default.parallelism", "4")
         .config("spark.driver.extraJavaOptions", jvm_opts)
         .config("spark.executor.extraJavaOptions", jvm_opts)
         .getOrCreate())
"""
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Each parallel worker gets a temp dir of its own: the default local-SSD scratch
    # (checkpoints, staging) lives under it, and two workers must never share one.
    import tempfile

    _worker_tmp = Path(tempfile.gettempdir()) / f"lakefine-{os.environ['PYTEST_XDIST_WORKER']}-{os.getpid()}"
    _worker_tmp.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(_worker_tmp)
    tempfile.tempdir = None  # recomputed from TMPDIR on next use
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.pop("MLFLOW_TRACKING_URI", None)
os.environ.pop("DATABRICKS_RUNTIME_VERSION", None)


# The test files by the seconds their tests took (summed per file, the checkout's run of
# 2026-12-04 evening, 378 tests), longest first. Under `--dist loadfile` a worker takes
# whole files in this order and the run ends with its last file: a long file collected
# last would run alone at the end. Longest first leaves the short files to fill the
# gaps. scripts/test.sh passes `--no-loadscope-reorder`: xdist otherwise reorders the
# files by their number of tests (test_config's many small ones first, the 87-second
# real-model test among the last). Only the order of files changes, never the order
# within a file; a file not listed goes after these.
LONGEST_FIRST = (
    "test_tasks test_tracking_resilience test_bad_input test_scoring test_atomic_publish"
    " test_real_model test_cache_keys test_secrets test_architecture test_preemption"
    " test_concurrency test_handoff test_evaluation test_notebooks test_pipeline test_connect"
    " test_distributed test_write_failures test_sources test_stages test_bench_gpu"
).split()


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.stem, len(rank)))  # stable: a file's own order is kept


@pytest.fixture(scope="session")
def spark():
    from lakefine.prep.session import local_session

    session = local_session("local[2]")
    yield session
    session.stop()


def once_per_run(tmp_path_factory, name: str, build):
    """``build(directory)`` once for the whole run, its JSON-able result shared: under pytest-xdist
    each worker has its own session (and base temp, inside the run's), so the first
    worker to ask builds, under a file lock, and the others read what it recorded."""
    import json

    from filelock import FileLock

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    done = shared / f"{name}.json"
    with FileLock(str(shared / f"{name}.lock")):
        if not done.exists():
            done.write_text(json.dumps(build(shared / name)))
    return json.loads(done.read_text())


@pytest.fixture(scope="session")
def shared_root(tmp_path_factory) -> Path:
    """A local root reused across tests (and workers): bundled data and the tiny model
    live here. Tests link to it (``link_shared``); only test_tasks adds to it (the other
    bundled datasets it stages), and only one worker runs that file."""

    def build(root: Path) -> str:
        from lakefine.core.assets import TINY_MODEL, resolve_model, stage_dataset

        root.mkdir()
        stage_dataset("rotten_tomatoes", str(root))
        resolve_model(TINY_MODEL, str(root))
        _empty_mlflow_store(root / STORE_TEMPLATE)
        return str(root)

    return Path(once_per_run(tmp_path_factory, "shared-root", build))


# Creating a sqlite MLflow store runs MLflow's schema migrations: about 4 s, paid by every
# test that trains in a fresh root. The migrated empty store is made once and copied.
STORE_TEMPLATE = "mlflow-empty.db"


def _empty_mlflow_store(path: Path) -> None:

    code = "import mlflow, sys; mlflow.set_tracking_uri('sqlite:///' + sys.argv[1]); mlflow.search_experiments()"
    subprocess.run([sys.executable, "-c", code, str(path)], check=True, capture_output=True)


def link_shared(root: Path, shared_root: Path) -> Path:
    """Link the bundled data and the tiny model of the shared root into ``root``, and
    give it an empty, migrated MLflow store (``store_untouched`` tells whether it was used)."""
    for part in ("Volumes/main/lakefine/raw", "models"):
        (root / part).parent.mkdir(parents=True, exist_ok=True)
        (root / part).symlink_to(shared_root / part)
    shutil.copyfile(shared_root / STORE_TEMPLATE, root / "mlflow.db")
    return root


def store_untouched(root: Path) -> bool:
    """True when nothing was tracked in ``root``'s MLflow store: it is byte for byte the
    empty template (creating an experiment or a run changes the file)."""
    import filecmp

    template = Path(os.readlink(root / "models")).parent / STORE_TEMPLATE
    return filecmp.cmp(root / "mlflow.db", template, shallow=False)


def start_cli(root: Path, *args, **popen):
    """``python -m lakefine.cli *args`` on the local root ``root`` (its own sqlite MLflow
    store), stdout and stderr piped as text."""

    env = {**os.environ, "LAKEFINE_LOCAL_ROOT": str(root)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(
        [sys.executable, "-m", "lakefine.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def run_cli(root: Path, *args) -> subprocess.CompletedProcess:
    """``lakefine *args`` in this process on the local root ``root``: ``cli.main`` with its
    stdout and stderr captured, the result shaped like ``subprocess.run``'s. No interpreter,
    import or JVM start (the session's Spark is the active one); the tests about what a
    separate process prints or exits with use ``start_cli``."""
    import contextlib
    import io

    from lakefine.cli import main

    saved = {name: os.environ.get(name) for name in ("LAKEFINE_LOCAL_ROOT", "MLFLOW_TRACKING_URI")}
    os.environ["LAKEFINE_LOCAL_ROOT"] = str(root)
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # the local sqlite store under root
    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in args])
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


@pytest.fixture()
def local_root(tmp_path, shared_root, monkeypatch) -> Path:
    """A fresh local root per test, with the bundled data and tiny model linked in."""
    root = tmp_path / "root"
    link_shared(root, shared_root)
    monkeypatch.setenv("LAKEFINE_LOCAL_ROOT", str(root))
    yield root
    # mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI: never let it leak into the next test.
    os.environ.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture(autouse=True)
def no_leaked_mlflow_run():
    """Every test: a run left open would swallow the next test's metrics."""
    yield
    if "mlflow" not in sys.modules:  # the test never touched MLflow
        return
    import mlflow

    leaked = mlflow.active_run()
    if leaked is not None:
        mlflow.end_run()
        pytest.fail(f"the test left MLflow run {leaked.info.run_id} open")


@pytest.fixture(scope="session")
def smoke_dataset(shared_root, tmp_path_factory, request) -> Path:
    """pipelines/smoke.yaml prepared once per test run (in the shared root's volume), by
    the first worker that needs it, on its Spark session. Tests copy it, never change it."""

    def build(_) -> str:
        from lakefine.core.config import load_config
        from lakefine.prep.prepare import prepare

        spark = request.getfixturevalue("spark")
        previous = os.environ.get("LAKEFINE_LOCAL_ROOT")
        os.environ["LAKEFINE_LOCAL_ROOT"] = str(shared_root)
        try:
            return str(prepare(load_config(REPO / "pipelines/smoke.yaml"), spark).dataset.path)
        finally:
            if previous is None:
                os.environ.pop("LAKEFINE_LOCAL_ROOT")
            else:
                os.environ["LAKEFINE_LOCAL_ROOT"] = previous

    return Path(once_per_run(tmp_path_factory, "smoke-dataset", build))


@pytest.fixture(scope="session")
def smoke_prepared_by_cli(tmp_path_factory, shared_root):
    """``lakefine prepare pipelines/smoke.yaml --json`` once, in a fresh interpreter, on a
    fresh root: ``(root, summary, top-level modules it loaded)``. The tests about what a
    new CLI process does (imports, cache hits) share this one JVM start."""

    def build(root: Path) -> list:
        root, summary, loaded = _prepare_smoke_by_cli(root, shared_root)
        return [str(root), summary, sorted(loaded)]

    root, summary, loaded = once_per_run(tmp_path_factory, "cli-prepared", build)
    return Path(root), summary, set(loaded)


def _prepare_smoke_by_cli(root: Path, shared_root: Path):
    import json

    root.mkdir()
    link_shared(root, shared_root)
    probe = (
        "import contextlib, io, json, sys\n"
        "from lakefine.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    code = main(['prepare', 'pipelines/smoke.yaml', '--json', '--local-root', {str(root)!r}])\n"
        "print(json.dumps({'code': code, 'summary': json.loads(out.getvalue()),"
        " 'loaded': sorted({m.split('.')[0] for m in sys.modules})}))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 0
    return root, result["summary"], set(result["loaded"])


def with_smoke_dataset(root: Path, smoke_dataset: Path) -> Path:
    """Publish the prepared smoke dataset in ``root`` too: a ``lakefine run`` of the smoke
    pipeline there is then a cache hit that starts no Spark (for tests about training)."""
    target = root / "Volumes/main/lakefine/prep/datasets/smoke" / smoke_dataset.name
    shutil.copytree(smoke_dataset, target, ignore=shutil.ignore_patterns("tokenized"))
    return root


@pytest.fixture(scope="session")
def tiny_model(shared_root) -> str:
    return str(shared_root / "models" / "tiny-random-bert")


RT_PATH = "/Volumes/main/lakefine/raw/rotten_tomatoes/rotten_tomatoes_corpus_full.csv.bz2"


def make_config(**sections):
    """A pipeline config from dicts: defaults to the staged Rotten Tomatoes file and
    the tiny model, so a test states only what it is about."""
    from lakefine.core.config import config_from_dict

    raw = {
        "name": "t",
        "source": {
            "path": RT_PATH,
            "where": "category IN ('fresh', 'rotten')",
            "text_column": "text",
            "label_column": "category",
        },
        "model": {"name_or_path": "tiny-random-bert"},
        "train": {"max_steps": 4, "batch_size": 8, "logging_steps": 2},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict) and key != "source":
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return config_from_dict(raw)
