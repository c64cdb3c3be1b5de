"""Spark's Python worker daemon with the modules of the prepare stages already imported.

Spark forks every Python worker from this daemon, and forks a new one whenever a
worker is not handed back to the pool (a ``limit`` or ``first()`` stops a task early),
so one prepare forks several. Imported here once, pandas, pyarrow and the stage
modules (the handoff's imports ``datasets``) are in each fork from its first
instruction instead of being imported again by each worker (measured on 2 cores:
the Python workers of a cold smoke prepare 13.5 -> 10 CPU seconds). Only a local
session uses it (``spark.python.daemon.module``); a cluster keeps its own daemon.
"""

import ftfy  # noqa: F401  (mojibake repair, in the worker)
import pandas  # noqa: F401
import pyarrow  # noqa: F401
import pyspark.worker  # noqa: F401  (what each fork runs)
from pyspark import daemon
from pyspark.sql.pandas import serializers  # noqa: F401

from lakefine.prep import clean, datacard, label_ids, publish, tokenize  # noqa: F401  (the UDFs' modules)

if __name__ == "__main__":
    daemon.manager()
