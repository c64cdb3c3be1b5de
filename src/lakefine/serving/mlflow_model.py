"""The model in MLflow: logged with the transformers flavor (classification), or as
lakefine's pyfunc wrapping the saved directory (seq2seq: transformers 5 dropped the
``text2text-generation`` pipeline the flavor needs), registered under the pipeline's
model name with the ``challenger`` alias."""

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


class Seq2SeqModel(mlflow.pyfunc.PythonModel):
    """Input: a DataFrame with a ``text`` column (and ``text_pair`` for a context),
    or a list of strings. Output: the generated answers."""

    def load_context(self, context):
        self.predictor = Predictor.from_directory(Path(context.artifacts["model_dir"]))

    def predict(self, context, model_input, params=None):
        if hasattr(model_input, "columns"):
            texts = model_input["text"].astype(str).tolist()
            pairs = model_input["text_pair"].astype(str).tolist() if "text_pair" in model_input.columns else None
        else:
            texts, pairs = [str(t) for t in model_input], None
        return [p["answer"] for p in self.predictor.predict(texts, pairs)]


def log_and_register_model(config: PipelineConfig, fit_result, model_dir: Path) -> dict:
    """Log the model with the transformers flavor (and its signature), register it
    under the pipeline's model name and point the ``challenger`` alias at it. Each
    step waits (bounded) for a tracking server that is restarting. Idempotent per
    run: a retried final step finds the version this run registered and reuses it."""
    if config.tracking.register and (done := version_of_run(registered_name(config), mlflow.active_run().info.run_id)):
        say(f"train: this run already registered version {done.version}; not registering it twice")
        return _registered(config, done.source, done)
    if config.task == "seq2seq":
        # transformers 5 has no text2text-generation pipeline for the transformers
        # flavor: log a pyfunc that wraps the saved model directory instead.
        info = with_retry(
            "log the model",
            mlflow.pyfunc.log_model,
            name="model",
            python_model=Seq2SeqModel(),
            artifacts={"model_dir": str(model_dir)},
            pip_requirements=MODEL_PIP_REQUIREMENTS + ["lakefine"],
            signature=infer_signature(["a question"], ["an answer"]),
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
    return _registered(config, info.model_uri, version)


def _registered(config: PipelineConfig, model_uri: str, version) -> dict:
    """Point the alias at ``version`` (again: setting an alias is idempotent)."""
    result = {"model_uri": model_uri, "registered_model": None, "version": None}
    if version is not None:
        name = registered_name(config)
        client = mlflow.tracking.MlflowClient()
        with_retry("set the model alias", client.set_registered_model_alias, name, ALIAS, version.version)
        result.update(registered_model=name, version=int(version.version), registered_uri=f"models:/{name}@{ALIAS}")
    return result
