"""Bundle task `evaluate`: score the registered `challenger` on the published test split."""

import json
import sys

from lakefine import pipeline
from lakefine.ops.jobs import run_job


def step(config, args):
    print(json.dumps(pipeline.evaluate(config), indent=2, default=str))


if __name__ == "__main__":
    sys.exit(run_job(step))
