# Databricks notebook source
# MAGIC %md
# MAGIC # 1 · Prepare
# MAGIC
# MAGIC Reads the labelled rows the pipeline YAML points at (a table, SQL or files under a
# MAGIC volume), cleans, labels and splits them in Spark, and publishes a dataset version to
# MAGIC the pipeline's volume for `02_train`.
# MAGIC
# MAGIC **Widgets** · `pipeline`: the pipeline YAML, relative to this notebook ·
# MAGIC `overrides`: `section.key=value` pairs separated by spaces, e.g. `labels.min_count=5`.
# MAGIC
# MAGIC Locally (`python notebooks/01_prepare.py` from the repository root) the same values
# MAGIC come from `$LAKEFINE_PIPELINE` (default `pipelines/smoke.yaml`) and `$LAKEFINE_OVERRIDES`.

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
# On Databricks: fail now, with the GRANTs to run, if a Unity Catalog privilege is missing.
print(preflight(config))

# COMMAND ----------

result = pipeline.prepare(config)
print(json.dumps(result.summary(), indent=2, default=str))
