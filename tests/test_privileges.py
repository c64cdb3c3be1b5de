"""Unity Catalog preflight against a real HTTP server that speaks the REST paths the
Databricks SDK calls, with payloads built from the SDK's own response classes.

The server models grants the way Unity Catalog reports them: the effective
permissions of a securable are its own grants plus those of its catalog and schema,
marked with ``inherited_from_*``.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from databricks.sdk import WorkspaceClient
from databricks.sdk.core import Config
from databricks.sdk.service.catalog import (
    EffectivePermissionsList,
    EffectivePrivilege,
    EffectivePrivilegeAssignment,
    Privilege,
    SecurableType,
)

from lakefine.core.config import config_from_dict
from lakefine.core.errors import PrivilegeError
from lakefine.ops.privileges import Requirement, check_privileges, preflight, required_privileges

pytestmark = pytest.mark.timeout(30)

USER = "ana@example.com"
WORKSPACE_ID = "1234567890"

CONFIG = config_from_dict(
    {
        "name": "reviews",
        "source": {"table": "main.raw.reviews"},
        "runtime": {"volume": "/Volumes/main/lakefine/prep"},
        "tracking": {"registered_model": "ml.models.reviews"},
    }
)

EVERYTHING = {
    ("CATALOG", "main"): ["USE_CATALOG"],
    ("SCHEMA", "main.lakefine"): ["USE_SCHEMA"],
    ("VOLUME", "main.lakefine.prep"): ["READ_VOLUME", "WRITE_VOLUME"],
    ("SCHEMA", "main.raw"): ["USE_SCHEMA"],
    ("TABLE", "main.raw.reviews"): ["SELECT"],
    ("CATALOG", "ml"): ["USE_CATALOG"],
    ("SCHEMA", "ml.models"): ["USE_SCHEMA", "CREATE_MODEL"],
}


def R(securable_type: str, full_name: str, privilege: str) -> Requirement:
    return Requirement(securable_type, full_name, privilege)


# ---------------------------------------------------------------------------- fake workspace


class FakeWorkspace(ThreadingHTTPServer):
    """Grants are ``{(securable_type, full_name): {principal: [privilege, ...]}}``."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.grants: dict[tuple[str, str], dict[str, list[str]]] = {}
        self.existing: set[tuple[str, str]] | None = None  # None: every securable exists
        self.denied: set[tuple[str, str]] = set()  # securables whose permissions are unreadable
        self.echo_credentials = False  # a 403 that quotes the request's Authorization header
        self.requests: list[tuple[str, dict, dict]] = []  # (path, query, headers)

    @property
    def host(self) -> str:
        return f"http://127.0.0.1:{self.server_port}"

    def grant(self, principal: str, grants: dict[tuple[str, str], list[str]]) -> None:
        for securable, privileges in grants.items():
            self.grants.setdefault(securable, {}).setdefault(principal, []).extend(privileges)

    def effective(self, securable_type: str, full_name: str, principal: str | None) -> EffectivePermissionsList:
        parts = full_name.split(".")
        own = [(securable_type, full_name, None)]
        parents = [("CATALOG", parts[0]), ("SCHEMA", ".".join(parts[:2]))][: len(parts) - 1]
        sources = own + [(t, n, (t, n)) for t, n in parents]
        by_principal: dict[str, list[EffectivePrivilege]] = {}
        for source_type, source_name, inherited in sources:
            for who, privileges in self.grants.get((source_type, source_name), {}).items():
                if principal and who != principal:
                    continue
                by_principal.setdefault(who, []).extend(
                    EffectivePrivilege(
                        privilege=Privilege(p),
                        inherited_from_type=SecurableType(inherited[0]) if inherited else None,
                        inherited_from_name=inherited[1] if inherited else None,
                    )
                    for p in privileges
                )
        return EffectivePermissionsList(
            privilege_assignments=[
                EffectivePrivilegeAssignment(principal=who, privileges=privileges)
                for who, privileges in by_principal.items()
            ]
        )


