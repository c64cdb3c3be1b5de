#!/usr/bin/env bash
# The main job: set up .venv (first run only), stage the real Rotten Tomatoes data
# into the local stand-in volume, and run the pipeline end to end on MiniLM.
# Extra arguments are passed to `lakefine run` (e.g. train.epochs=2).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
.venv/bin/lakefine stage-data rotten_tomatoes
exec .venv/bin/lakefine run pipelines/rotten_tomatoes.yaml "$@"
