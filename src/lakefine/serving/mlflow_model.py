"""The model in MLflow: logged with the transformers flavor (single-label
classification and pairs: a temperature is already folded into its head), or as
lakefine's pyfunc wrapping the saved directory: multi-label (the flavor's pipeline
returns the top label only, never the label set the per-label thresholds choose) and
seq2seq (transformers 5 dropped the ``text2text-generation`` pipeline the flavor
needs). Registered under the pipeline's model name with the ``challenger`` alias."""

from __future__ import annotations

from pathlib import Path

import mlflow
import mlflow.pyfunc
from mlflow.models import infer_signature

from lakefine.core.config import PipelineConfig
from lakefine.core.log import say
from lakefine.serving.predictor import Predictor
from lakefine.tracking.client import with_retry
from lakefine.tracking.registry import ALIAS, registered_name, version_of_run

# mlflow's own requirement inference pulls in torchvision, which must never be
# installed here (it breaks transformers); state the requirements instead.
MODEL_PIP_REQUIREMENTS = ["torch", "transformers", "tokenizers", "accelerate", "safetensors"]


class LakefineModel(mlflow.pyfunc.PythonModel):
    """lakefine's Predictor over the saved model directory (its thresholds included).
    Input: a DataFrame with a ``text`` column (and ``text_pair``), or a list of strings.
    Output: the generated answers (seq2seq), or per text ``{labels, probabilities}``
    (multi-label)."""

    def load_context(self, context):
        self.predictor = Predictor.from_directory(Path(context.artifacts["model_dir"]))

    def predict(self, context, model_input, params=None):
        if hasattr(model_input, "columns"):
            column = "text" if "text" in model_input.columns else model_input.columns[0]
            texts = model_input[column].astype(str).tolist()
            pairs = model_input["text_pair"].astype(str).tolist() if "text_pair" in model_input.columns else None
        else:
            texts, pairs = [str(t) for t in model_input], None
        predictions = self.predictor.predict(texts, pairs)
        if self.predictor.is_seq2seq:
            return [p["answer"] for p in predictions]
        return predictions


# Kept for models logged before multi-label used the pyfunc too (pickled by this name).
Seq2SeqModel = LakefineModel


def _pyfunc_signature(config: PipelineConfig, labels: list[str]):
    if config.task == "seq2seq":
        return infer_signature(["a question"], ["an answer"])
    return infer_signature(["a text"], [{"labels": labels[:1], "probabilities": dict.fromkeys(labels, 0.5)}])


def log_and_register_model(config: PipelineConfig, fit_result, model_dir: Path, alias: str = ALIAS) -> dict:
    """Log the model with the transformers flavor (and its signature), register it
    under the pipeline's model name and point ``alias`` (the ``challenger``) at it.
    Each step waits (bounded) for a tracking server that is restarting. Idempotent per
    run: a retried final step finds the version this run registered and reuses it."""
    if config.tracking.register and (done := version_of_run(registered_name(config), mlflow.active_run().info.run_id)):
        say(f"train: this run already registered version {done.version}; not registering it twice")
        return _registered(config, done.source, done, alias)
    if config.task in ("seq2seq", "multi_label"):
        # See the module docstring: a pyfunc that wraps the saved model directory.
        labels = list(fit_result.label_map.labels) if fit_result.label_map else []
        info = with_retry(
            "log the model",
            mlflow.pyfunc.log_model,
            name="model",
            python_model=LakefineModel(),
            artifacts={"model_dir": str(model_dir)},
            pip_requirements=MODEL_PIP_REQUIREMENTS + ["lakefine"],
            signature=_pyfunc_signature(config, labels),
        )
    else:
        info = with_retry(
            "log the model",
            mlflow.transformers.log_model,
            transformers_model={"model": fit_result.model, "tokenizer": fit_result.tokenizer},
            name="model",
            task="text-classification",
            pip_requirements=MODEL_PIP_REQUIREMENTS,
            input_example=["an example sentence"],
        )
    version = None
    if config.tracking.register:
        version = with_retry("register the model", mlflow.register_model, info.model_uri, registered_name(config))
    with_retry("log the model location", mlflow.log_dict, {"model_dir": str(model_dir)}, "lakefine_model_location.json")
    return _registered(config, info.model_uri, version, alias)


def _registered(config: PipelineConfig, model_uri: str, version, alias: str) -> dict:
    """Point the alias at ``version`` (again: setting an alias is idempotent)."""
    result = {"model_uri": model_uri, "registered_model": None, "version": None}
    if version is not None:
        name = registered_name(config)
        client = mlflow.tracking.MlflowClient()
        with_retry("set the model alias", client.set_registered_model_alias, name, alias, version.version)
        result.update(registered_model=name, version=int(version.version), registered_uri=f"models:/{name}@{alias}")
    return result
