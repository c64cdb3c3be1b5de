"""Serving: a trained model answers. ``predictor`` (directory or MLflow URI ->
labels and probabilities, or answers, in length-ordered batches from ``batching``),
``text2text`` (seq2seq inputs built the same way for training and prediction) and
``mlflow_model`` (logging the model with the transformers flavor or lakefine's pyfunc,
and registering it)."""
