"""Progress output: one prefixed line per step, to stderr so --json stdout stays clean."""

import sys


def say(message: str) -> None:
    print(f"[lakefine] {message}", file=sys.stderr, flush=True)
