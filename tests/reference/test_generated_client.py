"""The README's promise: a client generated from ``/api/openapi.json`` talks to the server.

The generator runs from its own cached environment on the live server's document; the generated
package is imported here and used as a person would: who am I, create a connection, find it."""

from __future__ import annotations

import importlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from conftest import KeyholeServer, Keys
from side_envs import CLIENT_GENERATOR, ensure

PACKAGE = "keyhole_polytomic_dialect_client"


@pytest.fixture(scope="module")
def generated(server: KeyholeServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    output = tmp_path_factory.mktemp("generated") / "client"
    generator = Path(ensure(CLIENT_GENERATOR)).with_name("openapi-python-client")
    result = subprocess.run(
        [str(generator), "generate", "--url", server.url + "/api/openapi.json", "--output-path", str(output)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    sys.path.insert(0, str(output))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(output))


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_a_generated_client_reads_and_writes(
    generated: ModuleType, server: KeyholeServer, org_a: Keys
) -> None:
    client = generated.AuthenticatedClient(base_url=server.url, token=org_a.user_api_key)

    me = _module("api.identity.identity_me").sync_detailed(client=client)
    assert me.status_code == 200, me.content
    assert me.parsed.data.organization_id == org_a.organization_id

    name = f"generated-{uuid.uuid4().hex[:8]}"
    body = _module("models.create_connection_body").CreateConnectionBody.from_dict(
        {"name": name, "type": "api", "configuration": {"url": "https://api.example.com"}, "validate": False}
    )
    created = _module("api.connections.connections_create_connection").sync_detailed(client=client, body=body)
    assert created.status_code == 200, created.content
    assert created.parsed.data.name == name

    listed = _module("api.connections.connections_list_connections").sync_detailed(client=client)
    assert listed.status_code == 200, listed.content
    assert name in [connection.name for connection in listed.parsed.data]

    refused = _module("api.connections.connections_get_connection").sync_detailed(
        "00000000-0000-4000-8000-000000000000", client=client
    )
    assert refused.status_code == 404
    assert refused.parsed.key == "not_found"
