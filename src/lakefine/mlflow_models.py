"""The pyfunc wrapper for seq2seq models: transformers 5 dropped the
``text2text-generation`` pipeline that MLflow's transformers flavor needs for them."""

from __future__ import annotations

import mlflow.pyfunc


class Seq2SeqModel(mlflow.pyfunc.PythonModel):
    """Input: a DataFrame with a ``text`` column (and ``text_pair`` for a context),
    or a list of strings. Output: the generated answers."""

    def load_context(self, context):
        from lakefine.predict import Predictor

        self.predictor = Predictor.from_directory(__import__("pathlib").Path(context.artifacts["model_dir"]))

    def predict(self, context, model_input, params=None):
        if hasattr(model_input, "columns"):
            texts = model_input["text"].astype(str).tolist()
            pairs = model_input["text_pair"].astype(str).tolist() if "text_pair" in model_input.columns else None
        else:
            texts, pairs = [str(t) for t in model_input], None
        return [p["answer"] for p in self.predictor.predict(texts, pairs)]
