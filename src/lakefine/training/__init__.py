"""The training side: a published dataset -> a fine-tuned model.

``tasks`` dispatches on the task shape to ``classification`` (single-label, pairs,
multi-label) or ``seq2seq``; ``common`` holds what they share (the model inputs,
i.e. the token ids the dataset carries, the Trainer arguments, SIGTERM handling),
``callbacks`` the Trainer callbacks and ``checkpoints`` the preemption-proof
checkpoint mirror. Never imports pyspark, except ``distributed``, the
TorchDistributor launcher: the one module that may.
"""
