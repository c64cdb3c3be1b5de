#!/usr/bin/env bash
# The tests: set up .venv (first run only) and run the whole suite, slow tests
# included. Extra arguments go to pytest (e.g. -m "not slow" for the quick ones).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
# One torch thread: two threads collapse under contention on 2 shared cores.
export OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
exec .venv/bin/python -m pytest "$@"
