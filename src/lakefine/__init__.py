"""lakefine: labelled text in Spark -> a fine-tuned, tracked Hugging Face model."""

from lakefine.errors import LakefineError

__version__ = "0.1.0"
__all__ = ["LakefineError", "__version__"]
