# Databricks notebook source
# MAGIC %md
# MAGIC # 2 · Train
# MAGIC
# MAGIC Fine-tunes the pipeline's model on the newest dataset published by `01_prepare`,
# MAGIC tracks the run in MLflow and registers the model (alias `challenger`).
# MAGIC Use a GPU cluster (Databricks Runtime for ML, GPU).
# MAGIC
# MAGIC **Widgets** · `pipeline`: the pipeline YAML, relative to this notebook ·
# MAGIC `overrides`: `section.key=value` pairs separated by spaces, e.g. `train.epochs=2`.
# MAGIC
# MAGIC Locally the same values come from `$LAKEFINE_PIPELINE` (default
# MAGIC `pipelines/smoke.yaml`) and `$LAKEFINE_OVERRIDES`.

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
    pipeline_file = dbutils.widgets.get("pipeline")  # noqa: F821
    overrides = shlex.split(dbutils.widgets.get("overrides"))  # noqa: F821
else:  # local mode: plain Python, no widgets
    pipeline_file = os.environ.get("LAKEFINE_PIPELINE", "pipelines/smoke.yaml")
    overrides = shlex.split(os.environ.get("LAKEFINE_OVERRIDES", ""))

# COMMAND ----------

import json

from lakefine import pipeline
from lakefine.core.config import load_config
from lakefine.ops.privileges import preflight

config = load_config(pipeline_file, overrides)
print(preflight(config))

# COMMAND ----------

result = pipeline.train(config)
print(json.dumps(result.summary(), indent=2, default=str))
