"""Pipeline configuration: frozen pydantic models grouped by concern, loaded from YAML.

Each section is a strict model (``"2"`` is not an int, ``1`` is not a bool) that checks
its own values. The loader validates every section and reports all the problems of all
sections (unknown keys, wrong types, bad values, inline secrets) in one ConfigError, each
prefixed with its ``section.key``. ``to_dict()`` is the source of dataset cache keys,
attempt keys and MLflow params: its shape must not change.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    field_validator,
    model_validator,
)

from lakefine.core.errors import ConfigError
from lakefine.core.paths import parse_volume_path
from lakefine.core.redact import contains_secret

Task = Literal["classification", "pair_classification", "multi_label", "seq2seq"]
TASKS: tuple[str, ...] = typing.get_args(Task)
FILE_FORMATS = ("csv", "json", "jsonl", "parquet", "text")
NAME_PATTERN = r"^[A-Za-z0-9_\-]+$"
# Keys that must never hold a secret inline: a config is logged to MLflow as params.
# A Databricks personal access token anywhere in a value (alone, or inside a URI).
TOKEN_PATTERN = re.compile(r"dapi[0-9a-f]{32}")
SECRET_KEY_PATTERN = re.compile(r"(^|_)(token|secret|password|api_key|access_key|pat)$", re.IGNORECASE)
_E_NOTATION = re.compile(r"[+-]?\d+(\.\d*)?[eE][+-]?\d+")


def _e_notation(value: Any) -> Any:
    # YAML 1.1 (PyYAML) reads 2e-4 -- no dot -- as the string "2e-4"; it is plainly a number.
    if isinstance(value, str) and _E_NOTATION.fullmatch(value.strip()):
        return float(value)
    return value


# Every float field: strict floats take ints (epochs: 1) but not bools or other strings.
Number = Annotated[float, BeforeValidator(_e_notation)]


class _Model(BaseModel):
    """Strict, frozen, no unknown keys. No custom ``__init__``: pydantic would call it for
    nested models too, so constructing a model directly raises pydantic's ValidationError;
    ``config_from_dict`` turns those into ConfigError problems."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class HubSource(_Model):
    """A Hugging Face dataset; its size is checked before download."""

    name: str = Field(description="A hub dataset id or a local dataset directory")
    config: str | None = None
    split: str = "train"


