"""The connection rules the console shares with core and the REST API: what a connection's name may
be (one rule for the console's form and the Polytomic API) and which connections the OAuth2 connect
flow authorizes (one rule for the flow and the console's Connect button)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from keyhole.connections.authorization import authorizes_through_provider, connect_flow_refusal
from keyhole.connections.naming import MAX_NAME_LENGTH, name_problem
from keyhole.connections.schemas import ConnectionView
from keyhole.connections.type_files import load_catalog

from .connection_pages import api_fields, parse, stored
from .support import ConsoleClient

NAMES: list[tuple[str, str | None]] = [
    ("Billing API", None),
    ("n" * MAX_NAME_LENGTH, None),
    ("", "is required"),
    ("n" * (MAX_NAME_LENGTH + 1), f"must be at most {MAX_NAME_LENGTH} characters long"),
    ("a\x00b", "must not hold control characters"),
    ("line\n", "must not hold control characters"),
    ("del\x7f", "must not hold control characters"),
]


@pytest.mark.parametrize(("name", "problem"), NAMES)
def test_the_name_rule(name: str, problem: str | None) -> None:
    assert name_problem(name) == problem


def test_the_console_and_the_rest_api_take_the_same_names(
    client: ConsoleClient, api: httpx.Client, httpbin_url: str
) -> None:
    for name, problem in NAMES:
        console = client.post("/console/connections/new/api", api_fields(name, httpbin_url, validate=False))
        made = api.post(
            "/api/connections",
            json={"name": name, "type": "api", "configuration": {"url": httpbin_url}, "validate": False},
        )
        if problem is None:
            assert (console.status_code, made.status_code) == (303, 200), name
        else:
            assert console.status_code == 422 and made.status_code in (400, 422), name
            page = parse(console.text)
            problem_id = f'id="{page.control("name").attrs["id"]}-problem"'
            assert problem in console.text.split(problem_id)[1].split("</p>")[0]
    names = {connection["name"] for connection in stored(api).values()}
    assert names == {name for name, problem in NAMES if problem is None}


def _view(auth: dict[str, Any], parent_connection_id: str | None = None) -> ConnectionView:
    now = datetime.now(UTC)
    return ConnectionView(
        id=str(uuid.uuid4()),
        organization_id="org",
        name="n",
        type=load_catalog().get("api"),
        configuration={"url": "https://api.example.com", "auth": auth},
        status="healthy",
        status_error=None,
        proxy_enabled=True,
        healthcheck_interval=None,
        policies=[],
        created_by=None,
        updated_by=None,
        created_at=now,
        updated_at=now,
        parent_connection_id=parent_connection_id,
    )


def test_which_connections_the_connect_flow_authorizes() -> None:
    oauth = {"type": "oauth2", "token_url": "https://id.example.com/token", "client_id": "c"}
    code = {**oauth, "authorization_url": "https://id.example.com/authorize"}
    assert connect_flow_refusal(code) is None
    assert connect_flow_refusal({**code, "grant": "authorization_code"}) is None
    for refused in ({"type": "bearer", "token": "[REDACTED]"}, None, "oauth2", oauth):
        assert connect_flow_refusal(refused) is not None, refused
    assert connect_flow_refusal({**code, "grant": "client_credentials"}) is not None
    assert authorizes_through_provider(_view(code))
    assert not authorizes_through_provider(_view(code, parent_connection_id=str(uuid.uuid4())))
    assert not authorizes_through_provider(_view(oauth))
