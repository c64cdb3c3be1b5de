"""The Databricks Asset Bundle, checked offline: databricks.yml plus resources/*.yml
are loaded, ``${var.*}`` is resolved for every target the way the Databricks CLI does
it (variable defaults, then target overrides), and each job is checked for files that
do not exist, flags its scripts do not accept, broken task graphs, and — through the
``databricks-bundles`` typed classes — unknown keys and wrong types.

``bundle_problems(root)`` returns every problem as text, so the tests below can also
break a copy of the bundle on purpose and see the right complaint.
"""

from __future__ import annotations

import ast
import copy
import re
import shutil
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
TARGETS = ("dev", "prod")
# Stand-in for the deploying user in development mode's default root path.
DEV_USER = "someone@example.com"
# Substitutions the CLI itself provides (besides var.*) that this bundle may use.
BUILTIN_REFS = {
    "bundle.name",
    "bundle.target",
    "workspace.root_path",
    "workspace.file_path",
    "workspace.artifact_path",
    "workspace.current_user.userName",
    "workspace.current_user.short_name",
}
REF = re.compile(r"\$\{([A-Za-z0-9_.\-\[\]]+)\}")
JOB_PARAM_REF = re.compile(r"\{\{\s*job\.parameters\.([A-Za-z0-9_.\-]+)\s*\}\}")
# {{tasks.<task_key>.values.<name>}}: a value an upstream task set (dbutils.jobs.taskValues)
TASK_VALUE_REF = re.compile(r"\{\{\s*tasks\.([A-Za-z0-9_\-]+)\.values\.([A-Za-z0-9_]+)\s*\}\}")
TASK_TYPES = (
    "spark_python_task",
    "notebook_task",
    "python_wheel_task",
    "sql_task",
    "run_job_task",
    "condition_task",
    "for_each_task",
    "spark_jar_task",
    "spark_submit_task",
    "pipeline_task",
    "dbt_task",
)
SECRET_KEYS = re.compile(r"^(host|token|password|client_secret|azure_client_secret)$")


# ---------------------------------------------------------------------------- loading


def load_bundle(root: Path) -> tuple[dict, dict[str, Path]]:
    """databricks.yml with the resources of every included file merged in, and for
    each resource ``kind.key`` the file that defines it (paths are relative to it)."""
    config = yaml.safe_load((root / "databricks.yml").read_text())
    config.setdefault("resources", {})
    origins = {f"{kind}.{key}": root / "databricks.yml" for kind, items in config["resources"].items() for key in items}
    for pattern in config.get("include", []):
        files = sorted(root.glob(pattern))
        assert files, f"include pattern {pattern!r} matches no file"
        for path in files:
            included = yaml.safe_load(path.read_text()) or {}
            for kind, items in (included.get("resources") or {}).items():
                for key, body in items.items():
                    assert f"{kind}.{key}" not in origins, f"{kind}.{key} is defined twice"
                    config["resources"].setdefault(kind, {})[key] = body
                    origins[f"{kind}.{key}"] = path
    return config, origins


def target_values(config: dict, target: str) -> dict:
    """Everything a ``${...}`` can refer to in ``target``: variables (defaults, then
    the target's overrides) and the CLI's own ``bundle.*`` / ``workspace.*`` values."""
    spec = config["targets"][target]
    values = {}
    for name, variable in (config.get("variables") or {}).items():
        if "lookup" in variable:  # resolved by the CLI against the workspace
            values[f"var.{name}"] = f"<lookup {name}>"
        elif "default" in variable:
            values[f"var.{name}"] = variable["default"]
    for name, override in (spec.get("variables") or {}).items():
        values[f"var.{name}"] = (
            override["default"] if isinstance(override, dict) and "default" in override else override
        )
    name = config["bundle"]["name"]
    root_path = (spec.get("workspace") or {}).get("root_path") or (config.get("workspace") or {}).get("root_path")
    if not root_path and spec.get("mode") == "development":
        root_path = f"/Workspace/Users/{DEV_USER}/.bundle/{name}/{target}"
    values.update(
        {
            "bundle.name": name,
            "bundle.target": target,
            "workspace.current_user.userName": DEV_USER,
            "workspace.current_user.short_name": "someone",
        }
    )
    values["workspace.root_path"] = resolve(root_path, values) if root_path else None
    values["workspace.file_path"] = f"{values['workspace.root_path']}/files"
    values["workspace.artifact_path"] = f"{values['workspace.root_path']}/artifacts"
    for key in [k for k in values if k.startswith("var.")]:  # a default may refer to another value
        values[key] = resolve(values[key], values)
    return values


