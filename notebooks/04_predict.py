# Databricks notebook source
# MAGIC %md
# MAGIC # 4 · Predict
# MAGIC
# MAGIC Labels a few texts with a trained model and shows the probability of every label.
# MAGIC
# MAGIC **Widgets** · `pipeline`: the pipeline YAML, relative to this notebook (it names the
# MAGIC registered model) · `overrides`: `section.key=value` pairs separated by spaces ·
# MAGIC `model`: a model directory or MLflow URI; empty means
# MAGIC `models:/<registered model>@challenger` · `texts`: texts separated by `|`.
# MAGIC
# MAGIC Locally the same values come from `$LAKEFINE_PIPELINE` (default
# MAGIC `pipelines/smoke.yaml`), `$LAKEFINE_OVERRIDES`, `$LAKEFINE_MODEL_URI` and
# MAGIC `$LAKEFINE_TEXTS`.

# COMMAND ----------

# MAGIC %pip install --quiet ..

# COMMAND ----------

# Restart Python so the packages just installed are the ones imported (Databricks only).
if "dbutils" in globals():
    dbutils.library.restartPython()  # noqa: F821

# COMMAND ----------

import os
import shlex

EXAMPLES = "A gorgeous, moving film with a superb cast. | Two hours of my life I will never get back."

if "dbutils" in globals():
    dbutils.widgets.text("pipeline", "../pipelines/rotten_tomatoes.yaml", "Pipeline YAML")  # noqa: F821
    dbutils.widgets.text("overrides", "", "Overrides (section.key=value ...)")  # noqa: F821
    dbutils.widgets.text("model", "", "Model (empty: @challenger)")  # noqa: F821
    dbutils.widgets.text("texts", EXAMPLES, "Texts, separated by |")  # noqa: F821
    pipeline_file = dbutils.widgets.get("pipeline")  # noqa: F821
    overrides = shlex.split(dbutils.widgets.get("overrides"))  # noqa: F821
    model = dbutils.widgets.get("model")  # noqa: F821
    texts = [t.strip() for t in dbutils.widgets.get("texts").split("|") if t.strip()]  # noqa: F821
else:  # local mode: plain Python, no widgets
    pipeline_file = os.environ.get("LAKEFINE_PIPELINE", "pipelines/smoke.yaml")
    overrides = shlex.split(os.environ.get("LAKEFINE_OVERRIDES", ""))
    model = os.environ.get("LAKEFINE_MODEL_URI", "")
    texts = [t.strip() for t in os.environ.get("LAKEFINE_TEXTS", EXAMPLES).split("|") if t.strip()]

# COMMAND ----------

import json

from lakefine.core.config import load_config
from lakefine.serving.predictor import Predictor

config = load_config(pipeline_file, overrides)
model = model or f"models:/{config.registered_model_name}@challenger"

# COMMAND ----------

predictions = Predictor.load(model).predict(texts)
print(json.dumps([{"text": t, **p} for t, p in zip(texts, predictions)], indent=2, default=str))
