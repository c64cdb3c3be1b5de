"""The Spark side: source -> clean -> labels -> split -> data card -> published dataset.

Pure ``DataFrame -> DataFrame`` stages (``clean``, ``label_ids``, ``split``,
``datacard``) with the I/O at the edges (``sources``, ``hub``, ``publish``) and
``prepare`` running them in order. May use the fast ``tokenizers`` (and transformers'
tokenizer loading) to count tokens; never torch or the Trainer: this side meets
training only through the published dataset.
"""
