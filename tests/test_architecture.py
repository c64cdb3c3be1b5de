"""The architecture is enforced, not only described: import-linter's contracts
(pyproject.toml) hold, a broken contract is caught, and at run time preparation never
loads torch and the training side never loads pyspark (import-linter sees only the
project's own imports, not what a library imports behind them)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True)


def test_the_import_contracts_hold():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout and "6 kept" in result.stdout, result.stdout


@pytest.mark.parametrize(
    "module, line, contract",
    [
        ("prep/clean.py", "import torch", "The Spark side never imports torch"),
        ("training/common.py", "import pyspark", "The training side never imports pyspark"),
        ("core/labels.py", "from lakefine.tracking import client", "Layers"),
        ("prep/clean.py", "from lakefine.evaluation import gate", "The Spark side never imports torch"),
        ("evaluation/gate.py", "from lakefine.training import tasks", "Layers"),
        ("training/checkpoints.py", "from lakefine.training import callbacks", "No import cycles"),
        ("scoring/sink.py", "from lakefine.prep import sources", "Scoring uses the serving side"),
    ],
)
def test_a_broken_contract_fails_the_check(tmp_path, module, line, contract):
    """The same contracts on a copy of the package with one bad import planted."""
    shutil.copytree(REPO / "src" / "lakefine", tmp_path / "src" / "lakefine")
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    planted = tmp_path / "src" / "lakefine" / module
    planted.write_text(planted.read_text() + f"\n{line}  # planted by the test\n")
    result = lint_imports(tmp_path, pythonpath=tmp_path / "src")
    assert result.returncode != 0, result.stdout
    broken = result.stdout.split("Broken contracts")[-1]
    assert contract in broken, result.stdout


def loaded_after(code: str, env: dict | None = None) -> set[str]:
    """The top-level modules loaded in a fresh interpreter after ``code``."""
    probe = code + "\nimport sys\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return set(result.stdout.split())


@pytest.mark.slow
def test_prepare_loads_neither_torch_nor_scikit_learn(smoke_prepared_by_cli):
    """scikit-learn is for metrics: a command that only prepares never pays its 2 s import."""
    _, summary, loaded = smoke_prepared_by_cli
    assert "pyspark" in loaded and summary["cache_hit"] is False  # it did prepare, in Spark
    assert "torch" not in loaded
    assert "sklearn" not in loaded


def test_the_training_side_never_loads_pyspark():
    """MLflow itself imports pyspark when it is installed (``mlflow.types.schema``), so
    the check is: with pyspark unimportable, the whole training side still imports;
    any lakefine module that needs pyspark fails here."""
    loaded = loaded_after(
        "import importlib.abc, sys\n"
        "class NoPyspark(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'pyspark' or name.startswith('pyspark.'):\n"
        "            raise ModuleNotFoundError(f'blocked by the test: {name}', name=name)\n"
        "sys.meta_path.insert(0, NoPyspark())\n"
        "import lakefine.training.tasks, lakefine.training.callbacks, lakefine.training.checkpoints,"
        " lakefine.training.tiny_models, lakefine.serving.mlflow_model, lakefine.tracking.runs,"
        " lakefine.evaluation.evaluate, lakefine.evaluation.report\n"
        "from lakefine import pipeline\n"
        "import inspect; inspect.getsource(pipeline.train)  # the entry point the finetune task calls\n"
    )
    assert {"torch", "transformers", "mlflow"} <= loaded  # it did import the training side
    assert "pyspark" not in loaded


def test_hf_cache_configuration_does_not_depend_on_import_order(tmp_path):
    """datasets reads HF_DATASETS_CACHE once, at import: a notebook that imported it
    before lakefine must still get the cache on the volume."""
    volume = tmp_path / "Volumes" / "main" / "ml" / "prep"
    code = (
        "import datasets, datasets.config\n"
        "from lakefine.core.session import configure_hf_caches\n"
        f"configure_hf_caches({str(volume)!r})\n"
        "print(datasets.config.HF_DATASETS_CACHE)\n"
        "print(datasets.config.DOWNLOADED_DATASETS_PATH)\n"
        "import datasets.builder, filelock\n"
        "print(issubclass(datasets.builder.FileLock, filelock.SoftFileLock))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env["DATABRICKS_RUNTIME_VERSION"] = "17.3"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    cache, downloads, soft = result.stdout.split()
    assert cache == f"{volume}/hf_cache/datasets"
    assert downloads.startswith(cache)
    assert soft == "True"


def test_the_scoring_driver_never_loads_torch():
    """The driver builds the scoring plan (and resolves the model) without torch: only
    the Python workers load it, inside the UDF."""
    loaded = loaded_after(
        "import lakefine.scoring.frame, lakefine.scoring.model, lakefine.scoring.sink, lakefine.scoring.inputs\n"
        "from lakefine import pipeline\n"
        "import inspect; inspect.getsource(pipeline.score_and_write)\n"
    )
    assert {"pyspark", "lakefine"} <= loaded
    assert "torch" not in loaded and "transformers" not in loaded
