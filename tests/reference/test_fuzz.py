"""Schemathesis against a live server, once per dialect document.

Every operation gets a bounded number of generated requests (valid and invalid), the stateful
phase follows the links the documents imply (create -> read -> call -> delete), and every answer
is checked: no 5xx, status and body as documented, refusals for what the document forbids, and no
stored secret in any answer (``fuzz_checks``). ``KEYHOLE_FUZZ_EXAMPLES`` and ``KEYHOLE_FUZZ_SEED``
widen or vary a run; CI runs the fixed seed so that a red run is reproducible.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import ARTIFACTS, KeyholeServer, Keys

HERE = Path(__file__).resolve().parent
SECRET = "fz_Q7vN2kR9xT4mW8pL3sB6"  # the upstream credential the fuzzed connections hold
EXAMPLES = int(os.environ.get("KEYHOLE_FUZZ_EXAMPLES", "12"))
SEED = os.environ.get("KEYHOLE_FUZZ_SEED", "16")
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))


@dataclass
class Target:
    server: KeyholeServer
    keys: Keys
    connection_id: str
    doomed_connection_id: str  # the one DELETE may remove
    database_connection_id: str  # a SQLite file: the query routes run real SQL
    partner_api_key: str
    managed_organization_id: str  # an organization of the partner account
    doomed_organization_id: str  # the one DELETE may remove
    # The user and key the user and key routes name: changing the caller's own (a role, a key
    # minted with force=true, which replaces the user's keys) would end the run in 401s.
    spare_user_id: str
    spare_key_id: str
    managed_user_id: str  # a user of the partner's organization, for the partner run


def _connection(
    client: httpx.Client, name: str, configuration: Mapping[str, object], kind: str = "api"
) -> str:
    response = client.post(
        "/api/connections",
        json={"name": name, "type": kind, "configuration": configuration, "validate": False},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["id"])


@pytest.fixture
def target(make_server: Callable[..., KeyholeServer], httpbin_url: str) -> Iterator[Target]:
    server = make_server()
    keys = server.bootstrap("fuzz", "fuzz@fuzz.test")
    sql_root = server.home / "sql"
    sql_root.mkdir(exist_ok=True)
    with sqlite3.connect(sql_root / "fuzz.sqlite") as database:
        database.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        database.executemany("INSERT INTO items (name) VALUES (?)", [(f"item {n}",) for n in range(50)])
    partner = json.loads(
        server.cli("bootstrap", "--org", "fuzz-partner", "--user", "owner@fuzz.test", "--partner")
        .stdout.strip()
        .splitlines()[-1]
    )["partner_api_key"]
    with (
        httpx.Client(base_url=server.url, headers=keys.bearer, timeout=30) as client,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {partner}"}, timeout=30
        ) as partner_client,
    ):
        api = {"url": httpbin_url, "auth": {"type": "bearer", "token": SECRET}}
        managed = _organization(partner_client, "customer")
        spare_user = _user(client, f"/api/organizations/{keys.organization_id}/users", "spare@fuzz.test")
        yield Target(
            server,
            keys,
            _connection(client, "fuzzed", api),
            _connection(client, "doomed", api),
            _connection(client, "items", {"path": "fuzz.sqlite"}, kind="sqlite"),
            partner,
            managed,
            _organization(partner_client, "doomed customer"),
            spare_user,
            _key(client, f"/api/organizations/{keys.organization_id}/users/{spare_user}/keys"),
            _user(partner_client, f"/api/organizations/{managed}/users", "member@customer.test"),
        )


def _user(client: httpx.Client, users: str, email: str) -> str:
    response = client.post(users, json={"email": email})
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["id"])


def _key(client: httpx.Client, keys: str) -> str:
    response = client.post(keys)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["id"])


def _organization(client: httpx.Client, name: str) -> str:
    response = client.post("/api/organizations", json={"name": name})
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["id"])


@dataclass(frozen=True)
class Run:
    """One schemathesis run: a document, the caller's key and what its dialect refuses with."""

    document: str
    partner: bool  # the partner account's key on the partner routes, else a user key on the rest
    refusals: tuple[str, ...]


RUNS = {
    "polytomic": Run("/api/openapi.json", False, ("422",)),
    "polytomic-partner": Run("/api/openapi.json", True, ("422",)),
    "composio": Run("/api/v3/openapi.json", False, ("400", "422")),
}
PARTNER_TAGS = ("Organizations", "Users", "Keys", "Identity")


def _accepted(refusals: tuple[str, ...]) -> str:
    # 401 is never acceptable: every generated request carries a valid key.
    statuses = ["2xx", "3xx", "403", "404", "409", *refusals, "429"]
    return "[" + ", ".join(f'"{status}"' for status in statuses) + "]"


