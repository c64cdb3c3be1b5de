#!/usr/bin/env bash
# The tests: set up .venv (first run only), check format and lint (ruff), then run the
# whole suite, slow tests included; the import contracts (lint-imports) run inside it,
# in tests/test_architecture.py. Extra arguments go to pytest (e.g. -m "not slow").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
# One torch thread: two threads collapse under contention on 2 shared cores.
export OMP_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
# Seconds, and a failure here is quicker to read than a test log.
.venv/bin/ruff format --check --quiet src tests bench pipelines notebooks scripts
.venv/bin/ruff check --quiet src tests bench pipelines notebooks scripts
echo "[lakefine] load average before the tests: $(cut -d' ' -f1-3 /proc/loadavg)"
# Two workers (pytest-xdist), each taking whole files (module fixtures are built once):
# the suite is CPU-bound, but its subprocesses and servers also wait, and two workers
# overlap that. Files go out longest first (tests/conftest.py LONGEST_FIRST), not in
# xdist's default order by number of tests. LAKEFINE_TEST_WORKERS=0 runs everything in
# this one process.
exec .venv/bin/python -m pytest -n "${LAKEFINE_TEST_WORKERS:-2}" --dist loadfile --no-loadscope-reorder "$@"
