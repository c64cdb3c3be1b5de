# Databricks notebook source
# MAGIC %md
# MAGIC # 5 · Score
# MAGIC
# MAGIC Labels a table with the registered model inside Spark, the same function as
# MAGIC `lakefine score` and the bundle's `score` job: every input column plus `prediction`,
# MAGIC `score_error` and the lineage columns `model_uri`, `model_version`, `scored_at`.
# MAGIC The result is lazy: `display()` it, or give `output_table` to write it.
# MAGIC
# MAGIC **Widgets** · `pipeline`: the pipeline YAML, relative to this notebook (it names the
# MAGIC registered model and the text column) · `overrides`: `section.key=value` pairs
# MAGIC separated by spaces · `model`: a model directory or MLflow URI; empty means
# MAGIC `models:/<registered model>@champion`, else `@challenger` · `input_table`: the table
# MAGIC to score; empty means the pipeline's source · `output_table`: where to write the
# MAGIC scores; empty shows them only.
# MAGIC
# MAGIC Locally the same values come from `$LAKEFINE_PIPELINE` (default
# MAGIC `pipelines/smoke.yaml`), `$LAKEFINE_OVERRIDES`, `$LAKEFINE_MODEL_URI`,
# MAGIC `$LAKEFINE_INPUT_TABLE` and `$LAKEFINE_OUTPUT_TABLE`.

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
    dbutils.widgets.text("model", "", "Model (empty: @champion, else @challenger)")  # noqa: F821
    dbutils.widgets.text("input_table", "", "Input table (empty: the pipeline's source)")  # noqa: F821
    dbutils.widgets.text("output_table", "", "Output table (empty: display only)")  # noqa: F821
    pipeline_file = dbutils.widgets.get("pipeline")  # noqa: F821
    overrides = shlex.split(dbutils.widgets.get("overrides"))  # noqa: F821
    model = dbutils.widgets.get("model")  # noqa: F821
    input_table = dbutils.widgets.get("input_table")  # noqa: F821
    output_table = dbutils.widgets.get("output_table")  # noqa: F821
else:  # local mode: plain Python, no widgets
    pipeline_file = os.environ.get("LAKEFINE_PIPELINE", "pipelines/smoke.yaml")
    overrides = shlex.split(os.environ.get("LAKEFINE_OVERRIDES", ""))
    model = os.environ.get("LAKEFINE_MODEL_URI", "")
    input_table = os.environ.get("LAKEFINE_INPUT_TABLE", "")
    output_table = os.environ.get("LAKEFINE_OUTPUT_TABLE", "")

# COMMAND ----------

import json

from lakefine import pipeline
from lakefine.core.config import load_config

config = load_config(pipeline_file, overrides)

# COMMAND ----------

# Lazy: nothing is scored until the rows are shown or written.
scored = pipeline.score(config, model_uri=model or None, input_table=input_table or None)
if "display" in globals():
    display(scored.limit(100))  # noqa: F821
else:
    scored.select("prediction", "score_error", "model_uri", "model_version").show(5, truncate=80)

# COMMAND ----------

# With an output table: score, write and account for every row (rows out = rows in).
if output_table:
    summary = pipeline.score_and_write(
        config, output_table=output_table, model_uri=model or None, input_table=input_table or None
    )
    print(json.dumps(summary, indent=2, default=str))
