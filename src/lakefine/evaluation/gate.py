"""The champion / challenger gate as a pure decision: the challenger's and the
champion's test scores and the ``evaluate`` config section in, a decision and its
reason out. ``evaluate`` runs the models, moves the alias and logs what was decided."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from lakefine.core.config import EvaluateConfig
from lakefine.core.errors import ConfigError


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    metric: str
    challenger: float
    champion: float | None = None
    difference: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def check_metric(metric: str, available: dict, task: str) -> None:
    if metric not in available:
        raise ConfigError(
            f"evaluate.metric: {metric!r} is not a test metric of task {task}; use one of {', '.join(sorted(available))}"
        )


def decide(
    gate: EvaluateConfig,
    metric: str,
    challenger: dict[str, float],
    challenger_per_class: dict[str, dict],
    champion: dict[str, float] | None = None,
    not_comparable: str | None = None,
) -> Decision:
    """``champion`` None: there is no champion to compare (``not_comparable`` says why,
    if there is one that cannot be compared, e.g. another label map: it is kept)."""
    value = challenger[metric]
    if value < gate.min_metric:
        return Decision(
            False, f"challenger {metric} {value:.4f} is below evaluate.min_metric {gate.min_metric}", metric, value
        )
    if gate.min_class_f1 is not None:
        weak = [
            f"{label} {scores['f1']:.3f}"
            for label, scores in challenger_per_class.items()
            if scores.get("support", 0) > 0 and scores["f1"] < gate.min_class_f1
        ]
        if weak:
            shown = ", ".join(weak[:5]) + (f" and {len(weak) - 5} more" if len(weak) > 5 else "")
            return Decision(False, f"class F1 below evaluate.min_class_f1 {gate.min_class_f1}: {shown}", metric, value)
    if not_comparable:
        return Decision(False, not_comparable, metric, value)
    if champion is None:
        return Decision(
            True, f"no champion yet; challenger {metric} {value:.4f} >= min_metric {gate.min_metric}", metric, value
        )
    difference = value - champion[metric]
    if difference >= gate.min_improvement:
        reason = f"challenger {metric} {value:.4f} vs champion {champion[metric]:.4f}: +{difference:.4f} >= min_improvement {gate.min_improvement}"
        return Decision(True, reason, metric, value, champion[metric], difference)
    reason = f"challenger {metric} {value:.4f} vs champion {champion[metric]:.4f}: {difference:+.4f} < min_improvement {gate.min_improvement}"
    return Decision(False, reason, metric, value, champion[metric], difference)
