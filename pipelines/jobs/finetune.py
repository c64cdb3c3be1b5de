"""Bundle task `finetune` (GPU job cluster): the dataset the prepare task named -> model in MLflow."""

import json
import sys

from lakefine import pipeline
from lakefine.ops.jobs import run_job


def step(config, args):
    print(json.dumps(pipeline.train(config, args.dataset).summary(), indent=2, default=str))


if __name__ == "__main__":
    sys.exit(run_job(step))
