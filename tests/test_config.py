"""Config: every shipped pipeline loads; bad keys and values are all reported at once."""

from pathlib import Path

import pytest

from lakefine.config import config_from_dict, load_config
from lakefine.errors import ConfigError

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
    raw = base(train={"batch_size": 0, "learning_rate": "fast"}, split={"train": 0.9, "test": 0.5},
               model={"max_length": -3}, runtime={"volume": "/tmp/x"}, task="regression")
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
    config = load_config(path, ["train.epochs=2", "train.group_by_length=false", "source.options.sep=;",
                                "train.learning_rate=2e-4"])
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
    with pytest.raises(Exception):
        config.train.epochs = 3  # type: ignore[misc]
