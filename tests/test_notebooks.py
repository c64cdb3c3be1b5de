"""The notebooks: Databricks source format, thin widget cells that work with and
without ``dbutils``, and — in the slow test — each notebook run top to bottom in
local mode, in order, on the smoke pipeline (MAGIC lines are comments, so a source
notebook is plain Python)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import runpy
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = ["01_prepare.py", "02_train.py", "03_evaluate.py", "04_predict.py", "05_score.py"]
HEADER = "# Databricks notebook source\n"
SEPARATOR = "\n# COMMAND ----------\n"
PINNED_PIP = re.compile(r"%pip\s+install\b.*(==|>=|<=|~=|<|>)")


def cells(name: str) -> list[str]:
    source = (REPO / "notebooks" / name).read_text()
    return source[len(HEADER) :].split(SEPARATOR)


class FakeDbutils:
    """Just what the notebooks touch: text widgets (returning their defaults) and restart."""

    def __init__(self):
        self.widgets = self
        self.library = self
        self.defaults: dict[str, str] = {}
        self.restarted = False

    def text(self, name, default, label=None):
        self.defaults[name] = default

    def get(self, name):
        return self.defaults[name]

    def restartPython(self):  # noqa: N802 (the Databricks name)
        self.restarted = True


def run_cells(name: str, keep, namespace: dict) -> dict:
    for cell in cells(name):
        if keep(cell):
            exec(compile(cell, f"notebooks/{name}", "exec"), namespace)
    return namespace


# ---------------------------------------------------------------------------- format


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_databricks_source_format(name):
    source = (REPO / "notebooks" / name).read_text()
    assert source.startswith(HEADER)
    parts = cells(name)
    assert len(parts) >= 3
    assert parts[0].lstrip().startswith("# MAGIC %md"), "the first cell explains the notebook"
    for line in source.splitlines():
        if "%pip" in line or "%md" in line or "%run" in line:
            assert line.startswith("# MAGIC "), f"magic outside a MAGIC line: {line!r}"
        assert not PINNED_PIP.search(line), f"pins belong in pyproject.toml: {line!r}"
    compile(source, name, "exec")  # valid Python as a whole, as the local run needs


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_widgets_on_databricks_default_to_the_bundled_pipeline(name):
    dbutils = FakeDbutils()
    namespace = run_cells(name, lambda c: "dbutils" in c, {"dbutils": dbutils})
    assert dbutils.restarted
    assert {"pipeline", "overrides"} <= set(dbutils.defaults)
    # Databricks runs a notebook in its own folder: the default is relative to notebooks/.
    assert (REPO / "notebooks" / namespace["pipeline_file"]).resolve().is_file()
    assert namespace["overrides"] == []


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_widgets_fall_back_to_the_environment_locally(name, monkeypatch):
    monkeypatch.setenv("LAKEFINE_PIPELINE", "pipelines/smoke.yaml")
    monkeypatch.setenv("LAKEFINE_OVERRIDES", "train.max_steps=2 source.where=\"category = 'fresh'\"")
    namespace = run_cells(name, lambda c: "dbutils" in c, {})
    assert "dbutils" not in namespace
    assert namespace["pipeline_file"] == "pipelines/smoke.yaml"
    assert namespace["overrides"] == ["train.max_steps=2", "source.where=category = 'fresh'"]
    monkeypatch.delenv("LAKEFINE_PIPELINE")
    assert run_cells(name, lambda c: "dbutils" in c, {})["pipeline_file"] == "pipelines/smoke.yaml"


# ---------------------------------------------------------------------------- running


def last_json(stdout: str):
    """The summary a notebook printed last (other output may precede it)."""
    decoder, found = json.JSONDecoder(), None
    for match in re.finditer(r"^[\[{]", stdout, re.MULTILINE):
        try:
            found, _ = decoder.raw_decode(stdout[match.start() :])
        except json.JSONDecodeError:
            continue
    assert found is not None, f"no JSON summary in:\n{stdout[-2000:]}"
    return found


def run_notebook(name: str, env: dict, monkeypatch) -> str:
    """One notebook top to bottom in this process, with ``env`` as its only LAKEFINE_*
    variables: notebooks run one after another on one cluster's Python and Spark session,
    as here. Returns what it printed."""
    for key in [k for k in os.environ if k.startswith("LAKEFINE_") and k not in env]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        runpy.run_path(str(REPO / "notebooks" / name), run_name="__main__")
    return printed.getvalue()


@pytest.mark.slow
def test_notebooks_run_top_to_bottom_locally(local_root, spark, monkeypatch):
    for key in [k for k in os.environ if k.startswith(("DATABRICKS_", "MLFLOW_"))]:
        monkeypatch.delenv(key)
    env = {"LAKEFINE_PIPELINE": str(REPO / "pipelines/smoke.yaml"), "LAKEFINE_LOCAL_ROOT": str(local_root)}

    prepared = last_json(run_notebook("01_prepare.py", env, monkeypatch))
    assert Path(prepared["dataset"]).name == prepared["key"] and (Path(prepared["dataset"]) / "manifest.json").is_file()
    assert prepared["labels"] == ["fresh", "rotten"]
    assert prepared["rows"]["input"] == prepared["rows"]["used"] + prepared["rows"]["quarantined"] > 0
    assert sum(prepared["splits"].values()) == prepared["rows"]["used"]

    trained = last_json(run_notebook("02_train.py", env, monkeypatch))
    assert Path(trained["model_dir"]).is_dir()

    env["LAKEFINE_MODEL_URI"] = trained.get("registered_uri") or trained["model_uri"]
    evaluated = last_json(run_notebook("03_evaluate.py", env, monkeypatch))
    # The same model on the same test split: the notebook's numbers are training's.
    assert evaluated["rows"] == prepared["splits"]["test"]
    for name in ("accuracy", "f1", "f1_macro"):
        assert evaluated["metrics"][name] == pytest.approx(trained["metrics"][f"test_{name}"], abs=1e-9)

    env["LAKEFINE_MODEL_URI"] = trained["model_dir"]
    env["LAKEFINE_TEXTS"] = "a wonderful film | a dreadful mess"
    predictions = last_json(run_notebook("04_predict.py", env, monkeypatch))
    assert [p["text"] for p in predictions] == ["a wonderful film", "a dreadful mess"]
    assert all(p["label"] in ("fresh", "rotten") for p in predictions)

    # No model given: the registered champion (03_evaluate promoted the first model above
    # evaluate.min_metric), else the challenger 02_train registered.
    alias = "champion" if evaluated["gate"]["decision"] == "promoted" else "challenger"
    env.pop("LAKEFINE_MODEL_URI")
    env["LAKEFINE_OUTPUT_TABLE"] = "main.lakefine.smoke_scores"
    scored = last_json(run_notebook("05_score.py", env, monkeypatch))
    assert scored["rows_in"] == scored["rows_out"] == prepared["rows"]["input"]
    assert scored["model_uri"].endswith(f"@{alias}") and scored["model_version"] == trained["version"]
