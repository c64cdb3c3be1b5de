"""The JSON Schema of a pipeline file (``lakefine schema``): every shipped pipeline is
valid against it, checked by the independent ``jsonschema`` package, and a misspelled
key is flagged, as an editor using the schema would flag it."""

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml

from lakefine.core.config import pipeline_json_schema

REPO = Path(__file__).resolve().parents[1]
PIPELINES = sorted((REPO / "pipelines").glob("*.yaml"))


@pytest.fixture(scope="module")
def validator():
    schema = pipeline_json_schema()
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)  # the schema itself is well formed for its declared draft
    return cls(schema)


def smoke() -> dict:
    return yaml.safe_load((REPO / "pipelines/smoke.yaml").read_text())


def test_the_schema_declares_its_draft_and_refuses_unknown_keys():
    schema = pipeline_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert all(d.get("additionalProperties") is False for d in schema["$defs"].values())
    assert set(schema["required"]) == {"name", "source"}


@pytest.mark.parametrize("path", PIPELINES, ids=[p.stem for p in PIPELINES])
def test_every_shipped_pipeline_is_valid(validator, path):
    raw = yaml.safe_load(path.read_text())
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(raw)]
    assert not errors, errors


@pytest.mark.parametrize("section, key", [(None, "nmae"), ("train", "epoch"), ("source", "lable_column")])
def test_a_misspelled_key_is_invalid(section, key):
    raw = copy.deepcopy(smoke())
    (raw if section is None else raw[section])[key] = 1
    with pytest.raises(jsonschema.ValidationError, match=key):
        jsonschema.validate(raw, pipeline_json_schema())


@pytest.mark.parametrize(
    "section, values",
    [
        ("train", {"batch_size": "2"}),  # strict: a string is not an int
        ("train", {"warmup_ratio": 1.0}),
        ("runtime", {"keep_versions": 0}),
        ("model", {"max_length": "big"}),
        ("source", {"hub": {"name": "x", "splt": "train"}}),
    ],
)
def test_bad_values_are_invalid(validator, section, values):
    raw = copy.deepcopy(smoke())
    raw.setdefault(section, {}).update(values)
    assert not validator.is_valid(raw)


def test_numbers_are_accepted_for_float_fields(validator):
    raw = copy.deepcopy(smoke())
    raw["train"].update({"epochs": 3, "learning_rate": 1.0e-4, "warmup_ratio": 0})
    raw["model"]["max_length"] = 128
    assert validator.is_valid(raw)
