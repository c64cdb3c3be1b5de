"""Pipeline configuration: frozen dataclasses grouped by concern, loaded from YAML.

Every section validates itself at construction; the loader collects the problems of
all sections (unknown keys, wrong types, bad values) and reports them together.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from lakefine.errors import ConfigError

TASKS = ("classification", "pair_classification", "multi_label", "seq2seq")
FILE_FORMATS = ("csv", "json", "jsonl", "parquet", "text")
# Keys that must never hold a secret inline: a config is logged to MLflow as params.
# A Databricks personal access token anywhere in a value (alone, or inside a URI).
TOKEN_PATTERN = re.compile(r"dapi[0-9a-f]{32}")
SECRET_KEY_PATTERN = re.compile(r"(^|_)(token|secret|password|api_key|access_key|pat)$", re.IGNORECASE)


class _Section:
    """Shared validation: subclasses list their own value problems in ``_problems``."""

    def _problems(self) -> list[str]:
        return []

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise ConfigError(problems)


@dataclass(frozen=True)
class SourceConfig(_Section):
    """Where the labelled rows come from: exactly one of table, sql or path."""

    table: Optional[str] = None  # catalog.schema.table
    sql: Optional[str] = None
    tables: dict = field(default_factory=dict)  # {name: catalog.schema.table} bound to {name} in sql
    path: Optional[str] = None  # files under a volume: /Volumes/<catalog>/<schema>/<volume>/...
    # A Hugging Face dataset: {name, config, split}; its size is checked before download.
    hub: Optional[dict] = None
    max_download_mb: float = 1024.0
    unknown_size: Literal["refuse", "warn"] = "refuse"  # when the hub does not state a size
    format: Optional[str] = None  # csv | json | jsonl | parquet; inferred from path if unset
    options: dict = field(default_factory=dict)  # passed to the Spark reader
    where: Optional[str] = None  # Spark SQL filter applied at read (rows outside the dataset)
    # Derived columns, {name: Spark SQL expression}, added right after the read
    # (e.g. parse a "TYPE:subtype question" text line into two columns).
    columns: dict = field(default_factory=dict)
    text_column: str = "text"
    text_pair_column: Optional[str] = None
    label_column: str = "label"
    id_column: Optional[str] = None
    # Quarantine exact repeats of (text, text_pair, label) beyond the first (reason duplicate).
    deduplicate: bool = False

    def _problems(self) -> list[str]:
        problems = []
        given = [k for k in ("table", "sql", "path", "hub") if getattr(self, k)]
        if len(given) != 1:
            problems.append(
                "source: set exactly one of source.table, source.sql, source.path, source.hub"
                f" (got {', '.join(given) or 'none'})"
            )
        if self.hub is not None:
            unknown = set(self.hub) - {"name", "config", "split"}
            if not isinstance(self.hub.get("name"), str) or unknown:
                problems.append("source.hub: expected {name: <dataset id or local dir>, config: <optional>,"
                                f" split: <optional, default train>}} (got {self.hub!r})")
        if self.table and len(self.table.split(".")) != 3:
            problems.append(
                f"source.table: {self.table!r} is not a three-part name catalog.schema.table"
            )
        if self.format and self.format not in FILE_FORMATS:
            problems.append(f"source.format: {self.format!r} is not one of {', '.join(FILE_FORMATS)}")
        return problems

    @property
    def file_format(self) -> Optional[str]:
        if self.format or not self.path:
            return self.format
        suffixes = [s.lstrip(".") for s in Path(self.path.rstrip("/")).suffixes]
        for suffix in reversed(suffixes):
            if suffix in FILE_FORMATS:
                return suffix
        return None


@dataclass(frozen=True)
class LabelConfig(_Section):
    """How labels are discovered and mapped to ids."""

    # "exact" keeps labels as they are; "normalize" trims and lower-cases them first
    # so "Spam", "spam " and "SPAM" become one class.
    case: Literal["exact", "normalize"] = "exact"
    # Classes with fewer rows than this are quarantined (reason: rare_label).
    min_count: int = 1
    # multi_label: a label is predicted when its sigmoid probability is at least this.
    threshold: float = 0.5

    def _problems(self) -> list[str]:
        problems = []
        if self.case not in ("exact", "normalize"):
            problems.append(f"labels.case: {self.case!r} is not one of exact, normalize")
        if self.min_count < 1:
            problems.append(f"labels.min_count: must be >= 1 (got {self.min_count})")
        if not 0 < self.threshold < 1:
            problems.append(f"labels.threshold: must be between 0 and 1 (got {self.threshold})")
        return problems


@dataclass(frozen=True)
class SplitConfig(_Section):
    """Deterministic train/validation/test assignment by a hash of a stable key."""

    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1
    seed: int = 42

    def _problems(self) -> list[str]:
        fractions = (self.train, self.validation, self.test)
        if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
            return [
                "split: train + validation + test must be non-negative and sum to 1"
                f" (got {self.train} + {self.validation} + {self.test})"
            ]
        if self.train == 0:
            return ["split.train: must be > 0"]
        return []


@dataclass(frozen=True)
class ModelConfig(_Section):
    """Which pretrained checkpoint to fine-tune and how long its inputs may be."""

    # A checkpoint directory (or /Volumes path), or a bundled alias: "minilm".
    name_or_path: str = "minilm"
    # "auto" picks the 99th percentile of token lengths on the training split (capped
    # by the model's maximum); an integer fixes it.
    max_length: Any = "auto"

    def _problems(self) -> list[str]:
        ml = self.max_length
        if ml != "auto" and not (isinstance(ml, int) and not isinstance(ml, bool) and ml > 0):
            return [f"model.max_length: must be 'auto' or a positive integer (got {ml!r})"]
        return []


@dataclass(frozen=True)
class TrainConfig(_Section):
    """Trainer settings. Defaults are the fast paths measured in bench/."""

    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs (smoke runs, tests)
    batch_size: int = 32
    eval_batch_size: int = 64
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.0
    gradient_accumulation_steps: int = 1
    group_by_length: bool = True
    logging_steps: int = 10
    seed: int = 42
    early_stopping_patience: Optional[int] = None
    # Save (and evaluate) every N steps instead of every epoch: how much work a
    # preemption can cost. Checkpoints are mirrored to the volume.
    checkpoint_steps: Optional[int] = None
    # "balanced": cross-entropy weighted by n_train / (n_classes * class_train_rows),
    # from the Spark label counts; applied through the Trainer's compute_loss_func.
    class_weights: Literal["none", "balanced"] = "none"
    torch_threads: Optional[int] = None  # None: leave torch's default
    # > 1: that many DDP processes through Spark's TorchDistributor (lakefine.distributed)
    num_processes: int = 1

    def _problems(self) -> list[str]:
        problems = []
        for name in ("batch_size", "eval_batch_size", "gradient_accumulation_steps", "logging_steps",
                     "num_processes"):
            if getattr(self, name) < 1:
                problems.append(f"train.{name}: must be >= 1 (got {getattr(self, name)})")
        if self.epochs <= 0 and self.max_steps <= 0:
            problems.append("train: set train.epochs > 0 or train.max_steps > 0")
        if self.learning_rate <= 0:
            problems.append(f"train.learning_rate: must be > 0 (got {self.learning_rate})")
        return problems


@dataclass(frozen=True)
class Seq2SeqConfig(_Section):
    """Text-to-text (T5 shape): input = question_prefix + text, paired with
    context_prefix + text_pair (only the context is truncated); target = label."""

    question_prefix: str = "question: "
    context_prefix: str = "context: "
    max_target_length: int = 32
    num_beams: int = 4
    no_repeat_ngram_size: int = 0
    max_new_tokens: int = 32

    def _problems(self) -> list[str]:
        return [f"seq2seq.{name}: must be >= 1 (got {getattr(self, name)})"
                for name in ("max_target_length", "num_beams", "max_new_tokens") if getattr(self, name) < 1]


@dataclass(frozen=True)
class TrackingConfig(_Section):
    """MLflow: experiment, registered model. The tracking URI comes from the
    environment (MLFLOW_TRACKING_URI) unless set here; local default is sqlite."""

    experiment: Optional[str] = None  # default: lakefine-<pipeline name>
    registered_model: Optional[str] = None  # default: <pipeline name>
    register: bool = True
    tracking_uri: Optional[str] = None


@dataclass(frozen=True)
class RuntimeConfig(_Section):
    """Where things live. Paths under /Volumes/... map to ``local_root`` in local mode."""

    volume: str = "/Volumes/main/lakefine/prep"  # prepared datasets, models, checkpoints
    local_root: str = ".lakefine"  # local stand-in for /Volumes (local mode only)
    working_dir: Optional[str] = None  # local SSD scratch; default: a temp dir
    spark_master: str = "local[2]"
    # auto: Dataset.from_spark with working_dir staging on classic/local sessions,
    # Spark-written Parquet on Spark Connect (from_spark needs a sparkContext).
    handoff: Literal["auto", "from_spark", "parquet"] = "auto"
    keep_versions: int = 3  # prepared dataset versions kept per pipeline

    def _problems(self) -> list[str]:
        if not self.volume.startswith("/Volumes/") or len(self.volume.split("/")) < 5:
            return [
                f"runtime.volume: {self.volume!r} is not a volume path"
                " /Volumes/<catalog>/<schema>/<volume>[/...]"
            ]
        return []


SECTIONS: dict[str, type] = {
    "source": SourceConfig,
    "labels": LabelConfig,
    "split": SplitConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "seq2seq": Seq2SeqConfig,
    "tracking": TrackingConfig,
    "runtime": RuntimeConfig,
}
TOP_LEVEL = ("name", "task", *SECTIONS)


@dataclass(frozen=True)
class PipelineConfig:
    name: str
    task: str
    source: SourceConfig
    labels: LabelConfig = field(default_factory=LabelConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    seq2seq: Seq2SeqConfig = field(default_factory=Seq2SeqConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment or f"lakefine-{self.name}"

    @property
    def registered_model_name(self) -> str:
        return self.tracking.registered_model or self.name

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def flat_params(self) -> dict[str, str]:
        """``section.key -> str(value)`` for MLflow params."""
        flat = {}
        for key, value in self.to_dict().items():
            if isinstance(value, dict):
                for sub, v in value.items():
                    flat[f"{key}.{sub}"] = str(v)
            else:
                flat[key] = str(value)
        return flat


# ---------------------------------------------------------------------------- loading


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> PipelineConfig:
    """Read a pipeline YAML, apply ``section.key=value`` overrides, validate it all."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no pipeline file at {path}; pass a YAML such as pipelines/smoke.yaml",
                          source=str(path))
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", source=str(path)) from None
    if not isinstance(raw, dict):
        raise ConfigError("the top level must be a mapping of sections", source=str(path))
    return config_from_dict(apply_overrides(raw, overrides), source=str(path))


