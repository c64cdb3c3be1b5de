"""Progress output and message helpers: one prefixed line per step, to stderr so
``--json`` stdout stays clean. Both redact credentials (``lakefine.core.redact``)."""

import sys

from lakefine.core.redact import redact_text


def say(message: str) -> None:
    print(f"[lakefine] {redact_text(message)}", file=sys.stderr, flush=True)


def first_line(error: BaseException | str, limit: int = 200) -> str:
    """The first non-empty line of an exception (or text), cut to ``limit``
    characters: library errors carry pages of context a user should not have to read."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else (type(error).__name__ if isinstance(error, BaseException) else "")
    return redact_text(line)[:limit]
