"""The Spark side: source -> clean -> labels -> split -> data card -> tokenize ->
published dataset.

Pure ``DataFrame -> DataFrame`` stages (``clean``, ``label_ids``, ``split``,
``datacard``, ``tokenize``) with the I/O at the edges (``sources``, ``hub``,
``publish``) and ``prepare`` running them in order. Uses the fast ``tokenizers`` to
count tokens and to make the published token ids (transformers' tokenizer loading
only for a checkpoint without a tokenizer.json); never torch or the Trainer: this
side meets training only through the published dataset.
"""
