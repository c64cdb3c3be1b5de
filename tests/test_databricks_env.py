"""What changes on a Databricks runtime (simulated by its environment variable, in a
subprocess so nothing leaks into other tests): HF caches on the volume, soft file
locks, Unity Catalog model names."""

import json
import os
import subprocess
import sys

SCRIPT = r"""
import json, os
from lakefine.core.session import configure_hf_caches
configure_hf_caches("/Volumes/main/ml/prep")
import datasets.builder, filelock
from lakefine.core.config import config_from_dict
from lakefine.tracking.registry import registered_name
config = config_from_dict({"name": "p", "source": {"table": "main.ml.t"},
                           "runtime": {"volume": "/Volumes/main/ml/prep"}})
print(json.dumps({
    "datasets_cache": os.environ.get("HF_DATASETS_CACHE"),
    "soft_locks": issubclass(datasets.builder.FileLock, filelock.SoftFileLock),
    "model_name": registered_name(config),
}))
"""


def run(env_extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_DATASETS_CACHE", "DATABRICKS"))}
    env.update(env_extra)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_on_databricks_caches_live_on_the_volume_with_soft_locks_and_uc_names():
    result = run({"DATABRICKS_RUNTIME_VERSION": "17.3"})
    assert result == {
        "datasets_cache": "/Volumes/main/ml/prep/hf_cache/datasets",
        "soft_locks": True,
        "model_name": "main.ml.p",
    }


def test_local_mode_changes_nothing():
    result = run({})
    assert result == {"datasets_cache": None, "soft_locks": False, "model_name": "p"}
