"""Schemathesis against a live server, once per dialect document.

Every operation gets a bounded number of generated requests (valid and invalid), the stateful
phase follows the links the documents imply (create -> read -> call -> delete), and every answer
is checked: no 5xx, status and body as documented, refusals for what the document forbids, and no
stored secret in any answer (``fuzz_checks``). ``KEYHOLE_FUZZ_EXAMPLES`` and ``KEYHOLE_FUZZ_SEED``
widen or vary a run; CI runs the fixed seed so that a red run is reproducible.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import KeyholeServer, Keys

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
    with httpx.Client(base_url=server.url, headers=keys.bearer, timeout=30) as client:
        api = {"url": httpbin_url, "auth": {"type": "bearer", "token": SECRET}}
        yield Target(
            server,
            keys,
            _connection(client, "fuzzed", api),
            _connection(client, "doomed", api),
        )


def _config(target: Target, directory: Path) -> Path:
    """The run's configuration: the caller's key, and real ids for the path parameters that name a
    connection, so that generated calls reach the proxy and the query runner, not only 404s."""
    lines = [
        f'base-url = "{target.server.url}"',
        f"seed = {int(SEED)}",
        "",
        "[headers]",
        f'Authorization = "Bearer {target.keys.user_api_key}"',
        "",
        "[generation]",
        f"max-examples = {EXAMPLES}",
        "",
        "[parameters]",
        f'"path.connection_id" = "{target.connection_id}"',
        f'"path.account_id" = "{target.connection_id}"',
        f'"path.organization_id" = "{target.keys.organization_id}"',
        "",
        "[[operations]]",
        'include-method = "DELETE"',
        'include-path-regex = "connections/\\\\{connection_id\\\\}$'
        '|connected_accounts/\\\\{account_id\\\\}$"',
        f'parameters = {{ "path.connection_id" = "{target.doomed_connection_id}", '
        f'"path.account_id" = "{target.doomed_connection_id}" }}',
    ]
    path = directory / "schemathesis.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("document", ["/api/openapi.json", "/api/v3/openapi.json"])
def test_fuzzing_finds_nothing(target: Target, document: str, tmp_path: Path) -> None:
    config = _config(target, tmp_path)
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "fuzz_checks",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "KEYHOLE_FUZZ_SECRETS": ",".join([SECRET, target.keys.org_api_key]),
        "NO_COLOR": "1",
    }
    result = subprocess.run(
        [
            SCHEMATHESIS,
            "--config-file",
            str(config),
            "run",
            target.server.url + document,
            "--checks",
            "all",
            "--workers",
            "2",
            "--report",
            "junit",
            "--report-dir",
            str(tmp_path / "report"),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-20000:]
    assert "Traceback" not in target.server.logs(), target.server.logs()[-5000:]
