"""Bundle task `evaluate`: score the registered `challenger` on the published test split."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import run_job  # noqa: E402

from lakefine import pipeline  # noqa: E402


def step(config):
    print(json.dumps(pipeline.evaluate(config), indent=2, default=str))


if __name__ == "__main__":
    sys.exit(run_job(step))
