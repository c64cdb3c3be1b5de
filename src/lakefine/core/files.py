"""File writes that other processes (and other nodes, through the volume) may read
while they happen: they see the old content or the new, never a part."""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from pathlib import Path


def write_json_atomically(path: Path, data: dict) -> None:
    """Readers see the old file or the new one, never a part; concurrent writers each
    write their own temporary file and the last rename wins."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str))
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def replace_directory(staging: Path, target: Path) -> None:
    """Put a fully written ``staging`` directory in ``target``'s place. A retry that
    finds ``target`` already there (a repeated final step) replaces it whole."""
    if target.exists():
        retired = target.with_name(f".retired-{target.name}-{uuid.uuid4().hex[:8]}")
        target.rename(retired)
        staging.rename(target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging.rename(target)


# Storage failures a user fixes on the volume (space, quota, permissions, the device),
# by errno for Python and by strerror text for the JVM and Spark tasks, whose errors
# reach the driver as text inside a Py4J or PythonException.
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EFBIG, errno.EACCES}
_WRITE_TEXTS = [os.strerror(code) for code in sorted(WRITE_ERRNOS)]


def write_failure(exc: BaseException) -> str | None:
    """The storage reason (e.g. "No space left on device") if ``exc`` or its cause is a
    failed write, else None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
            return os.strerror(exc.errno)
        text = str(exc)
        for reason in _WRITE_TEXTS:
            if reason in text:
                return reason
        exc = exc.__cause__ or exc.__context__
    return None
