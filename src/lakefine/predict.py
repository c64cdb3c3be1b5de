"""Prediction from a saved model directory or an MLflow model URI: label names and
probabilities per text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lakefine.errors import TrainingError
from lakefine.metrics import probabilities

MLFLOW_SCHEMES = ("models:/", "runs:/", "file:", "dbfs:/", "s3://", "mlflow-artifacts:")


@dataclass
class Predictor:
    model: object
    tokenizer: object

    @classmethod
    def load(cls, location: str) -> "Predictor":
        """``location``: a ``save_pretrained`` directory, an MLflow model directory,
        or an MLflow model URI (``models:/name@alias``, ``runs:/id/model``)."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = Path(location)
        if path.is_dir() and (path / "config.json").is_file():
            try:
                return cls(AutoModelForSequenceClassification.from_pretrained(path).eval(),
                           AutoTokenizer.from_pretrained(path))
            except (OSError, ValueError) as exc:
                raise TrainingError(f"{location}: not a usable model directory ({str(exc).splitlines()[0][:200]})") from None
        if location.startswith(MLFLOW_SCHEMES) or (path / "MLmodel").is_file():
            import mlflow

            from lakefine.tracking import default_tracking_uri

            mlflow.set_tracking_uri(default_tracking_uri())
            if location.startswith("models:/") and default_tracking_uri() == "databricks":
                mlflow.set_registry_uri("databricks-uc")
            try:
                components = mlflow.transformers.load_model(location, return_type="components")
            except Exception as exc:  # mlflow raises many types for a bad URI
                raise TrainingError(f"{location}: cannot load this MLflow model ({str(exc).splitlines()[0][:200]})") from None
            return cls(components["model"].eval(), components["tokenizer"])
        raise TrainingError(
            f"{location}: not a model directory (no config.json) and not an MLflow model URI;"
            " pass the directory printed by `lakefine train` or models:/<name>@challenger"
        )

    def predict(self, texts: list[str], text_pairs: list[str] | None = None, batch_size: int = 32) -> list[dict]:
        import torch

        id2label = self.model.config.id2label
        results = []
        for start in range(0, len(texts), batch_size):
            batch = texts[start:start + batch_size]
            pairs = text_pairs[start:start + batch_size] if text_pairs else None
            encoded = self.tokenizer(batch, pairs, truncation=True, padding=True,
                                     max_length=self.tokenizer.model_max_length, return_tensors="pt")
            with torch.no_grad():
                logits = self.model(**encoded).logits.numpy()
            for row in probabilities(logits):
                best = int(row.argmax())
                results.append({
                    "label": id2label[best],
                    "label_id": best,
                    "probabilities": {id2label[i]: float(p) for i, p in enumerate(row)},
                })
        return results
