"""Bundle task `prepare` (CPU cluster): UC privilege preflight, then source -> published dataset,
named to the finetune task as the task value `dataset`."""

import json
import sys

from lakefine import pipeline
from lakefine.ops.jobs import run_job, set_task_value
from lakefine.ops.privileges import preflight


def step(config, args):
    preflight(config)
    summary = pipeline.prepare(config).summary()
    set_task_value("dataset", summary["dataset"])  # the finetune task trains exactly this one
    print(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(run_job(step))
