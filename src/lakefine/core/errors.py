"""One small error hierarchy. Every message says what, where, and how to fix it.

The CLI prints ``str(error)`` and exits non-zero; nothing below this line should ever
reach a user as a raw Python or JVM traceback.
"""

from __future__ import annotations

from lakefine.core.redact import redact_text


class LakefineError(Exception):
    """Base class: an error the user can act on. Its text never carries a credential:
    a URI's ``user:password@``, a token (see ``lakefine.core.redact``) is masked."""

    exit_code = 2

    def __str__(self) -> str:
        return redact_text(super().__str__())


class ConfigError(LakefineError):
    """The pipeline configuration is invalid (unknown key, wrong type, bad value)."""

    def __init__(self, problems: list[str] | str, source: str = "config"):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(f"{source}: {n} problem{'s' if n > 1 else ''}:\n{lines}")


class DataError(LakefineError):
    """The input data cannot be used as configured (missing column, empty source...)."""


class PrivilegeError(LakefineError):
    """Unity Catalog privileges are missing; the message lists the GRANTs that fix it."""


class HandoffError(LakefineError):
    """Publishing or reading the prepared dataset failed (incomplete, stale, missing)."""


class TrainingError(LakefineError):
    """The model or the training setup is unusable (not a model directory, ...)."""


class Preempted(TrainingError):
    """Training stopped on SIGTERM after saving a checkpoint; rerun to resume."""

    exit_code = 143


class TrackingError(LakefineError):
    """The MLflow tracking server or registry cannot be used."""
