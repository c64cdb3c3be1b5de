"""Config: every shipped pipeline loads; bad keys and values are all reported at once."""

from pathlib import Path

import pydantic
import pytest

from lakefine.core.config import config_from_dict, load_config
from lakefine.core.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
PIPELINES = sorted((REPO / "pipelines").glob("*.yaml"))


@pytest.mark.parametrize("path", PIPELINES, ids=[p.stem for p in PIPELINES])
def test_every_shipped_pipeline_loads(path):
    config = load_config(path)
    assert config.name == path.stem
    assert config.source.label_column


def base(**sections):
    raw = {"name": "t", "source": {"path": "/Volumes/c/s/v/data.csv"}}
    for key, value in sections.items():
        raw.setdefault(key, {}).update(value) if isinstance(value, dict) else raw.update({key: value})
    return raw


def test_misspelled_key_names_the_closest_valid_key_and_lists_all():
    with pytest.raises(ConfigError) as err:
        config_from_dict(base(source={"lable_column": "y"}))
    message = str(err.value)
    assert "unknown key 'source.lable_column'" in message
    assert "did you mean 'source.label_column'" in message
    assert "source.text_column" in message  # the valid keys are listed


def test_all_problems_are_reported_together():
    raw = base(
        train={"batch_size": 0, "learning_rate": "fast"},
        split={"train": 0.9, "test": 0.5},
        model={"max_length": -3},
        runtime={"volume": "/tmp/x"},
        task="regression",
    )
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    problems = err.value.problems
    joined = "\n".join(problems)
    for expected in ("train.learning_rate", "split:", "model.max_length", "runtime.volume", "task:"):
        assert expected in joined, expected
    assert len(problems) >= 5


