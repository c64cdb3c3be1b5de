"""Builds the JVM class-data-sharing archive that local Spark sessions map at start-up
(lakefine.prep.session.CLASS_ARCHIVE): one small real prepare, in a scratch root, in a
JVM that writes every class it loaded into the archive when it exits. Run by
scripts/bootstrap.sh; safe to rerun (the archive is replaced only by a finished one)."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    from lakefine.core.assets import TINY_MODEL, resolve_model, stage_dataset
    from lakefine.core.config import load_config
    from lakefine.prep.prepare import prepare
    from lakefine.prep.session import CLASS_ARCHIVE, local_java_options, local_session

    started = time.monotonic()
    partial = CLASS_ARCHIVE.with_name(f"{CLASS_ARCHIVE.name}.{os.getpid()}.partial")
    with tempfile.TemporaryDirectory(prefix="lakefine-class-archive-") as scratch:
        stage_dataset("rotten_tomatoes", scratch)
        resolve_model(TINY_MODEL, scratch)
        os.environ["LAKEFINE_LOCAL_ROOT"] = scratch
        # No archive mapped while recording one: a dynamic archive sits on the JDK's own.
        options = f"{local_java_options(class_archive=None)} -XX:ArchiveClassesAtExit={partial}"
        spark = local_session(java_options=options)
        small = "source.where=category IN ('fresh', 'rotten') AND length(text) > 200"
        prepare(load_config(REPO / "pipelines/smoke.yaml", [small]), spark)
        spark.range(10).write.parquet(f"{scratch}/parquet")  # the Parquet writer's classes too
        jvm = spark.sparkContext._gateway.proc
        spark.stop()
        jvm.stdin.close()  # the JVM exits when its Python driver's pipe closes, and then dumps
        code = jvm.wait(timeout=300)
    if code != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        print(f"[lakefine] class archive not built (JVM exit {code}); local Spark starts without it", file=sys.stderr)
        return 1
    os.replace(partial, CLASS_ARCHIVE)  # atomic: a reader sees the old archive, none, or this one
    size = CLASS_ARCHIVE.stat().st_size / 2**20
    print(f"[lakefine] class archive {CLASS_ARCHIVE} ({size:.0f} MiB) in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