def resolve(value, values: dict):
    """Substitute ``${ref}``. A string that is exactly one reference keeps the value's
    type (``num_workers: ${var.n}`` stays an int), as in the CLI."""
    if isinstance(value, dict):
        return {k: resolve(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, values) for v in value]
    if not isinstance(value, str):
        return value
    whole = REF.fullmatch(value)
    if whole and whole.group(1) in values:
        return resolve(values[whole.group(1)], values)
    return REF.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), value)


def strings(value, where: str = ""):
    """Every string in a structure, with a dotted location."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from strings(item, f"{where}[{i}]")
    elif isinstance(value, str):
        yield where, value


# ---------------------------------------------------------------------------- checking


def bundle_problems(root: Path) -> list[str]:
    config, origins = load_bundle(root)
    problems = _bundle_settings_problems(config)
    for target in TARGETS:
        values = target_values(config, target)
        resolved = resolve(copy.deepcopy(config), values)
        for where, text in strings(resolved):
            for ref in REF.findall(text):
                if ref.startswith("var.") or ref not in BUILTIN_REFS:
                    problems.append(f"[{target}] {where}: unresolved ${{{ref}}}")
        for key, job in (resolved["resources"].get("jobs") or {}).items():
            problems += [
                f"[{target}] jobs.{key}: {p}"
                for p in _job_problems(job, origins[f"jobs.{key}"].parent, root, values, resolved)
            ]
    return list(dict.fromkeys(problems))


def _bundle_settings_problems(config: dict) -> list[str]:
    problems = []
    declared = set(config.get("variables") or {})
    used = {
        ref[4:]
        for _, text in strings({k: v for k, v in config.items() if k != "variables"})
        for ref in REF.findall(text)
        if ref.startswith("var.")
    }
    problems += [f"variable {name!r} is declared but never used" for name in sorted(declared - used)]
    for name, variable in (config.get("variables") or {}).items():
        if (
            "default" not in variable
            and "lookup" not in variable
            and not all(name in (config["targets"][t].get("variables") or {}) for t in TARGETS)
        ):
            problems.append(f"variable {name!r} has no default and is not set by every target")
    for target in TARGETS:
        if target not in config.get("targets", {}):
            problems.append(f"target {target!r} is missing")
    for where, _ in strings(config):
        if SECRET_KEYS.match(where.rsplit(".", 1)[-1]):
            problems.append(f"{where}: hosts and credentials belong in the CLI profile, not the bundle")
    return problems


def _job_problems(job: dict, base: Path, root: Path, values: dict, resolved: dict) -> list[str]:
    problems = []
    try:  # the typed classes catch unknown keys, wrong types and bad enum values
        from databricks.bundles.jobs import Job

        Job.from_dict(copy.deepcopy(job))
    except (ValueError, TypeError) as exc:
        problems.append(f"not a valid job: {exc}")

    tasks = job.get("tasks") or []
    keys = [t.get("task_key") for t in tasks]
    problems += [f"task_key {k!r} is used twice" for k in {k for k in keys if keys.count(k) > 1}]
    clusters = {c["job_cluster_key"]: c.get("new_cluster", {}) for c in job.get("job_clusters") or []}
    parameters = {p["name"] for p in job.get("parameters") or []}
    for task in tasks:
        where = f"task {task.get('task_key')}"
        for dependency in task.get("depends_on") or []:
            if dependency.get("task_key") not in keys:
                problems.append(f"{where}: depends on unknown task {dependency.get('task_key')!r}")
        if task.get("job_cluster_key") and task["job_cluster_key"] not in clusters:
            problems.append(f"{where}: unknown job_cluster_key {task['job_cluster_key']!r}")
        types = [t for t in TASK_TYPES if t in task]
        if len(types) != 1:
            problems.append(f"{where}: needs exactly one task type (has {types or 'none'})")
        for _, text in strings(task):
            problems += [
                f"{where}: {{{{job.parameters.{name}}}}} is not a job parameter"
                for name in JOB_PARAM_REF.findall(text)
                if name not in parameters
            ]
        problems += _task_value_problems(task, where, tasks, base)
        problems += _task_file_problems(task, where, base, root, job)
    problems += _cycle_problems(tasks)
    used = {t.get("job_cluster_key") for t in tasks}
    problems += [f"job cluster {k!r} is not used by any task" for k in clusters if k not in used]
    for key, cluster in clusters.items():
        problems += [f"job cluster {key!r}: {p}" for p in _single_node_problems(cluster)]
    # Workspace paths the job hands to its scripts (e.g. the pipeline YAML) must exist here.
    problems += _workspace_file_problems(job, values, root)
    problems += _artifact_problems(job, base, root, resolved)
    return problems


def _task_value_problems(task: dict, where: str, tasks: list[dict], base: Path) -> list[str]:
    """A ``{{tasks.T.values.V}}`` reference must name a task upstream of this one whose
    script sets the value ``V`` (``set_task_value("V", ...)``); else the run fails late."""
    by_key = {t.get("task_key"): t for t in tasks}
    upstream, frontier = set(), [d.get("task_key") for d in task.get("depends_on") or []]
    while frontier:
        key = frontier.pop()
        if key in by_key and key not in upstream:
            upstream.add(key)
            frontier += [d.get("task_key") for d in by_key[key].get("depends_on") or []]
    problems = []
    for _, text in strings(task):
        for producer, name in TASK_VALUE_REF.findall(text):
            ref = f"{{{{tasks.{producer}.values.{name}}}}}"
            if producer not in by_key:
                problems.append(f"{where}: {ref} names an unknown task {producer!r}")
            elif producer not in upstream:
                problems.append(f"{where}: {ref}: task {producer!r} is not upstream (add it to depends_on)")
            else:
                script = (by_key[producer].get("spark_python_task") or {}).get("python_file")
                path = (base / script).resolve() if script else None
                if path is None or not path.is_file() or f'set_task_value("{name}"' not in path.read_text():
                    problems.append(f"{where}: {ref}: task {producer!r} never sets the task value {name!r}")
    return problems


def _task_file_problems(task: dict, where: str, base: Path, root: Path, job: dict) -> list[str]:
    problems = []
    python_file = (task.get("spark_python_task") or {}).get("python_file")
    if python_file:
        path = (base / python_file).resolve()
        if not path.is_file():
            problems.append(f"{where}: python_file {python_file} does not exist ({_relative(path, root)})")
        else:
            problems += [
                f"{where}: {_relative(path, root)} does not accept {flag}"
                for flag in _flags(task["spark_python_task"].get("parameters") or [])
                if flag not in _declared_flags(path)
            ]
    notebook = (task.get("notebook_task") or {}).get("notebook_path")
    if notebook and not notebook.startswith("/"):
        path = (base / notebook).resolve()
        if not any(p.is_file() for p in (path, *(path.with_suffix(s) for s in (".py", ".ipynb", ".sql")))):
            problems.append(f"{where}: notebook_path {notebook} does not exist ({_relative(path, root)})")
    wheel_task = task.get("python_wheel_task")
    if wheel_task:
        scripts = _project_scripts(root)
        if wheel_task.get("entry_point") not in scripts:
            problems.append(
                f"{where}: entry_point {wheel_task.get('entry_point')!r} is not in"
                f" [project.scripts] ({', '.join(scripts) or 'none'})"
            )
    return problems


def _workspace_file_problems(job: dict, values: dict, root: Path) -> list[str]:
    problems = []
    prefix = values["workspace.file_path"] + "/"
    for where, text in strings(job):
        if not text.startswith(prefix):
            continue
        path = root / text[len(prefix) :]
        if not path.is_file():
            problems.append(f"{where}: {text[len(prefix) :]} does not exist in the bundle")
        elif path.suffix in (".yaml", ".yml") and path.parent.name == "pipelines":
            from lakefine.core.config import load_config
            from lakefine.core.errors import ConfigError

            try:
                load_config(path)
            except ConfigError as exc:
                problems.append(f"{where}: {exc}")
    return problems


def _artifact_problems(job: dict, base: Path, root: Path, resolved: dict) -> list[str]:
    """A ``whl`` library from the bundle must be what a whl artifact builds into dist/."""
    built = {
        (root / a.get("path", ".")).resolve() / "dist"
        for a in (resolved.get("artifacts") or {}).values()
        if a.get("type") == "whl" and a.get("build")
    }
    problems = []
    for task in job.get("tasks") or []:
        for library in task.get("libraries") or []:
            wheel = library.get("whl")
            if wheel and not wheel.startswith(("/", "dbfs:")) and (base / wheel).resolve().parent not in built:
                problems.append(f"task {task.get('task_key')}: library {wheel} is not built by any whl artifact")
    return problems


def _single_node_problems(cluster: dict) -> list[str]:
    """Databricks' single-node recipe is all three settings with zero workers, or none."""
    conf, tags = cluster.get("spark_conf") or {}, cluster.get("custom_tags") or {}
    markers = [
        conf.get("spark.databricks.cluster.profile") == "singleNode",
        str(conf.get("spark.master", "")).startswith("local["),
        tags.get("ResourceClass") == "SingleNode",
    ]
    workers = cluster.get("num_workers")
    if any(markers) and not all(markers):
        return [
            "single node needs spark.databricks.cluster.profile=singleNode, spark.master=local[...]"
            " and custom tag ResourceClass=SingleNode together"
        ]
    if all(markers) and workers not in (0, None):
        return [f"single-node settings with num_workers={workers}: use 0, or drop the single-node settings"]
    if not any(markers) and workers == 0 and "autoscale" not in cluster:
        return ["num_workers=0 without the single-node settings gives a driver with no executors"]
    return []


