"""Fixtures of the organization-wide audit log suite: organizations whose calls are made once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from conftest import KeyholeServer

from .support import Tenant, httpbin_connection, tenant, wait_for


@dataclass
class Population:
    """An organization's calls through three connections, every outcome kind, all stored."""

    owner: Tenant
    connections: dict[str, str]  # label → connection id
    calls: dict[str, str]  # label → proxyCallId
    listed: list[dict[str, Any]]  # the organization's log, newest first
    neighbour: Tenant  # another organization of the same server, with calls of its own
    neighbour_connection: str
    neighbour_calls: list[str]

    def labels(self, call_ids: list[str]) -> set[str]:
        by_id = {call_id: label for label, call_id in self.calls.items()}
        return {by_id[call_id] for call_id in call_ids}


@pytest.fixture(scope="session")
def population(server: KeyholeServer, httpbin_url: str) -> Iterator[Population]:
    owner, neighbour = tenant(server, "owner"), tenant(server, "neighbour")
    a, b = httpbin_connection(owner, httpbin_url), httpbin_connection(owner, httpbin_url)
    slow = httpbin_connection(owner, httpbin_url, timeout_ms=300)
    calls = {
        "a_ok": owner.made(a, 200, method="GET", path="/get"),
        "a_404": owner.made(a, 200, method="GET", path="/status/404"),
        "a_503": owner.made(a, 200, method="DELETE", path="/status/503"),
        "a_locked": owner.made(a, 400, method="GET", path="/get", headers={"Authorization": "Bearer mine"}),
        "b_created": owner.made(b, 200, method="POST", path="/status/201", body={"k": "v"}),
        "b_redirect": owner.made(b, 200, method="GET", path="/status/302"),
        "b_invalid": owner.made(b, 400, method="GET", path="/../get"),
        "slow_timeout": owner.made(slow, 504, method="GET", path="/delay/2"),
    }
    nearby = httpbin_connection(neighbour, httpbin_url)
    neighbour_calls = [
        neighbour.made(nearby, 200, method="GET", path="/get"),
        neighbour.made(nearby, 200, method="GET", path="/status/404"),
    ]
    wait_for(neighbour.client, neighbour_calls)
    yield Population(
        owner=owner,
        connections={"a": a, "b": b, "slow": slow},
        calls=calls,
        listed=wait_for(owner.client, calls.values()),
        neighbour=neighbour,
        neighbour_connection=nearby,
        neighbour_calls=neighbour_calls,
    )
    owner.client.close()
    neighbour.client.close()
