"""lakefine: labelled text in Spark -> a fine-tuned, tracked Hugging Face model.

The layers, top to bottom (imports point downward only; checked by import-linter):
``cli`` and ``pipeline`` (entry points); ``prep`` (the Spark side), ``training`` and
``ops`` (independent of each other); ``serving``; ``tracking``; ``core``.
"""

from lakefine.core.errors import LakefineError

__version__ = "0.1.0"
__all__ = ["LakefineError", "__version__"]
