"""Unity Catalog preflight: check, before any Spark or GPU work starts, that the
principal running the pipeline holds every privilege the pipeline needs, and say
exactly which ``GRANT`` statements fix what is missing.

The check reads *effective* permissions, which already include privileges
inherited from the catalog or schema, so a grant on a parent counts. Local mode
never talks to a workspace: :func:`preflight` is a no-op there unless the caller
hands it a client.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

from lakefine.core.config import PipelineConfig
from lakefine.core.errors import ConfigError, PrivilegeError
from lakefine.core.log import first_line
from lakefine.core.paths import parse_volume_path
from lakefine.core.session import on_databricks

if TYPE_CHECKING:  # the SDK is only imported when a check really runs (it is slow to import)
    from databricks.sdk import WorkspaceClient

# Values of databricks.sdk.service.catalog.SecurableType / Privilege. Plain strings keep
# this module importable (and required_privileges usable) without the SDK.
CATALOG, SCHEMA, TABLE, VOLUME = "CATALOG", "SCHEMA", "TABLE", "VOLUME"
ALL_PRIVILEGES = "ALL_PRIVILEGES"

_NAME_PART = re.compile(r"`(?:[^`]|``)+`|[^.`]+")
_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Requirement(NamedTuple):
    """One privilege on one securable: ``("VOLUME", "main.lakefine.prep", "READ_VOLUME")``."""

    securable_type: str
    full_name: str
    privilege: str

    def grant_statement(self, principal: str) -> str:
        privilege = self.privilege.replace("_", " ")
        return f"GRANT {privilege} ON {self.securable_type} {self.full_name} TO `{principal}`;"


# ---------------------------------------------------------------------------- what is needed


def required_privileges(config: PipelineConfig) -> list[Requirement]:
    """Every privilege the pipeline uses, parents first, without duplicates.

    Each object also needs USE CATALOG / USE SCHEMA on its parents: SELECT on a table
    is useless without them, so they are listed too.
    """
    needed: list[Requirement] = []

    def add(securable_type: str, parts: list[str], privilege: str) -> None:
        # Names are kept in quoted form (`my-schema`): unambiguous, and valid SQL as printed.
        quoted = [quote_part(p) for p in parts]
        needed.append(Requirement(CATALOG, quoted[0], "USE_CATALOG"))
        if len(quoted) >= 2:
            needed.append(Requirement(SCHEMA, ".".join(quoted[:2]), "USE_SCHEMA"))
        needed.append(Requirement(securable_type, ".".join(quoted), privilege))

    # The working volume holds prepared datasets, checkpoints and models: read and write.
    work_volume = volume_parts(config.runtime.volume, "runtime.volume")
    add(VOLUME, work_volume, "READ_VOLUME")
    add(VOLUME, work_volume, "WRITE_VOLUME")

    source = config.source
    named_tables = [("source.table", source.table)] if source.table else []
    named_tables += [(f"source.tables.{key}", table) for key, table in source.tables.items()]
    for key, table in named_tables:
        parts = split_name(str(table))
        if len(parts) != 3:
            raise ConfigError(f"{key}: {table!r} is not a three-part name catalog.schema.table")
        add(TABLE, parts, "SELECT")
    if source.path:
        add(VOLUME, volume_parts(source.path, "source.path"), "READ_VOLUME")

    if config.tracking.register:
        model = split_name(config.registered_model_name)
        # Unity Catalog models are catalog.schema.model; a shorter name is taken to be
        # qualified with the working volume's schema.
        add(SCHEMA, model[:2] if len(model) == 3 else work_volume[:2], "CREATE_MODEL")

    return list(dict.fromkeys(needed))


def volume_parts(path: str, key: str) -> list[str]:
    """``/Volumes/<catalog>/<schema>/<volume>/...`` -> ``[catalog, schema, volume]``."""
    volume = parse_volume_path(path, key)
    return [volume.catalog, volume.schema, volume.volume]


def split_name(full_name: str) -> list[str]:
    """Split a dotted UC name, keeping backtick-quoted parts whole (``a.`b.c`.d``)."""
    return [p[1:-1].replace("``", "`") if p.startswith("`") else p for p in _NAME_PART.findall(full_name)]


def quote_part(part: str) -> str:
    """Backtick a name part unless it is a plain identifier, so a GRANT runs as printed."""
    return part if _PLAIN_IDENTIFIER.fullmatch(part) else "`" + part.replace("`", "``") + "`"


# ---------------------------------------------------------------------------- checking


def check_privileges(client: WorkspaceClient, config: PipelineConfig, principal: str | None = None) -> None:
    """Raise :class:`PrivilegeError` listing every missing privilege with its GRANT.

    ``principal`` defaults to the caller (``current_user.me().user_name``; for a service
    principal that is its application id, which is also what GRANT expects).
    """
    principal = principal or client.current_user.me().user_name
    required = required_privileges(config)

    by_securable: dict[tuple[str, str], list[Requirement]] = {}
    for requirement in required:
        by_securable.setdefault((requirement.securable_type, requirement.full_name), []).append(requirement)

    missing: list[Requirement] = []
    problems: dict[tuple[str, str], str] = {}
    for securable, requirements in by_securable.items():
        held, problem = _effective_privileges(client, *securable, principal)
        if problem:
            problems[securable] = problem
        # ALL_PRIVILEGES (granted here or inherited from the catalog/schema) covers everything.
        missing += [r for r in requirements if not {ALL_PRIVILEGES, r.privilege} & held]

    if missing:
        raise PrivilegeError(_missing_message(principal, missing, problems))


def _effective_privileges(
    client: WorkspaceClient, securable_type: str, full_name: str, principal: str
) -> tuple[set[str], str | None]:
    """Privileges ``principal`` holds on a securable, directly or inherited from its
    catalog/schema (the effective API reports both; ``inherited_from_*`` only says where
    a privilege comes from, so every entry counts). Returns (privileges, problem)."""
    from databricks.sdk.errors import NotFound, PermissionDenied  # the SDK only when a check runs

    held: set[str] = set()
    page_token = None
    while True:
        try:
            # max_results=0 selects the paginated API (the unpaginated one is being retired).
            # The REST path takes the unquoted dotted name.
            page = client.grants.get_effective(
                securable_type,
                ".".join(split_name(full_name)),
                principal=principal,
                max_results=0,
                page_token=page_token,
            )
        except NotFound as exc:
            problem = f"does not exist or is not visible ({first_line(exc)})"
            if securable_type in (SCHEMA, VOLUME):  # containers the pipeline writes into
                problem += f"; create it first: CREATE {securable_type} IF NOT EXISTS {full_name};"
            return set(), problem
        except PermissionDenied as exc:
            # Usually a parent's USE privilege is missing (the server says which): count
            # the privileges as missing and show the server's reason next to them.
            return set(), f"permissions could not be read ({first_line(exc)})"
        # The request is filtered by principal; any assignment returned (the user or a
        # group the server resolved for them) conveys its privileges.
        for assignment in page.privilege_assignments or []:
            for effective in assignment.privileges or []:
                if effective.privilege is not None:
                    held.add(getattr(effective.privilege, "value", str(effective.privilege)))
        page_token = page.next_page_token
        if not page_token:
            return held, None


def _missing_message(principal: str, missing: list[Requirement], problems: dict) -> str:
    lines = [
        f"`{principal}` is missing {len(missing)} Unity Catalog privilege"
        f"{'s' if len(missing) > 1 else ''}; run these as the owner of the objects"
        " (or a metastore admin), then rerun:"
    ]
    for securable in dict.fromkeys((r.securable_type, r.full_name) for r in missing):
        if securable in problems:
            lines.append(f"  -- {securable[0]} {securable[1]}: {problems[securable]}")
        lines += [f"  {r.grant_statement(principal)}" for r in missing if (r.securable_type, r.full_name) == securable]
    lines.append(
        "If the access comes through a group or object ownership that this check cannot"
        " see, pass principal=<group> or skip the preflight."
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------- entry point


def preflight(config: PipelineConfig, client: WorkspaceClient | None = None, principal: str | None = None) -> str:
    """Check privileges on Databricks (or against ``client``); a no-op locally.

    Local mode must not build a ``WorkspaceClient``: with no host configured it would
    probe for credentials and may hang contacting a host that does not exist.
    """
    if client is None:
        if not on_databricks():
            return "skipped: local mode"
        from databricks.sdk import WorkspaceClient  # slow to import; only on Databricks

        client = WorkspaceClient()  # notebook / job credentials of the runtime
    check_privileges(client, config, principal=principal)
    return "ok: all Unity Catalog privileges present"
