"""Leases and locks (core.leases) and what they protect: pruning spares a dataset a
live training reads; a second holder of an attempt's lock is refused with the holder's
name; a dead holder's lock (expired heartbeat, or a killed pid on this host) is taken
over. Real files, real processes killed; no Spark, no torch."""

import json
import signal
import socket
import subprocess
import sys
import time

import pytest

from lakefine.core.dataset import MANIFEST, prune_versions
from lakefine.core.leases import Heartbeat, LockHeld, live_leases


def fake_version(root, key, published_at):
    """A published version as prune sees it: a directory with a manifest."""
    (root / key).mkdir(parents=True)
    (root / key / MANIFEST).write_text(json.dumps({"key": key, "published_at": published_at, "files": []}))
    return root / key


def test_pruning_spares_a_leased_version_and_removes_its_quarantine_with_the_others(tmp_path):
    root, quarantine = tmp_path / "datasets", tmp_path / "quarantine"
    for i in range(4):
        fake_version(root, f"k{i}", published_at=i)
        (quarantine / f"k{i}").mkdir(parents=True)
    with Heartbeat(expiry=30, purpose="train") as heartbeat:
        heartbeat.add_lease(root / "k0")
        assert len(live_leases(root / "k0", 30)) == 1
        prune_versions(root, keep=2, lease_seconds=30, quarantine_root=quarantine)
        assert sorted(p.name for p in root.iterdir()) == ["k0", "k2", "k3"]
    assert sorted(p.name for p in quarantine.iterdir()) == ["k0", "k2", "k3"]  # k1's went with it
    assert live_leases(root / "k0", 30) == []  # released when the training ended
    prune_versions(root, keep=2, lease_seconds=30, quarantine_root=quarantine)
    assert sorted(p.name for p in root.iterdir()) == ["k2", "k3"]


def test_an_expired_lease_protects_nothing(tmp_path):
    root = tmp_path / "datasets"
    for i in range(2):
        fake_version(root, f"k{i}", published_at=i)
    leases = root / "k0" / "_leases"
    leases.mkdir()
    record = {"host": "another-node", "pid": 1, "heartbeat_at": time.time() - 5}
    (leases / "dead.json").write_text(json.dumps(record))
    prune_versions(root, keep=1, lease_seconds=60)
    assert (root / "k0").is_dir()  # a heartbeat 5 s ago is alive under a 60 s expiry
    prune_versions(root, keep=1, lease_seconds=2)
    assert not (root / "k0").exists()


HOLD = """
import sys, time
from pathlib import Path
from lakefine.core.leases import Heartbeat
with Heartbeat(expiry=float(sys.argv[2]), purpose="train test") as heartbeat:
    heartbeat.add_lock(Path(sys.argv[1]))
    print("held", flush=True)
    time.sleep(600)
"""


def hold_lock(path, expiry):
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(expiry)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_second_holder_is_refused_naming_the_first_and_a_killed_holder_is_taken_over(tmp_path):
    lock = tmp_path / "checkpoints" / "attempt.lock.json"
    first = hold_lock(lock, expiry=30)
    try:
        time.sleep(0.2)
        with pytest.raises(LockHeld) as refused, Heartbeat(expiry=30, purpose="train") as second:
            second.add_lock(lock)
        message = str(refused.value)
        assert f"pid {first.pid}" in message and socket.gethostname() in message
        assert "runtime.lease_seconds" in message
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # Killed on this host: its pid is gone, so the lock is free at once (no expiry wait).
    with Heartbeat(expiry=30, purpose="train") as third:
        third.add_lock(lock)
        assert json.loads(lock.read_text())["pid"] == third.record["pid"]
    assert not lock.exists()  # released on exit


def test_a_lock_from_another_node_is_kept_until_its_heartbeat_expires(tmp_path):
    lock = tmp_path / "attempt.lock.json"
    stale = {"host": "node-b", "pid": 4242, "started_at": "2026-12-01T00:00:00Z", "heartbeat_at": time.time()}
    lock.write_text(json.dumps(stale))
    with pytest.raises(LockHeld, match="host node-b, pid 4242"), Heartbeat(expiry=2, purpose="t") as heartbeat:
        heartbeat.add_lock(lock)
    lock.write_text(json.dumps({**stale, "heartbeat_at": time.time() - 3}))
    with Heartbeat(expiry=2, purpose="t") as heartbeat:
        heartbeat.add_lock(lock)  # node-b stopped beating 3 s ago: taken over


def test_the_heartbeat_keeps_a_lock_alive_and_never_overwrites_a_new_holder(tmp_path):
    lock = tmp_path / "attempt.lock.json"
    with Heartbeat(expiry=0.4, purpose="t") as heartbeat:
        heartbeat.add_lock(lock)
        first_beat = json.loads(lock.read_text())["heartbeat_at"]
        time.sleep(0.5)
        assert json.loads(lock.read_text())["heartbeat_at"] > first_beat  # refreshed
        other = {"host": "node-b", "pid": 1, "started_at": "x", "heartbeat_at": time.time()}
        lock.write_text(json.dumps(other))  # taken over while we stalled
        time.sleep(0.3)
    assert json.loads(lock.read_text())["host"] == "node-b"  # neither refreshed nor removed
