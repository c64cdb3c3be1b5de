"""Bundle job `score` (its own cluster, schedulable on its own): the registered `champion`
(else the `challenger`) labels the input table and the scores are written next to it."""

import json
import sys

from lakefine import pipeline
from lakefine.ops.jobs import run_job


def arguments(parser):
    # Empty job parameters arrive as "": the pipeline's source, the champion, no increment.
    parser.add_argument("--input-table", default="", help="catalog.schema.table (empty: the pipeline's source)")
    parser.add_argument("--input-path", default="", help="/Volumes/... files to score")
    parser.add_argument("--output-table", default="", help="catalog.schema.table for the scores")
    parser.add_argument("--output-path", default="", help="/Volumes/... directory for the scores")
    parser.add_argument(
        "--model", default="", help="model directory or MLflow URI (empty: @champion, else @challenger)"
    )
    parser.add_argument("--incremental", default="false", help="true: score only new files/rows (availableNow)")


def step(config, args):
    summary = pipeline.score_and_write(
        config,
        output_table=args.output_table,
        output_path=args.output_path,
        incremental=args.incremental.strip().lower() == "true",
        model_uri=args.model or None,
        input_table=args.input_table,
        input_path=args.input_path,
    )
    print(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    sys.exit(run_job(step, add_arguments=arguments))