def apply_overrides(raw: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """``train.epochs=2`` -> raw["train"]["epochs"] = 2 (values parsed as YAML scalars)."""
    merged = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    problems = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            problems.append(f"override {item!r}: expected section.key=value")
            continue
        parts = key.strip().split(".")
        parsed = yaml.safe_load(value) if value.strip() else None
        if len(parts) == 1:
            merged[parts[0]] = parsed
        elif len(parts) == 2:
            section = merged.setdefault(parts[0], {})
            if not isinstance(section, dict):
                problems.append(f"override {item!r}: {parts[0]} is not a section")
                continue
            section[parts[1]] = parsed
        elif len(parts) == 3 and parts[1] == "options":
            merged.setdefault(parts[0], {}).setdefault("options", {})[parts[2]] = parsed
        else:
            problems.append(f"override {item!r}: expected section.key=value")
    if problems:
        raise ConfigError(problems, source="command line")
    return merged


def config_from_dict(raw: dict, source: str = "config") -> PipelineConfig:
    problems: list[str] = []
    problems += _unknown_keys(raw, TOP_LEVEL, prefix="")
    problems += _inline_secrets(raw)
    name = raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_\-]+", name or ""):
        problems.append(f"name: required, letters/digits/_/- only (got {name!r})")
    task = raw.get("task", "classification")
    if task not in TASKS:
        problems.append(f"task: {task!r} is not one of {', '.join(TASKS)}")
    if "source" not in raw:
        problems.append("source: required section (table, sql or path, plus columns)")

    sections: dict[str, Any] = {}
    for key, cls in SECTIONS.items():
        values = raw.get(key) or {}
        if not isinstance(values, dict):
            problems.append(f"{key}: must be a mapping (got {type(values).__name__})")
            continue
        section_problems = _unknown_keys(values, [f.name for f in dataclasses.fields(cls)], prefix=f"{key}.")
        typed, type_problems = _coerce_section(cls, values, key)
        section_problems += type_problems
        if section_problems:
            problems += section_problems
            continue
        try:
            sections[key] = cls(**typed)
        except ConfigError as exc:
            problems += exc.problems
    source_values = raw.get("source") or {}
    if task == "pair_classification" and isinstance(source_values, dict) and not source_values.get("text_pair_column"):
        problems.append("source.text_pair_column: required for task pair_classification (the second sentence)")
    if problems:
        raise ConfigError(problems, source=source)
    return PipelineConfig(name=name, task=task, **sections)


