"""Bundle task `finetune` (GPU job cluster): newest published dataset -> model in MLflow."""

import json
import sys

from lakefine import pipeline
from lakefine.ops.jobs import run_job


def step(config):
    print(json.dumps(pipeline.train(config).summary(), indent=2, default=str))


if __name__ == "__main__":
    sys.exit(run_job(step))