class SourceConfig(_Model):
    """Where the labelled rows come from: exactly one of table, sql, path or hub."""

    table: str | None = Field(None, description="catalog.schema.table")
    sql: str | None = None
    tables: dict = Field(default_factory=dict, description="{name: catalog.schema.table} bound to {name} in sql")
    path: str | None = Field(None, description="Files under a volume: /Volumes/<catalog>/<schema>/<volume>/...")
    hub: HubSource | None = Field(None, description="A Hugging Face dataset {name, config, split}")
    max_download_mb: Number = 1024.0
    unknown_size: Literal["refuse", "warn"] = Field("refuse", description="When the hub does not state a size")
    format: str | None = Field(None, description="csv | json | jsonl | parquet | text; inferred from path if unset")
    options: dict = Field(default_factory=dict, description="Passed to the Spark reader")
    where: str | None = Field(None, description="Spark SQL filter applied at read (rows outside the dataset)")
    columns: dict = Field(
        default_factory=dict,
        description="Derived columns, {name: Spark SQL expression}, added right after the read"
        " (e.g. parse a 'TYPE:subtype question' text line into two columns)",
    )
    text_column: str = "text"
    text_pair_column: str | None = None
    label_column: str = "label"
    id_column: str | None = None
    deduplicate: bool = Field(
        False,
        description="Quarantine repeats of (text, text_pair, label) beyond the first (reason duplicate);"
        " texts are compared with the key labels.conflict_key decides",
    )
    mojibake: Literal["repair", "quarantine", "keep"] = Field(
        "repair",
        description="Text decoded with the wrong codec upstream ('Ã©' for 'é'): repair it with ftfy"
        " (rows it cannot fix are quarantined), quarantine it (reason mojibake_<column>), or keep it as is",
    )
    max_text_chars: int = Field(
        100_000,
        ge=1,
        description="Texts longer than this (characters, after whitespace is collapsed) are cut to it"
        " before tokenization, and counted (data card: cut_texts)",
    )
    max_quarantined_fraction: Number = Field(
        0.1,
        ge=0,
        le=1,
        description="prepare fails when more than this fraction of the input rows is quarantined for"
        " data defects (null/empty/undecodable/mojibake/malformed/conflicting); duplicate, rare_label"
        " and label_not_in_train come from your own settings and do not count",
    )

    @field_validator("table")
    @classmethod
    def _three_parts(cls, table: str | None) -> str | None:
        if table and len(table.split(".")) != 3:
            raise ValueError(f"{_shown(table)} is not a three-part name catalog.schema.table")
        return table

    @field_validator("format")
    @classmethod
    def _known_format(cls, fmt: str | None) -> str | None:
        if fmt and fmt not in FILE_FORMATS:
            raise ValueError(f"{_shown(fmt)} is not one of {', '.join(FILE_FORMATS)}")
        return fmt

    @field_validator("options")
    @classmethod
    def _permissive_only(cls, options: dict) -> dict:
        for key, value in options.items():
            if str(key).lower() == "mode" and str(value).upper() != "PERMISSIVE":
                raise ValueError(
                    f"{_shown(value)}: lakefine always reads CSV and JSON in PERMISSIVE mode with the"
                    " corrupt-record column, so a line that cannot be parsed is counted and quarantined"
                    " (reason malformed_row, the raw line kept); DROPMALFORMED would drop such lines"
                    " from the input count without a trace, FAILFAST would stop at the first with a"
                    " Spark error. Remove source.options.mode"
                )
        return options

    @model_validator(mode="after")
    def _exactly_one_kind(self) -> SourceConfig:
        given = [k for k in ("table", "sql", "path", "hub") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError(
                "source: set exactly one of source.table, source.sql, source.path, source.hub"
                f" (got {', '.join(given) or 'none'})"
            )
        return self

    @property
    def file_format(self) -> str | None:
        if self.format or not self.path:
            return self.format
        suffixes = [s.lstrip(".") for s in Path(self.path.rstrip("/")).suffixes]
        return next((s for s in reversed(suffixes) if s in FILE_FORMATS), None)


class LabelConfig(_Model):
    """How labels are discovered and mapped to ids."""

    case: Literal["exact", "normalize"] = Field(
        "exact",
        description='"exact" keeps labels as they are; "normalize" trims and lower-cases them first,'
        ' so "Spam", "spam " and "SPAM" become one class',
    )
    min_count: int = Field(1, ge=1, description="Classes with fewer rows are quarantined (reason: rare_label)")
    conflict_key: Literal["auto", "folded", "exact"] = Field(
        "auto",
        description="How texts are compared by the conflicting-label and duplicate checks: 'folded' as"
        " the tokenizer's normalizer sees them (MiniLM's lower-cases and strips accents, so 'Great Film'"
        " and 'great film' are one text to the model), 'exact' as written; 'auto': folded when the"
        " tokenizer folds case or accents. The split key is never folded",
    )
    threshold: Number = Field(
        0.5,
        gt=0,
        lt=1,
        description="multi_label: a label is predicted when its sigmoid probability is at least this"
        " (the global threshold: every label with thresholds: global, the too-rare ones with per_label)",
    )
    thresholds: Literal["per_label", "global"] = Field(
        "per_label",
        description="multi_label: per_label tunes each label's threshold on the validation split (the one"
        " that maximises its F1); labels with fewer than min_positives validation positives keep the global one",
    )
    min_positives: int = Field(
        5, ge=1, description="multi_label, per_label: validation positives a label needs for its own threshold"
    )


# Label settings only training uses: they are left out of the dataset cache key.
TRAINING_ONLY_LABEL_KEYS = frozenset({"threshold", "thresholds", "min_positives"})


class SplitConfig(_Model):
    """Deterministic train/validation/test assignment by a hash of a stable key."""

    train: Number = 0.8
    validation: Number = 0.1
    test: Number = 0.1
    seed: int = 42

    @model_validator(mode="after")
    def _fractions(self) -> SplitConfig:
        fractions = (self.train, self.validation, self.test)
        if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
            raise ValueError(
                "split: train + validation + test must be non-negative and sum to 1"
                f" (got {self.train} + {self.validation} + {self.test})"
            )
        if self.train == 0:
            raise ValueError("split.train: must be > 0")
        return self


class ModelConfig(_Model):
    """Which pretrained checkpoint to fine-tune and how long its inputs may be."""

    name_or_path: str = Field(
        "minilm", description='A checkpoint directory (or /Volumes path), or a bundled alias such as "minilm"'
    )
    max_length: Literal["auto"] | PositiveInt = Field(
        "auto",
        description='"auto" picks the 99th percentile of token lengths on the training split'
        " (capped by the model's maximum); an integer fixes it",
    )

    @field_validator("max_length", mode="wrap")
    @classmethod
    def _auto_or_positive(cls, value: Any, handler: Any) -> Any:
        try:
            return handler(value)
        except ValidationError:  # one message instead of one per member of the union
            raise ValueError(f"must be 'auto' or a positive integer (got {_shown(value)})") from None


class TrainConfig(_Model):
    """Trainer settings. Defaults are the fast paths measured in bench/."""

    epochs: Number = 1.0
    max_steps: int = Field(-1, description="> 0 overrides epochs (smoke runs, tests)")
    batch_size: int = Field(32, ge=1)
    eval_batch_size: int = Field(64, ge=1)
    learning_rate: Number = Field(5e-5, gt=0)
    weight_decay: Number = 0.01
    warmup_ratio: Number = Field(0.0, ge=0, lt=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    group_by_length: bool = True
    logging_steps: int = Field(10, ge=1)
    seed: int = 42
    early_stopping_patience: int | None = None
    checkpoint_steps: int | None = Field(
        None,
        description="Save (and evaluate) every N steps instead of every epoch: how much work a"
        " preemption can cost. Checkpoints are mirrored to the volume",
    )
    class_weights: Literal["none", "balanced"] = Field(
        "none",
        description='"balanced": cross-entropy weighted by n_train / (n_classes * class_train_rows);'
        " multi-label: BCE with pos_weight sqrt(negatives / positives) per label, capped at 30;"
        " from the Spark label counts, applied through the Trainer's compute_loss_func",
    )
    head_bias: Literal["label_priors", "model"] = Field(
        "label_priors",
        description='multi-label: "label_priors" starts each output at the log-odds of its label\'s share of'
        " the train rows (from the Spark label counts), so training starts from a model that already"
        ' says "no" to rare labels instead of 0.5 for all; "model": the head as the model builds it',
    )
    torch_threads: int | None = Field(None, description="None: leave torch's default")
    num_processes: int = Field(
        1,
        ge=1,
        description="> 1: that many DDP processes through Spark's TorchDistributor (lakefine.training.distributed)",
    )
    temperature_scaling: bool = Field(
        False,
        description="classification, pairs: fit a temperature on the validation split (minimum log loss) and"
        " fold it into the classifier head, so every consumer of the model gets calibrated probabilities",
    )
    torch_compile: bool = Field(
        False,
        description="GPU only: compile the model with torch.compile (TrainingArguments.torch_compile); off by"
        " default: compiling costs minutes up front and pays off only on long runs",
    )

    @model_validator(mode="after")
    def _some_training(self) -> TrainConfig:
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ValueError("train: set train.epochs > 0 or train.max_steps > 0")
        return self


class Seq2SeqConfig(_Model):
    """Text-to-text (T5 shape): input = question_prefix + text, paired with
    context_prefix + text_pair (only the context is truncated); target = label."""

    question_prefix: str = "question: "
    context_prefix: str = "context: "
    max_target_length: int = Field(32, ge=1)
    num_beams: int = Field(4, ge=1)
    no_repeat_ngram_size: int = 0
    max_new_tokens: int = Field(32, ge=1)


# pydantic's metaclass is an ABCMeta, whose ``register`` method the field below "shadows":
# harmless, the field lives on instances and nothing calls TrackingConfig.register().
warnings.filterwarnings("ignore", message='Field name "register" in "TrackingConfig"', category=UserWarning)


class TrackingConfig(_Model):
    """MLflow: experiment, registered model. The tracking URI comes from the
    environment (MLFLOW_TRACKING_URI) unless set here; local default is sqlite."""

    experiment: str | None = Field(None, description="Default: lakefine-<pipeline name>")
    registered_model: str | None = Field(None, description="Default: <pipeline name>")
    register: bool = True
    tracking_uri: str | None = None


class EvaluateConfig(_Model):
    """Champion / challenger: ``lakefine evaluate`` scores the challenger and the current
    champion on the challenger's test split and moves the ``champion`` alias only when
    this gate passes."""

    metric: str | None = Field(
        None,
        description="The test metric the gate compares (without the test_ prefix), e.g. f1_macro, accuracy,"
        " exact_match. Default: f1_macro for classification, pairs and multi-label, exact_match for seq2seq",
    )
    min_improvement: Number = Field(
        0.0, description="The challenger replaces the champion when metric(challenger) - metric(champion) >= this"
    )
    min_metric: Number = Field(0.0, description="An absolute floor: a challenger below it is never promoted")
    min_class_f1: Number | None = Field(
        None, ge=0, le=1, description="Optional floor for every class's (label's) test F1; not for seq2seq"
    )
    mode: Literal["enabled", "dry_run", "disabled"] = Field(
        "enabled",
        description="enabled: move the champion alias when the gate passes; dry_run: decide and log, move"
        " nothing; disabled: score the model only",
    )


class RuntimeConfig(_Model):
    """Where things live. Paths under /Volumes/... map to ``local_root`` in local mode."""

    volume: str = Field("/Volumes/main/lakefine/prep", description="Prepared datasets, models, checkpoints")
    local_root: str = Field(".lakefine", description="Local stand-in for /Volumes (local mode only)")
    working_dir: str | None = Field(None, description="Local SSD scratch; default: a temp dir")
    spark_master: str = "local[2]"
    handoff: Literal["auto", "from_spark", "parquet"] = Field(
        "auto",
        description="auto: Dataset.from_spark with working_dir staging on classic/local sessions,"
        " Spark-written Parquet on Spark Connect (from_spark needs a sparkContext)",
    )
    keep_versions: int = Field(3, ge=1, description="Prepared dataset versions kept per pipeline")
    lease_seconds: Number = Field(
        300.0,
        gt=0,
        description="A training's lease on its dataset and lock on its attempt expire this long after its"
        " last heartbeat (a killed process); pruning and a second training respect live ones",
    )
    abandoned_checkpoint_hours: Number = Field(
        24.0,
        ge=0,
        description="Checkpoints of another attempt of the pipeline, unlocked and untouched this long,"
        " are removed when a training starts",
    )

    @field_validator("volume")
    @classmethod
    def _is_volume(cls, volume: str) -> str:
        try:
            parse_volume_path(volume, "runtime.volume")
        except ConfigError:
            raise ValueError(
                f"{_shown(volume)} is not a volume path /Volumes/<catalog>/<schema>/<volume>[/...]"
            ) from None
        return volume


class ScoreConfig(_Model):
    """Scoring a table with a trained model (``lakefine score``): how each Python worker
    cuts its Arrow batches into model batches. Only scoring reads these: they are in
    neither the dataset cache key nor the training attempt key."""

    batch_rows: int = Field(64, ge=1, description="Most rows in one model batch")
    batch_tokens: int = Field(
        4096,
        ge=1,
        description="Most padded tokens (rows x the longest row, after truncation) in one model batch:"
        " rows are sorted by token length within each Arrow batch, so long texts get small batches",
    )
    torch_threads: int | None = Field(
        1,
        ge=1,
        description="torch threads per Python worker on CPU (Spark already runs one worker per core);"
        " None leaves torch's default",
    )
    max_files_per_trigger: int | None = Field(
        None, ge=1, description="--incremental: most new files (or Delta files) per micro-batch; None: no cap"
    )


SECTIONS: dict[str, type[_Model]] = {
    "source": SourceConfig,
    "labels": LabelConfig,
    "split": SplitConfig,
    "model": ModelConfig,
    "train": TrainConfig,
    "seq2seq": Seq2SeqConfig,
    "tracking": TrackingConfig,
    "evaluate": EvaluateConfig,
    "runtime": RuntimeConfig,
    "score": ScoreConfig,
}


class PipelineConfig(_Model):
    """A lakefine pipeline file: what to read, how to label and split it, what to fine-tune."""

    name: str = Field(pattern=NAME_PATTERN, description="Names the run, the experiment and the registered model")
    task: Task = "classification"
    source: SourceConfig
    labels: LabelConfig = Field(default_factory=LabelConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    seq2seq: Seq2SeqConfig = Field(default_factory=Seq2SeqConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    score: ScoreConfig = Field(default_factory=ScoreConfig)

    @property
    def experiment_name(self) -> str:
        return self.tracking.experiment or f"lakefine-{self.name}"

    @property
    def registered_model_name(self) -> str:
        return self.tracking.registered_model or self.name

    @property
    def gate_metric(self) -> str:
        return self.evaluate.metric or ("exact_match" if self.task == "seq2seq" else "f1_macro")

    def to_dict(self) -> dict:
        return self.model_dump()

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


TOP_LEVEL = tuple(PipelineConfig.model_fields)


def pipeline_json_schema() -> dict:
    """JSON Schema of a pipeline YAML file, for ``lakefine schema`` and editors.

    Unknown keys are refused at every level. Float fields accept numbers only: the
    "2e-4" string form exists only for YAML 1.1 readers, and editors read YAML 1.2."""
    schema = PipelineConfig.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema, "title": "lakefine pipeline"}


# ---------------------------------------------------------------------------- loading


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> PipelineConfig:
    """Read a pipeline YAML, apply ``section.key=value`` overrides, validate it all."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no pipeline file at {path}; pass a YAML such as pipelines/smoke.yaml", source=str(path))
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
    """Validate a pipeline mapping: every problem of every section, in one ConfigError."""
    problems = _unknown_keys(raw, TOP_LEVEL, prefix="") + _inline_secrets(raw)
    name = raw.get("name")
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
        problems.append(f"name: required, letters/digits/_/- only (got {_shown(name)})")
    task = raw.get("task", "classification")
    if task not in TASKS:
        problems.append(f"task: {_shown(task)} is not one of {', '.join(TASKS)}")
    if "source" not in raw:
        problems.append("source: required section (table, sql or path, plus columns)")

    sections: dict[str, _Model] = {}
    for key, cls in SECTIONS.items():
        values = raw.get(key) or {}
        if not isinstance(values, dict):
            problems.append(f"{key}: must be a mapping (got {type(values).__name__})")
            continue
        try:
            sections[key] = cls.model_validate(values)
        except ValidationError as exc:
            problems += _problems(exc, cls, key)
    source_values = raw.get("source") or {}
    if task == "pair_classification" and isinstance(source_values, dict) and not source_values.get("text_pair_column"):
        problems.append("source.text_pair_column: required for task pair_classification (the second sentence)")
    if problems:
        raise ConfigError(problems, source=source)
    return PipelineConfig(name=name, task=task, **sections)


def _unknown_keys(values: dict, valid: Iterable[str], prefix: str) -> list[str]:
    valid = list(valid)
    problems = []
    for key in values:
        if key in valid:
            continue
        close = difflib.get_close_matches(str(key), valid, n=1)
        hint = f"did you mean '{prefix}{close[0]}'? " if close else ""
        problems.append(f"unknown key '{prefix}{key}': {hint}valid keys: {', '.join(prefix + v for v in valid)}")
    return problems


def _inline_secrets(
    value: Any, prefix: str = "", ancestors: frozenset = frozenset(), seen: set | None = None
) -> list[str]:
    """Secret-named keys with a value, and token-like strings, anywhere in dicts and lists.

    A recursive YAML alias (``a: &x [*x]``) is refused here, before anything else walks
    the config; ``seen`` makes a node shared by several aliases cost one visit."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return []
    seen.add(id(value))
    ancestors = ancestors | {id(value)}
    problems = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        where = f"{prefix}{key}" if isinstance(value, dict) else f"{prefix.rstrip('.')}[{key}]"
        if isinstance(item, (dict, list)) and id(item) in ancestors:
            problems.append(f"{where}: a recursive YAML alias (a value that contains itself) is not allowed")
        elif isinstance(item, dict) or (isinstance(item, list) and not SECRET_KEY_PATTERN.search(str(key))):
            problems += _inline_secrets(item, f"{where}.", ancestors, seen)
        elif isinstance(value, dict) and SECRET_KEY_PATTERN.search(str(key)) and item not in (None, "", []):
            problems.append(
                f"{where}: secrets must not be written in a pipeline file (configs are"
                " logged to MLflow); set DATABRICKS_TOKEN or use a Databricks config profile"
            )
        elif isinstance(item, str) and contains_secret(item):
            what = "a Databricks token" if TOKEN_PATTERN.search(item) else "a credential (a token or a password)"
            problems.append(
                f"{where}: looks like {what}; never put secrets in a pipeline"
                " file: set DATABRICKS_TOKEN (or MLFLOW_TRACKING_USERNAME/PASSWORD, HF_TOKEN)"
                " or use a Databricks config profile"
            )
    return problems


# ---------------------------------------------------------------------------- messages


def _problems(exc: ValidationError, model: type[BaseModel], prefix: str) -> list[str]:
    """pydantic errors -> ``section.key: what is wrong (got value)``, one per key."""
    problems: dict[str, str] = {}
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        path = ".".join(filter(None, (prefix, *loc)))
        if path not in problems:
            problems[path] = _problem(error, model, loc, path)
    return list(problems.values())


def _problem(error: Any, model: type[BaseModel], loc: tuple[str, ...], path: str) -> str:
    kind, given = error["type"], _shown(error["input"])
    if kind == "value_error":  # our validators; model-level ones name their keys themselves
        text = str(error["ctx"]["error"])
        return f"{path}: {text}" if loc else text
    try:
        owner, field = _locate(model, loc)
    except (KeyError, StopIteration):
        return f"{path}: {error['msg']}"
    if kind in ("extra_forbidden", "invalid_key"):
        parent = path[: -len(loc[-1])]
        return _unknown_keys({loc[-1]: None}, owner.model_fields, prefix=parent)[0]
    if kind == "missing":
        return f"{path}: required"
    if field is None:
        return f"{path}: {error['msg']}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{path}: {_bounds(field)} (got {given})"
    return f"{path}: expected {_type_name(field.annotation)} (got {given})"


def _locate(model: type[BaseModel], loc: tuple[str, ...]) -> tuple[type[BaseModel], Any]:
    """The model holding ``loc[-1]`` (following nested models) and that key's field, if any."""
    for part in loc[:-1]:
        annotation = model.model_fields[part].annotation
        model = next(a for a in (annotation, *typing.get_args(annotation)) if _is_model(a))
    return model, model.model_fields.get(loc[-1])


def _is_model(hint: Any) -> bool:
    return isinstance(hint, type) and issubclass(hint, BaseModel)


_OPS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _bounds(field: Any) -> str:
    bounds = {op: getattr(m, op) for m in field.metadata for op in _OPS if hasattr(m, op)}
    if bounds.keys() == {"gt", "lt"}:
        return f"must be between {bounds['gt']} and {bounds['lt']}"
    return "must be " + " and ".join(f"{_OPS[op]} {v}" for op, v in bounds.items())


def _shown(value: Any) -> str:
    """A value for a message: never echo something that looks like a token, nor a whole
    mapping or list (it may hold one under a name no rule knows)."""
    if isinstance(value, dict):
        return f"a mapping with {len(value)} key{'s' if len(value) != 1 else ''}"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}"
    return "a value that looks like a token" if contains_secret(value) else repr(value)


def _type_name(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if hint is type(None):
        return "None"
    if _is_model(hint):
        return f"a mapping of {', '.join(hint.model_fields)}"
    return getattr(hint, "__name__", str(hint))
