# Databricks notebook source
# MAGIC %md
# MAGIC # 3 · Evaluate
# MAGIC
# MAGIC Scores a trained model on the test split of the dataset its run was trained on, with
# MAGIC the evaluation training reported, then runs the champion / challenger gate of the
# MAGIC pipeline's `evaluate` section (`mode: dry_run` decides and logs without moving the alias).
# MAGIC
# MAGIC **Widgets** · `pipeline`: the pipeline YAML, relative to this notebook ·
# MAGIC `overrides`: `section.key=value` pairs separated by spaces ·
# MAGIC `model_uri`: the model to evaluate; empty means the version `02_train` registered
# MAGIC last (`models:/<registered model>@challenger`).
# MAGIC
# MAGIC Locally the same values come from `$LAKEFINE_PIPELINE` (default
# MAGIC `pipelines/smoke.yaml`), `$LAKEFINE_OVERRIDES` and `$LAKEFINE_MODEL_URI`.

# COMMAND ----------

# MAGIC %pip install --quiet ..

# COMMAND ----------

# Restart Python so the packages just installed are the ones imported (Databricks only).
if "dbutils" in globals():
    dbutils.library.restartPython()  # noqa: F821

# COMMAND ----------

import os
import shlex

if "dbutils" in globals():
    dbutils.widgets.text("pipeline", "../pipelines/rotten_tomatoes.yaml", "Pipeline YAML")  # noqa: F821
    dbutils.widgets.text("overrides", "", "Overrides (section.key=value ...)")  # noqa: F821
    dbutils.widgets.text("model_uri", "", "Model URI (empty: @challenger)")  # noqa: F821
    pipeline_file = dbutils.widgets.get("pipeline")  # noqa: F821
    overrides = shlex.split(dbutils.widgets.get("overrides"))  # noqa: F821
    model_uri = dbutils.widgets.get("model_uri")  # noqa: F821
else:  # local mode: plain Python, no widgets
    pipeline_file = os.environ.get("LAKEFINE_PIPELINE", "pipelines/smoke.yaml")
    overrides = shlex.split(os.environ.get("LAKEFINE_OVERRIDES", ""))
    model_uri = os.environ.get("LAKEFINE_MODEL_URI", "")

# COMMAND ----------

import json

from lakefine import pipeline
from lakefine.core.config import load_config

config = load_config(pipeline_file, overrides)

# COMMAND ----------

# No model_uri: the library evaluates the registered `challenger`.
summary = pipeline.evaluate(config, model_uri or None)
print(json.dumps(summary, indent=2, default=str))
