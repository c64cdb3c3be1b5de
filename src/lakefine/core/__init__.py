"""The core: what both sides share, importing neither pyspark nor torch.

Config, the label map, the published dataset (manifest and reader), paths, where we
run, errors, metrics (numpy / scikit-learn) and small helpers. Every other layer may
import from here; this package imports from no other layer.
"""
