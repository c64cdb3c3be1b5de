"""Evaluation: one scoring of a model on a split for every task shape, used by
training's final metrics, ``lakefine evaluate``, the bundle task and the notebook.
``scoring`` (predictions + the metrics module), ``calibrate`` (per-label thresholds
and the temperature, fitted on validation), ``gate`` (champion / challenger),
``plots`` (matplotlib figures), ``card`` (the model card), ``report`` (what a
training run saves and logs) and ``evaluate`` (the ``lakefine evaluate`` flow).

Between the sides and serving: training imports it, and it imports serving (the
Predictor), tracking (runs, aliases) and core (metrics); never pyspark."""