def test_overrides_parse_yaml_scalars_and_reject_bad_shapes(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nsource: {path: /Volumes/c/s/v/x.csv}\n")
    config = load_config(
        path, ["train.epochs=2", "train.group_by_length=false", "source.options.sep=;", "train.learning_rate=2e-4"]
    )
    assert config.train.epochs == 2.0 and config.train.group_by_length is False
    assert config.train.learning_rate == 2e-4  # YAML 1.1 alone would read "2e-4" as a string
    assert config.source.options == {"sep": ";"}
    with pytest.raises(ConfigError, match="expected section.key=value"):
        load_config(path, ["train.epochs"])
    with pytest.raises(ConfigError, match="did you mean 'train.epochs'"):
        load_config(path, ["train.epoch=3"])


def test_exactly_one_source_kind():
    with pytest.raises(ConfigError, match="exactly one of source.table, source.sql, source.path"):
        config_from_dict({"name": "t", "source": {"table": "a.b.c", "path": "/Volumes/a/b/c/x.csv"}})
    with pytest.raises(ConfigError, match="three-part name"):
        config_from_dict({"name": "t", "source": {"table": "b.c"}})


def test_inline_token_is_refused_with_the_fix():
    with pytest.raises(ConfigError) as err:
        config_from_dict(base(tracking={"tracking_uri": "dapi0123456789abcdef0123456789abcdef"}))
    assert "DATABRICKS_TOKEN" in str(err.value)


def test_missing_pipeline_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no pipeline file"):
        load_config(tmp_path / "nope.yaml")


def test_config_is_frozen():
    config = config_from_dict(base())
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        config.train.epochs = 3  # type: ignore[misc]


# --- strict types, the YAML 1.1 number form, new value rules -------------------------

TOKEN = "dapi" + "0123456789abcdef" * 2  # shaped like a Databricks token, never a real one


@pytest.mark.parametrize("value", ["2", True, 2.0])
def test_an_int_field_takes_only_ints(value):
    with pytest.raises(ConfigError) as err:
        config_from_dict(base(train={"batch_size": value}))
    assert len(err.value.problems) == 1
    assert err.value.problems[0].startswith("train.batch_size: expected int (got ")


def test_a_bool_field_refuses_an_int():
    with pytest.raises(ConfigError, match="train.group_by_length: expected bool"):
        config_from_dict(base(train={"group_by_length": 1}))


def test_a_float_field_takes_ints_and_the_yaml_1_1_exponent_string():
    config = config_from_dict(base(train={"epochs": 2, "learning_rate": "2e-4", "weight_decay": "-1E+0"}))
    assert config.train.epochs == 2.0 and isinstance(config.train.epochs, float)
    assert config.train.learning_rate == 0.0002 and config.train.weight_decay == -1.0
    for value in ("fast", "0.5", True):  # only the exponent form is a number in disguise
        with pytest.raises(ConfigError, match="train.learning_rate: expected float"):
            config_from_dict(base(train={"learning_rate": value}))


def test_a_yaml_exponent_without_a_dot_loads_as_a_number(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nsource: {path: /Volumes/c/s/v/x.csv}\ntrain: {learning_rate: 3e-5}\n")
    assert load_config(path).train.learning_rate == 3e-5


@pytest.mark.parametrize("ratio, ok", [(0.0, True), (0.99, True), (1.0, False), (-0.1, False)])
def test_warmup_ratio_is_in_zero_one(ratio, ok):
    if ok:
        assert config_from_dict(base(train={"warmup_ratio": ratio})).train.warmup_ratio == ratio
    else:
        with pytest.raises(ConfigError, match=r"train.warmup_ratio: must be >= 0 and < 1"):
            config_from_dict(base(train={"warmup_ratio": ratio}))


def test_keep_versions_must_be_at_least_one():
    assert config_from_dict(base(runtime={"keep_versions": 1})).runtime.keep_versions == 1
    with pytest.raises(ConfigError, match=r"runtime.keep_versions: must be >= 1 \(got 0\)"):
        config_from_dict(base(runtime={"keep_versions": 0}))


@pytest.mark.parametrize(
    "value, expected", [("auto", "auto"), (128, 128), ("big", None), (0, None), (-3, None), (True, None)]
)
def test_max_length_is_auto_or_a_positive_int(value, expected):
    if expected is not None:
        assert config_from_dict(base(model={"max_length": value})).model.max_length == expected
        return
    with pytest.raises(ConfigError) as err:
        config_from_dict(base(model={"max_length": value}))
    assert err.value.problems == [f"model.max_length: must be 'auto' or a positive integer (got {value!r})"]


def test_value_rules_keep_their_messages():
    raw = base(labels={"threshold": 1.5, "min_count": 0}, seq2seq={"num_beams": 0}, source={"format": "xml"})
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    assert set(err.value.problems) == {
        "labels.threshold: must be between 0 and 1 (got 1.5)",
        "labels.min_count: must be >= 1 (got 0)",
        "seq2seq.num_beams: must be >= 1 (got 0)",
        "source.format: 'xml' is not one of csv, json, jsonl, parquet, text",
    }
    with pytest.raises(ConfigError, match=r"^config: 1 problem:\n  - split.train: must be > 0$"):
        config_from_dict(base(split={"train": 0, "validation": 0.5, "test": 0.5}))
    with pytest.raises(ConfigError, match="train: set train.epochs > 0 or train.max_steps > 0"):
        config_from_dict(base(train={"epochs": 0}))


def test_several_problems_in_several_sections_come_in_one_error():
    raw = base(
        train={"batch_size": "2", "epoch": 3},
        runtime={"keep_versions": 0},
        model={"max_length": "big"},
        tracking={"register": "yes"},
    )
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    keys = sorted(p.split(":")[0] for p in err.value.problems)
    assert keys == [
        "model.max_length",
        "runtime.keep_versions",
        "tracking.register",
        "train.batch_size",
        "unknown key 'train.epoch'",
    ]


# --- source.hub is a typed mapping -----------------------------------------------------


def hub(**values):
    return {"name": "t", "source": {"hub": values}}


def test_a_hub_source_is_typed_and_dumps_name_config_split():
    config = config_from_dict(hub(name="stanfordnlp/imdb"))
    assert config.source.hub.name == "stanfordnlp/imdb" and config.source.hub.split == "train"
    assert config.to_dict()["source"]["hub"] == {"name": "stanfordnlp/imdb", "config": None, "split": "train"}
    assert config_from_dict(base()).to_dict()["source"]["hub"] is None


def test_a_bad_hub_names_the_bad_keys_and_never_echoes_the_mapping():
    with pytest.raises(ConfigError) as err:
        config_from_dict(hub(name="x", splt="test", auth=TOKEN))
    message = str(err.value)
    assert "unknown key 'source.hub.splt': did you mean 'source.hub.split'?" in message
    assert "unknown key 'source.hub.auth'" in message
    assert "source.hub.auth: looks like a Databricks token" in message
    assert TOKEN not in message
    with pytest.raises(ConfigError) as err:
        config_from_dict(hub(config=TOKEN))
    assert "source.hub.name: required" in err.value.problems and TOKEN not in str(err.value)
    with pytest.raises(ConfigError) as err:
        config_from_dict({"name": "t", "source": {"hub": TOKEN}})
    assert any(p.startswith("source.hub: expected a mapping") for p in err.value.problems)
    assert TOKEN not in str(err.value)


# --- secrets, recursive aliases --------------------------------------------------------


def test_a_token_inside_a_list_is_refused():
    raw = base(source={"options": {"paths": ["a", {"auth": f"Bearer {TOKEN}"}]}})
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    assert err.value.problems[0].startswith("source.options.paths[1].auth: looks like a Databricks token")
    assert TOKEN not in str(err.value)


def test_a_token_in_a_typed_field_is_not_echoed():
    with pytest.raises(ConfigError) as err:
        config_from_dict(base(model={"max_length": TOKEN}, runtime={"volume": TOKEN}))
    assert "a value that looks like a token" in str(err.value) and TOKEN not in str(err.value)


@pytest.mark.parametrize(
    "text",
    [
        "a: &x [*x]\n",
        "source: {path: /Volumes/c/s/v/x.csv, options: &o {again: *o}}\n",
        "train: {batch_size: &x [1, *x]}\n",
    ],
)
def test_a_recursive_yaml_alias_is_a_config_error(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text("name: p\n" + text)
    with pytest.raises(ConfigError, match="a recursive YAML alias"):
        load_config(path)


def test_a_shared_alias_that_is_not_recursive_still_loads(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nsource: {path: /Volumes/c/s/v/x.csv, options: {a: &v [1, 2], b: *v}}\n")
    assert load_config(path).source.options == {"a": [1, 2], "b": [1, 2]}


# --- overrides, dumps ------------------------------------------------------------------


def test_overrides_set_keys_options_and_are_typed(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nsource: {path: /Volumes/c/s/v/x.csv, options: {header: true}}\n")
    config = load_config(
        path,
        [
            "train.batch_size=8",
            "source.options.sep=;",
            "runtime.keep_versions=2",
            "model.max_length=64",
            "task=multi_label",
        ],
    )
    assert config.train.batch_size == 8 and config.runtime.keep_versions == 2
    assert config.source.options == {"header": True, "sep": ";"}
    assert config.model.max_length == 64 and config.task == "multi_label"
    with pytest.raises(ConfigError, match=r"train.batch_size: expected int \(got '8x'\)"):
        load_config(path, ["train.batch_size=8x"])


def test_the_dump_keeps_the_shape_cache_keys_are_made_of():
    from lakefine.core.config import SplitConfig, TrackingConfig

    assert SplitConfig().model_dump() == {"train": 0.8, "validation": 0.1, "test": 0.1, "seed": 42}
    assert TrackingConfig().model_dump() == {
        "experiment": None,
        "registered_model": None,
        "register": True,
        "tracking_uri": None,
    }
    config = load_config(REPO / "pipelines/smoke.yaml")
    dumped = config.to_dict()
    assert list(dumped) == [
        "name",
        "task",
        "source",
        "labels",
        "split",
        "model",
        "train",
        "seq2seq",
        "tracking",
        "evaluate",
        "runtime",
        "score",
    ]
    assert dumped["train"] == {
        "epochs": 1.0,
        "max_steps": 10,
        "batch_size": 16,
        "eval_batch_size": 64,
        "learning_rate": 5e-05,
        "weight_decay": 0.01,
        "warmup_ratio": 0.0,
        "gradient_accumulation_steps": 1,
        "group_by_length": True,
        "logging_steps": 5,
        "seed": 42,
        "early_stopping_patience": None,
        "checkpoint_steps": None,
        "class_weights": "none",
        "head_bias": "label_priors",
        "torch_threads": None,
        "num_processes": 1,
        "temperature_scaling": False,
        "torch_compile": False,
    }
    flat = config.flat_params()
    assert flat["train.learning_rate"] == "5e-05" and flat["train.epochs"] == "1.0"
    assert flat["source.hub"] == "None" and flat["source.options"] == "{}" and flat["name"] == "smoke"
    assert config.experiment_name == "lakefine-smoke" and config.registered_model_name == "smoke_classifier"
    assert config.source.file_format == "csv"


def test_score_keys_change_neither_the_dataset_settings_nor_the_training_attempt_key():
    """Only scoring reads score.*: tuning it must not re-prepare or restart a training."""
    from lakefine.core.dataset import dataset_settings
    from lakefine.training.checkpoints import attempt_key

    default = load_config(REPO / "pipelines/smoke.yaml")
    tuned = load_config(REPO / "pipelines/smoke.yaml", ["score.batch_rows=7", "score.torch_threads=2"])
    assert tuned.score.batch_rows == 7
    assert attempt_key(default.flat_params(), "key") == attempt_key(tuned.flat_params(), "key")
    assert dataset_settings(default, "model-dir") == dataset_settings(tuned, "model-dir")
    assert attempt_key(default.flat_params(), "key") != attempt_key(
        load_config(REPO / "pipelines/smoke.yaml", ["train.seed=7"]).flat_params(), "key"
    )