def _cycle_problems(tasks: list[dict]) -> list[str]:
    graph = {t.get("task_key"): [d.get("task_key") for d in t.get("depends_on") or []] for t in tasks}
    done, active = set(), set()

    def visit(key) -> bool:
        if key in active:
            return True
        if key in done or key not in graph:
            return False
        active.add(key)
        cyclic = any(visit(d) for d in graph[key])
        active.discard(key)
        done.add(key)
        return cyclic

    return ["tasks depend on each other in a cycle"] if any(visit(k) for k in graph) else []


def _flags(parameters: list[str]) -> list[str]:
    return [p.split("=", 1)[0] for p in parameters if isinstance(p, str) and p.startswith("--")]


def _declared_flags(script: Path, seen: set[Path] | None = None) -> set[str]:
    """``--flags`` declared with argparse's add_argument in a script, in the sibling
    modules it imports, or in the lakefine modules it imports (the job scripts share
    the parser in lakefine.ops.jobs). Read, never imported."""
    seen = seen if seen is not None else set()
    seen.add(script)
    flags = {"--help"}
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            flags |= {a.value for a in node.args if isinstance(a, ast.Constant) and str(a.value).startswith("--")}
        modules = (
            [node.module]
            if isinstance(node, ast.ImportFrom) and node.module and not node.level
            else [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else []
        )
        for module in modules:
            sibling = script.parent / f"{module}.py"
            if module.startswith("lakefine."):  # <bundle root>/src/lakefine/...
                sibling = script.parents[2] / "src" / (module.replace(".", "/") + ".py")
            if sibling.is_file() and sibling not in seen:
                flags |= _declared_flags(sibling, seen)
    return flags


def _project_scripts(root: Path) -> list[str]:
    import tomllib

    pyproject = root / "pyproject.toml"
    return (
        list(tomllib.loads(pyproject.read_text()).get("project", {}).get("scripts", {})) if pyproject.is_file() else []
    )


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.resolve()))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------- the tests