class _Handler(BaseHTTPRequestHandler):
    server: FakeWorkspace

    def do_GET(self):  # noqa: N802 (http.server naming)
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        self.server.requests.append((url.path, query, dict(self.headers)))
        path = urllib.parse.unquote(url.path)
        prefix = "/api/2.1/unity-catalog/effective-permissions/"
        if path == "/.well-known/databricks-config":
            # Host metadata discovery, done by the SDK when the client is built.
            self._reply(200, {"oidc_endpoint": f"{self.server.host}/oidc", "workspace_id": WORKSPACE_ID})
        elif path == "/api/2.0/preview/scim/v2/Me":
            self._reply(200, {"id": "42", "userName": USER, "active": True})
        elif path.startswith(prefix):
            self._effective_permissions(path[len(prefix) :], query)
        else:  # a 404 is final for the SDK: no retries
            self._reply(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"no endpoint {path}"})

    def _effective_permissions(self, rest: str, query: dict) -> None:
        securable_type, _, full_name = rest.partition("/")
        existing = self.server.existing
        if existing is not None and (securable_type, full_name) not in existing:
            self._reply(
                404, {"error_code": "NOT_FOUND", "message": f"{securable_type.title()} '{full_name}' does not exist."}
            )
            return
        if (securable_type, full_name) in self.server.denied:
            self._reply(
                403,
                {
                    "error_code": "PERMISSION_DENIED",
                    "message": f"User does not have USE CATALOG on Catalog '{full_name.split('.')[0]}'."
                    + (
                        f" (request: Authorization: {self.headers.get('Authorization')})"
                        if self.server.echo_credentials
                        else ""
                    ),
                },
            )
            return
        # Paginated like the real API: an empty first page that only carries a token.
        if "max_results" in query and query.get("page_token") != "page-2":
            self._reply(200, EffectivePermissionsList(next_page_token="page-2").as_dict())
            return
        payload = self.server.effective(securable_type, full_name, query.get("principal"))
        self._reply(200, payload.as_dict())

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def workspace(monkeypatch):
    # Only the explicit host and token below may configure the client.
    for name in [n for n in os.environ if n.startswith(("DATABRICKS_", "ARM_", "AZURE_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", "/nonexistent/.databrickscfg")
    server = FakeWorkspace()
    # A short poll interval: shutdown() waits up to one interval.
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def client_for(server: FakeWorkspace) -> WorkspaceClient:
    # Low timeouts: a mistake in the fake must fail in seconds, not after SDK retries.
    return WorkspaceClient(
        config=Config(host=server.host, token="dapi-test-0000", retry_timeout_seconds=5, http_timeout_seconds=5)
    )


def missing_from(error: PrivilegeError) -> set[str]:
    return {line.strip() for line in str(error).splitlines() if line.strip().startswith("GRANT ")}


def grants(*requirements: Requirement, principal: str = USER) -> set[str]:
    return {r.grant_statement(principal) for r in requirements}


# ---------------------------------------------------------------------------- requirements


def test_required_privileges_cover_parents_volume_table_and_model_schema():
    assert required_privileges(CONFIG) == [
        R("CATALOG", "main", "USE_CATALOG"),
        R("SCHEMA", "main.lakefine", "USE_SCHEMA"),
        R("VOLUME", "main.lakefine.prep", "READ_VOLUME"),
        R("VOLUME", "main.lakefine.prep", "WRITE_VOLUME"),
        R("SCHEMA", "main.raw", "USE_SCHEMA"),
        R("TABLE", "main.raw.reviews", "SELECT"),
        R("CATALOG", "ml", "USE_CATALOG"),
        R("SCHEMA", "ml.models", "USE_SCHEMA"),
        R("SCHEMA", "ml.models", "CREATE_MODEL"),
    ]


def test_required_privileges_for_sql_tables_source_path_and_short_model_name():
    config = config_from_dict(
        {
            "name": "pairs",
            "source": {
                "sql": "SELECT * FROM {a} JOIN {b} USING (id)",
                "tables": {"a": "main.raw.a", "b": "`other-cat`.s.b"},
            },
            "runtime": {"volume": "/Volumes/main/lakefine/prep/sub"},
        }
    )
    needed = required_privileges(config)
    assert R("TABLE", "main.raw.a", "SELECT") in needed
    assert R("CATALOG", "`other-cat`", "USE_CATALOG") in needed
    assert R("TABLE", "`other-cat`.s.b", "SELECT") in needed
    # one-part model name: registered next to the working volume
    assert R("SCHEMA", "main.lakefine", "CREATE_MODEL") in needed

    files = config_from_dict(
        {"name": "files", "source": {"path": "/Volumes/lake/raw/drop/x.csv"}, "tracking": {"register": False}}
    )
    assert R("VOLUME", "lake.raw.drop", "READ_VOLUME") in required_privileges(files)
    assert not [r for r in required_privileges(files) if r.privilege == "CREATE_MODEL"]


def test_grant_statement_is_runnable_sql():
    assert R("VOLUME", "main.`my-schema`.prep", "WRITE_VOLUME").grant_statement("ana@example.com") == (
        "GRANT WRITE VOLUME ON VOLUME main.`my-schema`.prep TO `ana@example.com`;"
    )


# ---------------------------------------------------------------------------- against the server


def test_everything_granted_directly_passes(workspace):
    workspace.grant(USER, EVERYTHING)
    check_privileges(client_for(workspace), CONFIG)  # no error
    effective_calls = [(p, q) for p, q, _ in workspace.requests if "effective-permissions" in p]
    # one securable per call, filtered on the caller, through the paginated API
    assert len({p for p, _ in effective_calls}) == len(EVERYTHING)
    assert all(q["principal"] == USER and q["max_results"] == "0" for _, q in effective_calls)
    # the workspace id learnt from host metadata is sent along
    assert all(
        h.get("X-Databricks-Workspace-Id") == WORKSPACE_ID
        for p, _, h in workspace.requests
        if "effective-permissions" in p
    )


def test_privileges_inherited_from_catalog_and_schema_count(workspace):
    workspace.grant(
        USER,
        {
            # READ/WRITE VOLUME on the catalog, SELECT on the schema: inherited below
            ("CATALOG", "main"): ["USE_CATALOG", "USE_SCHEMA", "READ_VOLUME", "WRITE_VOLUME"],
            ("SCHEMA", "main.raw"): ["SELECT"],
            ("CATALOG", "ml"): ["USE_CATALOG", "USE_SCHEMA", "CREATE_MODEL"],
        },
    )
    check_privileges(client_for(workspace), CONFIG)


def test_all_privileges_on_the_catalog_covers_everything_in_it(workspace):
    workspace.grant(USER, {("CATALOG", "main"): ["ALL_PRIVILEGES"], ("CATALOG", "ml"): ["ALL_PRIVILEGES"]})
    check_privileges(client_for(workspace), CONFIG)


def test_every_missing_privilege_is_named_with_its_grant(workspace):
    workspace.grant(
        USER,
        {
            ("CATALOG", "main"): ["USE_CATALOG"],
            ("SCHEMA", "main.lakefine"): ["USE_SCHEMA"],
            ("VOLUME", "main.lakefine.prep"): ["READ_VOLUME"],  # no WRITE_VOLUME
            ("SCHEMA", "main.raw"): ["USE_SCHEMA"],  # no SELECT
            ("CATALOG", "ml"): ["USE_CATALOG"],
            ("SCHEMA", "ml.models"): ["USE_SCHEMA"],  # no CREATE_MODEL
        },
    )
    # someone else's grants must not count for the caller
    workspace.grant("bob@example.com", {("TABLE", "main.raw.reviews"): ["SELECT"]})
    with pytest.raises(PrivilegeError) as caught:
        check_privileges(client_for(workspace), CONFIG)
    assert missing_from(caught.value) == {
        "GRANT WRITE VOLUME ON VOLUME main.lakefine.prep TO `ana@example.com`;",
        "GRANT SELECT ON TABLE main.raw.reviews TO `ana@example.com`;",
        "GRANT CREATE MODEL ON SCHEMA ml.models TO `ana@example.com`;",
    }
    assert "missing 3 Unity Catalog privileges" in str(caught.value)


def test_explicit_principal_is_checked_and_named(workspace):
    workspace.grant("ml-engineers", EVERYTHING)
    check_privileges(client_for(workspace), CONFIG, principal="ml-engineers")
    with pytest.raises(PrivilegeError) as caught:
        check_privileges(client_for(workspace), CONFIG, principal="analysts")
    assert missing_from(caught.value) == grants(*required_privileges(CONFIG), principal="analysts")


def test_a_missing_volume_is_reported_with_the_server_message(workspace):
    workspace.grant(USER, EVERYTHING)
    workspace.existing = set(EVERYTHING) - {("VOLUME", "main.lakefine.prep")}
    with pytest.raises(PrivilegeError) as caught:
        check_privileges(client_for(workspace), CONFIG)
    assert missing_from(caught.value) == grants(
        R("VOLUME", "main.lakefine.prep", "READ_VOLUME"), R("VOLUME", "main.lakefine.prep", "WRITE_VOLUME")
    )
    assert "does not exist" in str(caught.value)
    assert "CREATE VOLUME IF NOT EXISTS main.lakefine.prep;" in str(caught.value)


def test_unreadable_permissions_count_as_missing_and_say_why(workspace):
    everything_but_ml = {k: v for k, v in EVERYTHING.items() if k[1].split(".")[0] != "ml"}
    workspace.grant(USER, everything_but_ml)
    workspace.denied = {("SCHEMA", "ml.models")}
    with pytest.raises(PrivilegeError) as caught:
        check_privileges(client_for(workspace), CONFIG)
    assert missing_from(caught.value) == grants(
        R("CATALOG", "ml", "USE_CATALOG"),
        R("SCHEMA", "ml.models", "USE_SCHEMA"),
        R("SCHEMA", "ml.models", "CREATE_MODEL"),
    )
    assert "User does not have USE CATALOG on Catalog 'ml'" in str(caught.value)


def test_preflight_with_a_client_checks(workspace):
    workspace.grant(USER, EVERYTHING)
    assert preflight(CONFIG, client=client_for(workspace)).startswith("ok")


def test_local_preflight_never_touches_the_network(workspace, monkeypatch):
    monkeypatch.delenv("DATABRICKS_RUNTIME_VERSION", raising=False)
    # A host that would hang or fail if anything tried to build a client from the environment.
    monkeypatch.setenv("DATABRICKS_HOST", workspace.host)
    started = time.perf_counter()
    assert preflight(CONFIG) == "skipped: local mode"
    assert time.perf_counter() - started < 1.0
    assert workspace.requests == []


def test_sdk_error_text_that_quotes_the_token_is_redacted(workspace):
    """A server (or proxy) whose error text quotes the request: the PrivilegeError shows
    the server's reason, never the token the SDK sent."""
    token = "dapi" + "0123456789abcdef" * 2
    everything_but_ml = {k: v for k, v in EVERYTHING.items() if k[1].split(".")[0] != "ml"}
    workspace.grant(USER, everything_but_ml)
    workspace.denied = {("SCHEMA", "ml.models")}
    workspace.echo_credentials = True
    client = WorkspaceClient(
        config=Config(host=workspace.host, token=token, retry_timeout_seconds=5, http_timeout_seconds=5)
    )
    with pytest.raises(PrivilegeError) as caught:
        check_privileges(client, CONFIG)
    message = str(caught.value)
    assert "User does not have USE CATALOG on Catalog 'ml'" in message and "Authorization: Bearer ***" in message
    assert token not in message and token[4:] not in message
