"""The bundle's job tasks share this: parse the pipeline file plus the catalog /
schema / volume the bundle target passes in, run one step, turn a LakefineError into
one clear line and a failed task (exit 2), never a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from lakefine.core.config import PipelineConfig, load_config
from lakefine.core.errors import LakefineError
from lakefine.core.session import on_databricks


def parse(argv=None, add_arguments: Callable[[argparse.ArgumentParser], None] | None = None):
    """``(config, args)``; ``add_arguments`` declares a task's own flags (the score job's)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipeline", required=True, help="pipeline YAML (relative to the bundle root)")
    parser.add_argument("--catalog")
    parser.add_argument("--schema")
    parser.add_argument("--volume", help="volume name inside catalog.schema")
    parser.add_argument("--registered-model", help="catalog.schema.model in Unity Catalog")
    parser.add_argument("--dataset", help="a published dataset directory (finetune: the prepare task's value)")
    parser.add_argument("overrides", nargs="*", help="section.key=value")
    if add_arguments:
        add_arguments(parser)
    args = parser.parse_args(argv)
    overrides = list(args.overrides)
    if args.catalog and args.schema and args.volume:
        overrides.append(f"runtime.volume=/Volumes/{args.catalog}/{args.schema}/{args.volume}")
    if args.registered_model:
        overrides.append(f"tracking.registered_model={args.registered_model}")
    return load_config(args.pipeline, overrides), args


def run_job(step: Callable[[PipelineConfig, argparse.Namespace], object], argv=None, add_arguments=None) -> int:
    """Run ``step(config, args)``; a LakefineError is one clear line and a failed task."""
    try:
        step(*parse(argv, add_arguments))
    except LakefineError as exc:
        print(f"lakefine: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def set_task_value(key: str, value: str) -> None:
    """On Databricks, hand ``value`` to downstream tasks (``{{tasks.<this>.values.<key>}}``);
    elsewhere there is no job to hand it to."""
    if not on_databricks():
        return
    from databricks.sdk.runtime import dbutils  # exists only inside a Databricks runtime

    dbutils.jobs.taskValues.set(key=key, value=value)