def test_the_bundle_has_no_problems_in_any_target():
    assert bundle_problems(REPO) == []


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(REPO)[0]


@pytest.mark.parametrize("target", TARGETS)
def test_every_variable_resolves(bundle, target):
    resolved = resolve(copy.deepcopy(bundle), target_values(bundle, target))
    assert [text for _, text in strings(resolved) if "${var." in text] == []


def test_targets_dev_is_the_default_development_target_and_prod_is_shared(bundle):
    dev, prod = bundle["targets"]["dev"], bundle["targets"]["prod"]
    assert dev["mode"] == "development" and dev["default"] is True
    assert "root_path" not in (dev.get("workspace") or {})  # the per-user default path
    assert prod["mode"] == "production"
    root_path = target_values(bundle, "prod")["workspace.root_path"]
    assert root_path.startswith("/Workspace/Shared/") and root_path.endswith("/lakefine/prod")


def test_the_wheel_is_built_from_pyproject(bundle):
    (artifact,) = bundle["artifacts"].values()
    assert artifact["type"] == "whl" and artifact["path"] == "."
    assert artifact["build"] in ("python -m build --wheel", "uv build --wheel")
    assert (REPO / artifact["path"] / "pyproject.toml").is_file()


@pytest.mark.parametrize("target", TARGETS)
def test_the_job_runs_prepare_then_finetune_on_a_single_gpu_node_then_evaluate(bundle, target):
    job = resolve(copy.deepcopy(bundle), target_values(bundle, target))["resources"]["jobs"]["lakefine"]
    tasks = {t["task_key"]: t for t in job["tasks"]}
    assert [d["task_key"] for d in tasks["finetune"]["depends_on"]] == ["prepare"]
    assert [d["task_key"] for d in tasks["evaluate"]["depends_on"]] == ["finetune"]
    clusters = {c["job_cluster_key"]: c["new_cluster"] for c in job["job_clusters"]}
    gpu = clusters[tasks["finetune"]["job_cluster_key"]]
    assert "gpu-ml" in gpu["spark_version"]
    assert gpu["node_type_id"] == bundle["variables"]["gpu_node_type"]["default"]
    assert gpu["num_workers"] == 0 and gpu["spark_conf"]["spark.master"] == "local[*, 4]"
    assert gpu["custom_tags"]["ResourceClass"] == "SingleNode"
    assert "gpu" not in clusters[tasks["prepare"]["job_cluster_key"]]["spark_version"]
    finetune = tasks["finetune"]
    assert (finetune["max_retries"], finetune["min_retry_interval_millis"], finetune["retry_on_timeout"]) == (
        2,
        60000,
        True,
    )
    assert finetune["timeout_seconds"] > 0
    for task in tasks.values():
        assert task["spark_python_task"]["python_file"] == f"../pipelines/jobs/{task['task_key']}.py"
        assert {"--pipeline", "--catalog", "--schema", "--volume", "--registered-model"} <= set(
            task["spark_python_task"]["parameters"]
        )
        assert task["libraries"] == [{"whl": "../dist/*.whl"}]


