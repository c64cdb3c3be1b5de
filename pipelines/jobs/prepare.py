"""Bundle task `prepare` (CPU cluster): UC privilege preflight, then source -> published dataset."""

import json
import sys

from lakefine import pipeline
from lakefine.ops.jobs import run_job
from lakefine.ops.privileges import preflight


def step(config):
    preflight(config)
    print(json.dumps(pipeline.prepare(config).summary(), indent=2, default=str))


if __name__ == "__main__":
    sys.exit(run_job(step))
