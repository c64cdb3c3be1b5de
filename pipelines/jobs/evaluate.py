"""Bundle task `evaluate`: score the registered `challenger` on the test split of the
dataset its run was trained on, then the champion / challenger gate (config section
`evaluate`): the same function as `lakefine evaluate`."""

import json
import sys

from lakefine import pipeline
from lakefine.ops.jobs import run_job


def step(config, args):
    print(json.dumps(pipeline.evaluate(config, dataset=args.dataset), indent=2, default=str))


if __name__ == "__main__":
    sys.exit(run_job(step))