# --- the checker itself: a broken copy of the bundle must be reported, precisely


@pytest.fixture
def bundle_copy(tmp_path) -> Path:
    for name in ("databricks.yml", "pyproject.toml"):
        shutil.copy(REPO / name, tmp_path / name)
    for name in ("resources", "pipelines", "notebooks", "src"):
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, tmp_path / name)
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_a_missing_task_script_is_reported(bundle_copy):
    _edit(bundle_copy / "resources/lakefine_job.yml", "../pipelines/jobs/finetune.py", "../pipelines/jobs/fine_tune.py")
    problems = bundle_problems(bundle_copy)
    assert (
        "[dev] jobs.lakefine: task finetune: python_file ../pipelines/jobs/fine_tune.py does not exist"
        " (pipelines/jobs/fine_tune.py)" in problems
    )


def test_a_missing_pipeline_yaml_is_reported(bundle_copy):
    _edit(
        bundle_copy / "databricks.yml",
        "default: pipelines/rotten_tomatoes.yaml",
        "default: pipelines/rotten_tomatos.yaml",
    )
    problems = bundle_problems(bundle_copy)
    assert (
        "[dev] jobs.lakefine: parameters[0].default: pipelines/rotten_tomatos.yaml does not exist"
        " in the bundle" in problems
    )


def test_a_missing_job_script_everywhere_is_reported(bundle_copy):
    shutil.rmtree(bundle_copy / "pipelines" / "jobs", ignore_errors=True)
    problems = bundle_problems(bundle_copy)
    assert any("task prepare: python_file ../pipelines/jobs/prepare.py does not exist" in p for p in problems)


