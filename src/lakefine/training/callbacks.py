"""The Trainer callbacks lakefine composes into every training (no Trainer subclass):
MLflow metrics that survive a server restart, the checkpoint mirror on the volume, and
the per-rank record of a distributed run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import mlflow
from transformers import TrainerCallback

from lakefine.core.errors import TrackingError
from lakefine.core.log import first_line, say
from lakefine.tracking.client import RETRY_SECONDS_ENV, retry_seconds, server_unavailable
from lakefine.training.checkpoints import mirror_best_and_newest, seal_saved, step_of


class FirstStepTimer(TrainerCallback):
    """Seconds from ``fit()`` entry to the end of the first optimizer step of this
    process: the dataset opened, the model built, the Trainer set up, the first batch
    collated and trained on. On a GPU node, the time the GPU waits before it trains."""

    def __init__(self):
        self.started = time.perf_counter()
        self.seconds: float | None = None

    def on_step_end(self, args, state, control, **kwargs):
        if self.seconds is None:
            self.seconds = time.perf_counter() - self.started
            if state.is_world_process_zero:
                say(f"train: first optimizer step done {self.seconds:.1f} s after fit() began")


class MlflowMetrics(TrainerCallback):
    """Logs every log line as MLflow metrics. Metrics that fail to reach the server
    (a restart, a network blip) are kept and sent with the next log call or at the end
    of training, with their original step.

    After a resume, the steps between the checkpoint and the interruption are trained
    again; their metrics were already logged by the interrupted attempt, so steps up to
    ``logged_until_step`` are not logged twice: the run keeps one continuous history."""

    def __init__(self, logged_until_step: int = 0):
        self.logged_until_step = logged_until_step
        self.pending: list = []
        self.failing = False  # say so once per outage, not on every log line

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if 0 < state.global_step <= self.logged_until_step and "loss" in logs:
            return
        now = int(time.time() * 1000)
        for key, value in logs.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.pending.append(mlflow.entities.Metric(key, float(value), now, state.global_step))
        self.flush(final=False)

    def on_train_end(self, args, state, control, **kwargs):
        self.flush(final=True)

    def flush(self, final: bool) -> None:
        # During training one attempt (training goes on); at the end, keep trying
        # for up to retry_seconds() so a server restart does not cost the run.
        deadline = time.monotonic() + (retry_seconds() if final else 0.0)
        attempt, error = 0, None
        while self.pending:
            try:
                run_id = mlflow.active_run().info.run_id
                mlflow.tracking.MlflowClient().log_batch(run_id, metrics=self.pending[:1000])
                del self.pending[:1000]
                if self.failing and not self.pending:
                    say("tracking: the tracking server is back; buffered metrics logged")
                    self.failing = False
            except Exception as exc:  # the server is away: keep the metrics, retry later
                error = exc
                if not self.failing:
                    say(
                        f"tracking: could not log {len(self.pending)} metrics yet ({type(exc).__name__});"
                        " keeping them and retrying"
                    )
                    self.failing = True
                attempt += 1
                if time.monotonic() >= deadline or (final and not server_unavailable(exc)):
                    break
                time.sleep(min(1.0 * attempt, 10.0))
        if final and self.pending:
            raise TrackingError(
                f"{len(self.pending)} metrics could not be logged to MLflow at"
                f" {mlflow.get_tracking_uri()} ({first_line(error) if error else ''});"
                f" check the server (a restart may take up to {RETRY_SECONDS_ENV}="
                f"{retry_seconds():.0f} s) and run again"
            )


class MirrorCheckpoints(TrainerCallback):
    """Seals each checkpoint the Trainer saved (complete from now on) and mirrors it,
    and the best one, to the volume (a retried run may land on a new node)."""

    def __init__(self, volume_dir: Path):
        self.volume_dir = volume_dir

    def on_save(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        seal_saved(Path(args.output_dir))
        mirror_best_and_newest(Path(args.output_dir), self.volume_dir)


class BestCheckpoint(TrainerCallback):
    """Remembers which checkpoint the Trainer judged best (the model it ends on)."""

    def __init__(self):
        self.step: int | None = None

    def on_train_end(self, args, state, control, **kwargs):
        self.step = step_of(Path(state.best_model_checkpoint)) if state.best_model_checkpoint else None


class RankRecord(TrainerCallback):
    """Every rank writes ``rank-N.json`` when training ends: its rank, the world size the
    Trainer saw and the optimizer steps it took (the evidence that each rank trained)."""

    def __init__(self, directory: Path, rank: int):
        self.directory, self.rank = directory, rank
        self.steps_run = 0

    def on_step_end(self, args, state, control, **kwargs):
        self.steps_run += 1

    def on_train_end(self, args, state, control, **kwargs):
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / f"rank-{self.rank}.json").write_text(
            json.dumps(
                {
                    "rank": self.rank,
                    "world_size": args.world_size,
                    "process_index": args.process_index,
                    "global_step": state.global_step,
                    "steps_run": self.steps_run,  # optimizer steps this process took
                    "is_world_process_zero": state.is_world_process_zero,
                }
            )
        )
