"""Scoring: a trained model labels a Spark DataFrame on every worker.

``model`` resolves the model on the driver (``--model``, else the registered
``champion``, else the ``challenger``) to a directory of model files that every worker
can read; ``frame`` adds the prediction columns with an iterator pandas UDF (no
sparkContext or RDD, so it runs on Spark Connect); ``worker`` is what runs in each
Python worker (the model loaded once per process through ``serving.predictor``, rows
sorted by token length into model batches); ``sink`` writes the scores, as a batch or
incrementally, and accounts for every row.

Scoring is a side of its own, next to preparation and training: it imports pyspark,
the serving side and tracking, never ``prep`` or ``training``. The entry point
(``lakefine.pipeline.score``) reads the input through the Spark side's readers and
hands the DataFrame in.
"""