def test_a_flag_the_script_does_not_accept_is_reported(bundle_copy):
    _edit(bundle_copy / "resources/lakefine_job.yml", "- --volume", "- --volumes")
    problems = bundle_problems(bundle_copy)
    assert "[dev] jobs.lakefine: task prepare: pipelines/jobs/prepare.py does not accept --volumes" in problems


def test_an_unknown_key_is_reported_by_the_typed_classes(bundle_copy):
    _edit(bundle_copy / "resources/lakefine_job.yml", "max_retries: 2", "max_retry: 2")
    problems = bundle_problems(bundle_copy)
    assert any("Unexpected field 'max_retry' for class Task" in p for p in problems), problems


def test_a_task_value_must_come_from_an_upstream_task_that_sets_it(bundle_copy):
    assert not bundle_problems(bundle_copy)
    _edit(
        bundle_copy / "resources/lakefine_job.yml",
        "{{tasks.prepare.values.dataset}}",
        "{{tasks.prepare.values.datset}}",
    )
    problems = bundle_problems(bundle_copy)
    assert any(
        "{{tasks.prepare.values.datset}}: task 'prepare' never sets the task value 'datset'" in p for p in problems
    )
    _edit(
        bundle_copy / "resources/lakefine_job.yml",
        "{{tasks.prepare.values.datset}}",
        "{{tasks.evaluate.values.dataset}}",
    )
    problems = bundle_problems(bundle_copy)
    assert any("task 'evaluate' is not upstream" in p for p in problems), problems


def test_an_undeclared_variable_is_reported(bundle_copy):
    _edit(bundle_copy / "resources/lakefine_job.yml", "${var.gpu_node_type}", "${var.gpu_node}")
    problems = bundle_problems(bundle_copy)
    assert any("unresolved ${var.gpu_node}" in p for p in problems), problems
    assert "variable 'gpu_node_type' is declared but never used" in problems


def test_workers_on_a_single_node_cluster_are_reported(bundle_copy):
    _edit(bundle_copy / "databricks.yml", "schema: lakefine_dev", "schema: lakefine_dev\n      num_gpu_workers: 2")
    problems = bundle_problems(bundle_copy)
    assert (
        "[dev] jobs.lakefine: job cluster 'gpu': single-node settings with num_workers=2: use 0,"
        " or drop the single-node settings" in problems
    )
    assert not any(p.startswith("[prod]") and "num_workers=2" in p for p in problems)


@pytest.mark.parametrize("target", TARGETS)
def test_the_score_job_has_its_own_cluster_and_schedule(bundle, target):
    jobs = resolve(copy.deepcopy(bundle), target_values(bundle, target))["resources"]["jobs"]
    score = jobs["score"]
    (task,) = score["tasks"]
    assert task["spark_python_task"]["python_file"] == "../pipelines/jobs/score.py"
    assert "depends_on" not in task and task["libraries"] == [{"whl": "../dist/*.whl"}]
    (cluster,) = score["job_clusters"]
    assert task["job_cluster_key"] == cluster["job_cluster_key"]
    assert cluster["new_cluster"]["num_workers"] == bundle["variables"]["num_score_workers"]["default"] > 0
    assert "gpu" not in cluster["new_cluster"]["spark_version"]
    assert score["schedule"]["quartz_cron_expression"] and score["schedule"]["pause_status"] == "PAUSED"
    flags = set(task["spark_python_task"]["parameters"])
    assert {"--pipeline", "--input-table", "--output-table", "--model", "--incremental"} <= flags
    output = next(p for p in score["parameters"] if p["name"] == "output_table")["default"]
    assert output.count(".") == 2  # catalog.schema.table


def test_the_score_job_script_reads_empty_parameters_as_defaults():
    import runpy

    from lakefine.ops.jobs import parse

    script = runpy.run_path(str(REPO / "pipelines/jobs/score.py"))
    argv = ["--pipeline", str(REPO / "pipelines/smoke.yaml"), "--input-table", "", "--model", ""]
    config, args = parse(
        [*argv, "--output-table", "main.lakefine.scores", "--incremental", "true"], script["arguments"]
    )
    assert (args.input_table, args.model, args.output_table, args.incremental) == (
        "",
        "",
        "main.lakefine.scores",
        "true",
    )
    assert config.name == "smoke"