def _config(target: Target, directory: Path, run: Run) -> Path:
    """The run's configuration: the caller's key, and real ids for the path parameters that name a
    connection or an organization, so that generated calls reach the proxy, the query runner and
    the partner routes, not only 404s."""
    key = target.partner_api_key if run.partner else target.keys.user_api_key
    organization_id = target.managed_organization_id if run.partner else target.keys.organization_id
    user_id = target.managed_user_id if run.partner else target.spare_user_id
    lines = [
        f'base-url = "{target.server.url}"',
        f"seed = {int(SEED)}",
        "",
        "[headers]",
        f'Authorization = "Bearer {key}"',
        "",
        "[generation]",
        f"max-examples = {EXAMPLES}",
        # Unknown query parameters are ignored, as the dialects' clients expect (a newer client may
        # send one an older server does not know), except by the organization audit log: not
        # generated as invalid input.
        "allow-extra-parameters = false",
        # Every request carries the run's key; generated credentials would only test 401s, which
        # the ignored_auth check covers.
        "with-security-parameters = false",
        "",
        "[parameters]",
        f'"path.connection_id" = "{target.connection_id}"',
        f'"path.account_id" = "{target.connection_id}"',
        f'"path.organization_id" = "{organization_id}"',
        f'"path.key_id" = "{target.spare_key_id}"',
        f'"path.user_id" = "{user_id}"',
        "",
        "[checks]",
        # No timing in a test: a slow answer on a loaded machine is not a finding about the contract
        # (schemathesis's default bound is 10 s); this one only catches a hang.
        "max_response_time = 300",
        "",
        # A well-formed request the server's state refuses (a role or email the organization does not
        # accept, a configuration its type refuses, an id that names nothing usable) is a 422 in the
        # Polytomic dialect, and a 400 in Composio's, whose documented statuses have no 422 for it:
        # the schema cannot say which values exist.
        "[checks.positive_data_acceptance]",
        f"expected-statuses = {_accepted(run.refusals)}",
        "",
        # Opaque values only the server issues (cursors, page tokens, OAuth state), a connection test
        # whose target does not answer, a connect flow for a configuration without OAuth2, and a type
        # other than the connection's own are refused with 400 whatever their spelling.
        "[[operations]]",
        'include-path-regex = "proxy/calls$|/oauth/callback$|/connections/test$|/connections/connect/?$'
        '|/queries/\\\\{query_id\\\\}$"',
        f"checks = {{ positive_data_acceptance = {{ expected-statuses = {_accepted(('400', '422'))} }} }}",
        "",
        "[[operations]]",
        'include-method = "PUT"',
        'include-path-regex = "^/api/connections/\\\\{connection_id\\\\}$"',
        f"checks = {{ positive_data_acceptance = {{ expected-statuses = {_accepted(('400', '422'))} }} }}",
        "",
        # A call through a connection whose upstream does not answer (the documents' examples name
        # api.example.com) is answered 502 or 504 with the dialect's envelope: the upstream's
        # failure, reported as documented, not Keyhole's.
        "[[operations]]",
        'include-path-regex = "/proxy$|/proxy_execute$"',
        'checks = { not_a_server_error = { expected-statuses = ["2xx", "3xx", "4xx", "502", "504"] } }',
        "",
        # The stateful phase follows the key listing to revocation and would revoke the very key the
        # run speaks with (every later answer a 401); the other phases revoke the spare key.
        "[[operations]]",
        'include-method = "DELETE"',
        'include-path-regex = "/keys/\\\\{key_id\\\\}$"',
        "phases = { stateful = { enabled = false } }",
        "",
        "[[operations]]",
        'include-path-regex = "/query$"',
        f'parameters = {{ "path.connection_id" = "{target.database_connection_id}" }}',
        # The SQL comes in the URL or in the body; the schema cannot require one of the two.
        f"checks = {{ positive_data_acceptance = {{ expected-statuses = {_accepted(('400', '422'))} }} }}",
        "",
        "[[operations]]",
        'include-method = "DELETE"',
        'include-path-regex = "connections/\\\\{connection_id\\\\}$'
        '|connected_accounts/\\\\{account_id\\\\}$"',
        f'parameters = {{ "path.connection_id" = "{target.doomed_connection_id}", '
        f'"path.account_id" = "{target.doomed_connection_id}" }}',
        "",
        # The MCP endpoints carry JSON-RPC, whose envelope rules (notifications answered 202, ids
        # of any shape echoed) are the protocol's, not this schema's; tests/mcp_server drives them
        # with real clients and hostile messages instead.
        "[[operations]]",
        'include-path-regex = "/mcp$"',
        "enabled = false",
        "",
        "[[operations]]",
        'include-method = "DELETE"',
        'include-path-regex = "^/api/organizations/\\\\{organization_id\\\\}$"',
        f'parameters = {{ "path.organization_id" = "{target.doomed_organization_id}" }}',
    ]
    path = directory / "schemathesis.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("name", list(RUNS))
def test_fuzzing_finds_nothing(target: Target, name: str, tmp_path: Path) -> None:
    run = RUNS[name]
    config = _config(target, tmp_path, run)
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "fuzz_checks",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "KEYHOLE_FUZZ_SECRETS": ",".join(
            [SECRET, target.keys.user_api_key, target.keys.org_api_key, target.partner_api_key]
        ),
        "NO_COLOR": "1",
    }
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "--config-file",
            str(config),
            "run",
            target.server.url + run.document,
            "--checks",
            "all",
            "--workers",
            "2",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path / "report"),
            *[argument for tag in PARTNER_TAGS for argument in ("--include-tag", tag) if run.partner],
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    report = ARTIFACTS / "fuzz" / f"{name}.txt"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(output)
    assert result.returncode == 0, f"the whole report: {report}\n" + output[-20000:]
    # The run spoke for the caller to the end: its key was not revoked along the way.
    assert httpx.get(target.server.url + "/api/me", headers=target.keys.bearer, timeout=30).status_code == 200
    assert "Traceback" not in target.server.logs(), target.server.logs()[-5000:]
