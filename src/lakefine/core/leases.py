"""Who is using what, across processes and nodes: small JSON files on the volume whose
``heartbeat_at`` a background thread refreshes. A killed holder stops refreshing, so
its file expires after ``runtime.lease_seconds`` and is then ignored or taken over.

- A *lease* on a published dataset (``<dataset>/_leases/<holder>.json``): any number of
  trainings may hold one; pruning never removes a leased dataset.
- A *lock* on a training attempt (``<attempt>.lock.json``): one holder at a time; a
  second training of the same attempt is refused with the holder's name.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from lakefine.core.errors import LakefineError
from lakefine.core.files import write_json_atomically

LEASES = "_leases"


class LockHeld(LakefineError):
    """Another live process holds the lock."""


def holder_info(purpose: str) -> dict:
    now = time.time()
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "purpose": purpose,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "heartbeat_at": now,
    }


def read_record(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # gone, or being replaced right now
        return None


def is_live(record: dict | None, expiry: float) -> bool:
    """A recent heartbeat, unless the holder is a process on this host that is gone
    (a killed training rerun on the same node need not wait for the expiry)."""
    if record is None or time.time() - float(record.get("heartbeat_at", 0)) >= expiry:
        return False
    if record.get("host") == socket.gethostname():
        try:
            os.kill(int(record["pid"]), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, KeyError, ValueError):  # another user's process: alive
            pass
    return True


def live_leases(dataset_dir: Path, expiry: float) -> list[dict]:
    """The leases on ``dataset_dir`` whose holder is still alive."""
    folder = dataset_dir / LEASES
    records = [read_record(p) for p in folder.glob("*.json")] if folder.is_dir() else []
    return [r for r in records if is_live(r, expiry)]


def describe(record: dict) -> str:
    age = time.time() - float(record.get("heartbeat_at", 0))
    return (
        f"host {record.get('host')}, pid {record.get('pid')}, started {record.get('started_at')}"
        f" (last heartbeat {age:.0f} s ago)"
    )


class Heartbeat:
    """Keeps ``files`` alive while the ``with`` block runs, then removes them.

    Every file holds the same holder record; a daemon thread rewrites them every
    ``expiry / 4`` seconds, so a holder is considered dead only after missing
    three refreshes."""

    def __init__(self, expiry: float, purpose: str):
        self.expiry = expiry
        self.record = holder_info(purpose)
        self.files: list[Path] = []
        self.locks: set[Path] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def add_lease(self, dataset_dir: Path) -> Path:
        name = f"{self.record['host']}-{self.record['pid']}-{uuid.uuid4().hex[:8]}.json"
        path = dataset_dir / LEASES / name
        path.parent.mkdir(parents=True, exist_ok=True)
        self._keep(path)
        return path

    def add_lock(self, path: Path) -> Path:
        """Take the lock at ``path``: refused while another live holder has it, taken
        over when its holder stopped beating (a killed process)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(10):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                current = read_record(path)
                if is_live(current, self.expiry):
                    raise LockHeld(
                        f"another training of this attempt is running: {describe(current)}; lock {path}."
                        " Wait for it or stop it (a killed holder's lock expires after"
                        f" runtime.lease_seconds={self.expiry:g} s), or change the config to start a separate run"
                    ) from None
                # Expired: move it aside; of two processes taking over, only one rename succeeds.
                try:
                    path.rename(path.with_name(f".expired-{path.name}-{uuid.uuid4().hex[:8]}"))
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump(self.record, handle)
            self._keep(path, written=True)
            self.locks.add(path)
            return path
        raise LockHeld(f"could not take the lock {path}: it keeps changing hands")

    def _keep(self, path: Path, written: bool = False) -> None:
        with self._lock:
            self.files.append(path)
        if not written:
            write_json_atomically(path, self.record)

    def beat(self) -> None:
        with self._lock:
            self.record["heartbeat_at"] = time.time()
            for path in list(self.files):
                if path in self.locks and not self._still_ours(path):
                    self.files.remove(path)  # taken over while we stalled: never overwrite the new holder
                    continue
                try:
                    write_json_atomically(path, self.record)
                except OSError:  # the volume hiccuped: the next beat tries again
                    pass

    def _still_ours(self, path: Path) -> bool:
        current = read_record(path)
        return current is not None and all(current.get(k) == self.record[k] for k in ("host", "pid", "started_at"))

    def _run(self) -> None:
        while not self._stop.wait(self.expiry / 4):
            self.beat()

    def __enter__(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._run, name="lakefine-heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            for path in self.files:
                if path in self.locks and not self._still_ours(path):
                    continue
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
            self.files.clear()