def _unknown_keys(values: dict, valid: typing.Iterable[str], prefix: str) -> list[str]:
    valid = list(valid)
    problems = []
    for key in values:
        if key in valid:
            continue
        close = difflib.get_close_matches(str(key), valid, n=1)
        hint = f"did you mean '{prefix}{close[0]}'? " if close else ""
        problems.append(
            f"unknown key '{prefix}{key}': {hint}valid keys: {', '.join(prefix + v for v in valid)}"
        )
    return problems


def _inline_secrets(raw: dict, prefix: str = "") -> list[str]:
    problems = []
    for key, value in raw.items():
        if isinstance(value, dict):
            problems += _inline_secrets(value, f"{prefix}{key}.")
        elif SECRET_KEY_PATTERN.search(str(key)) and value not in (None, ""):
            problems.append(
                f"{prefix}{key}: secrets must not be written in a pipeline file (configs are"
                " logged to MLflow); set DATABRICKS_TOKEN or use a Databricks config profile"
            )
        elif isinstance(value, str) and TOKEN_PATTERN.search(value):
            problems.append(
                f"{prefix}{key}: looks like a Databricks token; never put tokens in a pipeline"
                " file: set DATABRICKS_TOKEN or use a Databricks config profile"
            )
    return problems


def _coerce_section(cls: type, values: dict, section: str) -> tuple[dict, list[str]]:
    hints = typing.get_type_hints(cls)
    typed, problems = {}, []
    for key, value in values.items():
        if key not in hints:
            continue
        ok, converted = _coerce(value, hints[key])
        if ok:
            typed[key] = converted
        else:
            shown = "a value that looks like a token" if TOKEN_PATTERN.search(str(value)) else repr(value)
            problems.append(f"{section}.{key}: expected {_type_name(hints[key])} (got {shown})")
    return typed, problems


def _coerce(value: Any, hint: Any) -> tuple[bool, Any]:
    origin = typing.get_origin(hint)
    if hint is Any:
        return True, value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in typing.get_args(hint):
            return True, None
        for arg in typing.get_args(hint):
            if arg is type(None):
                continue
            ok, converted = _coerce(value, arg)
            if ok:
                return True, converted
        return False, value
    if origin is Literal:
        return (value in typing.get_args(hint)), value
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return (isinstance(value, int) and not isinstance(value, bool)), value
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, float(value)
        # YAML 1.1 reads "2e-4" (no dot) as a string; it is plainly a number.
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+(\.\d*)?[eE][+-]?\d+", value.strip()):
            return True, float(value)
        return False, value
    if hint is str:
        return isinstance(value, str), value
    if hint is dict or origin is dict:
        return isinstance(value, dict), value
    return True, value


def _type_name(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(hint))
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    return getattr(hint, "__name__", str(hint))
