"""Prediction from a saved model directory or an MLflow model URI: label names and
probabilities per text (softmax; sigmoid + threshold for multi-label), or the
generated answer for a seq2seq model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import torch
from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification, AutoTokenizer

from lakefine.core.errors import TrainingError
from lakefine.core.log import first_line
from lakefine.core.metrics import probabilities, sigmoid
from lakefine.serving.text2text import decode, encoder_inputs
from lakefine.tracking.client import default_tracking_uri

MLFLOW_SCHEMES = ("models:/", "runs:/", "file:", "dbfs:/", "s3://", "mlflow-artifacts:")


@dataclass
class Predictor:
    model: object
    tokenizer: object

    @classmethod
    def load(cls, location: str) -> Predictor:
        """``location``: a ``save_pretrained`` directory, an MLflow model directory,
        or an MLflow model URI (``models:/name@alias``, ``runs:/id/model``)."""
        path = Path(location)
        if path.is_dir() and (path / "config.json").is_file():
            return cls.from_directory(path)
        if location.startswith(MLFLOW_SCHEMES) or (path / "MLmodel").is_file():
            mlflow.set_tracking_uri(default_tracking_uri())
            if location.startswith("models:/") and default_tracking_uri() == "databricks":
                mlflow.set_registry_uri("databricks-uc")
            try:
                flavors = mlflow.models.get_model_info(location).flavors
                if "transformers" in flavors:
                    components = mlflow.transformers.load_model(location, return_type="components")
                    return cls(components["model"].eval(), components["tokenizer"])
                # seq2seq: a pyfunc wrapping the saved model directory
                local = Path(mlflow.artifacts.download_artifacts(location))
                relative = flavors["python_function"]["artifacts"]["model_dir"]["path"]
                return cls.from_directory(local / relative)
            except TrainingError:
                raise
            except Exception as exc:  # mlflow raises many types for a bad URI
                raise TrainingError(f"{location}: cannot load this MLflow model ({first_line(exc)})") from None
        raise TrainingError(
            f"{location}: not a model directory (no config.json) and not an MLflow model URI;"
            " pass the directory printed by `lakefine train` or models:/<name>@challenger"
        )

    @classmethod
    def from_directory(cls, path: Path) -> Predictor:
        try:
            config = AutoConfig.from_pretrained(path)
            model_class = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForSequenceClassification
            return cls(model_class.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path))
        except (OSError, ValueError) as exc:
            raise TrainingError(
                f"{path}: not a usable model directory ({first_line(exc)}); pass a directory"
                " written by save_pretrained (the model_dir that `lakefine train` prints) or models:/<name>@challenger"
            ) from None

    @property
    def is_seq2seq(self) -> bool:
        return bool(getattr(self.model.config, "is_encoder_decoder", False))

    def predict(self, texts: list[str], text_pairs: list[str] | None = None, batch_size: int = 32) -> list[dict]:
        results = []
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            pairs = text_pairs[start : start + batch_size] if text_pairs else None
            results += self._generate(batch, pairs) if self.is_seq2seq else self._classify(batch, pairs)
        return results

    def _classify(self, texts, pairs) -> list[dict]:
        config = self.model.config
        id2label = config.id2label
        encoded = self.tokenizer(
            texts, pairs, truncation=True, padding=True, max_length=self.tokenizer.model_max_length, return_tensors="pt"
        ).to(self.model.device)  # a scoring worker may have moved the model to its GPU
        with torch.no_grad():
            logits = self.model(**encoded).logits.float().cpu().numpy()
        if config.problem_type == "multi_label_classification":
            threshold = getattr(config, "lakefine_threshold", 0.5)
            return [
                {
                    "labels": [id2label[i] for i, p in enumerate(row) if p >= threshold],
                    "probabilities": {id2label[i]: float(p) for i, p in enumerate(row)},
                }
                for row in sigmoid(logits)
            ]
        results = []
        for row in probabilities(logits):
            best = int(row.argmax())
            results.append(
                {
                    "label": id2label[best],
                    "label_id": best,
                    "probabilities": {id2label[i]: float(p) for i, p in enumerate(row)},
                }
            )
        return results

    def _generate(self, texts, pairs) -> list[dict]:
        settings = getattr(self.model.config, "lakefine_seq2seq", None) or {"question_prefix": "", "context_prefix": ""}
        encoded = encoder_inputs(
            self.tokenizer, texts, pairs, settings, self.tokenizer.model_max_length, padding=True, return_tensors="pt"
        ).to(self.model.device)
        with torch.no_grad():
            generated = self.model.generate(**encoded, generation_config=self.model.generation_config)
        return [{"answer": answer} for answer in decode(self.tokenizer, generated.cpu().numpy())]
