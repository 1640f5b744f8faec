"""The proxy routes of both dialects answer the same whether the fast routes or the framework's
router serve them: one corpus of good, bad and hostile calls goes to two servers on one store,
one of each, and every answer must match byte for byte once the values that differ on every
call (call ids, latencies, the upstream's clock) are masked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from conftest import KeyholeServer, Keys, served_in_thread, server_env
from keyhole.api.fast_routes import FastRoutes
from keyhole.app import create_app
from keyhole.settings import Settings

from .support import TOKEN

# Values that differ between two identical calls: masked in bodies and headers alike.
_VOLATILE = re.compile(
    rb'("(?:proxyCallId|latencyMs|jobId|jobUrl|date|Date|expires_at|url)"\s*:\s*)("[^"]*"|[0-9]+)'
)
_VOLATILE_HEADERS = frozenset({"date", "server", "content-length"})


@dataclass(frozen=True)
class Pair:
    fast: str
    framework: str
    keys: Keys
    connection: str
    session: str


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, httpbin_url: str) -> Iterator[Pair]:
    home: Path = tmp_path_factory.mktemp("parity")
    env = server_env(home)
    keys = KeyholeServer(home, env).bootstrap("parity", "p@parity.test")  # the CLI, no server yet
    settings = Settings(home=home, egress_allow=[ip_network("127.0.0.0/8")], audit_flush_seconds=0.2)
    fast_app = create_app(settings)
    framework_app = create_app(settings, fast_routes=False)
    assert isinstance(fast_app.app, FastRoutes) and not isinstance(framework_app.app, FastRoutes)
    with served_in_thread(fast_app) as fast_url, served_in_thread(framework_app) as framework_url:
        yield _paired(fast_url, framework_url, keys, httpbin_url)


def _paired(fast_url: str, framework_url: str, keys: Keys, httpbin_url: str) -> Pair:
    """The pair, with a connection to httpbin and a tool router session."""
    with httpx.Client(base_url=fast_url, headers=keys.bearer, timeout=30) as client:
        created = client.post(
            "/api/connections",
            json={
                "name": "parity",
                "type": "api",
                "configuration": {
                    "url": httpbin_url,
                    "auth": {"type": "header", "name": "X-Api-Key", "value": TOKEN},
                },
                "validate": False,
            },
        )
        assert created.status_code == 200, created.text
        session = client.post(
            "/api/v3.1/tool_router/session",
            json={"user_id": "default"},
            headers={"x-api-key": keys.user_api_key},
        )
        assert session.status_code == 201, session.text
    return Pair(fast_url, framework_url, keys, created.json()["data"]["id"], session.json()["session_id"])


def _corpus(pair: Pair) -> list[tuple[str, str, dict[str, str], bytes]]:
    """(name, path, headers, body) of every call sent to both servers."""
    polytomic = f"/api/connections/{pair.connection}/proxy"
    bearer = pair.keys.bearer
    composio_key = {"x-api-key": pair.keys.user_api_key}
    account = pair.connection

    def envelope(**request: Any) -> bytes:
        return orjson.dumps({"request": request})

    calls: list[tuple[str, str, dict[str, str], bytes]] = [
        ("get", polytomic, bearer, envelope(method="GET", path="/get", query={"a": ["1", 2, True]})),
        ("post json", polytomic, bearer, envelope(method="POST", path="/post", body={"x": [1, 2]})),
        ("head", polytomic, bearer, envelope(method="head", path="/get")),
        ("upstream 418", polytomic, bearer, envelope(method="GET", path="/status/418")),
        ("trace", polytomic, bearer, envelope(method="TRACE", path="/get")),
        ("method type", polytomic, bearer, envelope(method=7, path="/get")),
        ("locked header", polytomic, bearer, envelope(method="GET", path="/get", headers={"x_api-KEY": "x"})),
        ("blocked header", polytomic, bearer, envelope(method="GET", path="/get", headers={"Cookie": "a=b"})),
        ("traversal", polytomic, bearer, envelope(method="GET", path="/%2e%2e/admin")),
        ("locked query", polytomic, bearer, envelope(method="GET", path="/get", rawQuery="X-Api-Key=1")),
        ("query and raw", polytomic, bearer, envelope(method="GET", path="/get", query={}, rawQuery="a=1")),
        ("malformed", polytomic, bearer, b'{"request": '),
        ("not an object", polytomic, bearer, b"[1, 2]"),
        ("unknown field", polytomic, bearer, b'{"request": {"method": "GET", "path": "/"}, "x": 1}'),
        (
            "async post",
            polytomic,
            bearer,
            orjson.dumps({"request": {"method": "POST", "path": "/"}, "async": True}),
        ),
        (
            "async flag type",
            polytomic,
            bearer,
            orjson.dumps({"request": {"method": "GET", "path": "/"}, "async": 1}),
        ),
        ("no key", polytomic, {}, envelope(method="GET", path="/get")),
        ("wrong key", polytomic, {"Authorization": "Bearer nope"}, envelope(method="GET", path="/get")),
        ("unknown connection", "/api/connections/nope/proxy", bearer, envelope(method="GET", path="/get")),
        ("oversized", polytomic, bearer, b'{"request": {"body": "' + b"a" * 1_700_000 + b'"}}'),
        (
            "idempotent",
            polytomic,
            {**bearer, "Idempotency-Key": "replaced-per-server"},
            envelope(method="GET", path="/get"),
        ),
    ]
    for prefix in ("/api/v3", "/api/v3.1"):
        execute = f"{prefix}/tools/execute/proxy"
        session = f"{prefix}/tool_router/session/{pair.session}/proxy_execute"
        calls += [
            (
                f"{prefix} get",
                execute,
                composio_key,
                orjson.dumps(
                    {
                        "endpoint": "/get",
                        "method": "GET",
                        "connected_account_id": account,
                        "parameters": [{"name": "q", "value": "1", "type": "query"}],
                    }
                ),
            ),
            (
                f"{prefix} head",
                execute,
                composio_key,
                orjson.dumps({"endpoint": "/get", "method": "HEAD", "connected_account_id": account}),
            ),
            (
                f"{prefix} 500 post",
                execute,
                composio_key,
                orjson.dumps(
                    {
                        "endpoint": "/status/500",
                        "method": "POST",
                        "body": {"a": 1},
                        "connected_account_id": account,
                    }
                ),
            ),
            (
                f"{prefix} bad method",
                execute,
                composio_key,
                orjson.dumps({"endpoint": "/get", "method": "TRACE", "connected_account_id": account}),
            ),
            (
                f"{prefix} locked parameter",
                execute,
                composio_key,
                orjson.dumps(
                    {
                        "endpoint": "/get",
                        "method": "GET",
                        "connected_account_id": account,
                        "parameters": [{"name": "X-API-KEY", "value": "x", "type": "header"}],
                    }
                ),
            ),
            (
                f"{prefix} traversal",
                execute,
                composio_key,
                orjson.dumps({"endpoint": "/a/../../etc", "method": "GET", "connected_account_id": account}),
            ),
            (
                f"{prefix} foreign origin",
                execute,
                composio_key,
                orjson.dumps(
                    {"endpoint": "http://203.0.113.9/get", "method": "GET", "connected_account_id": account}
                ),
            ),
            (
                f"{prefix} no auth context",
                execute,
                composio_key,
                orjson.dumps({"endpoint": "/get", "method": "GET"}),
            ),
            (
                f"{prefix} both contexts",
                execute,
                composio_key,
                orjson.dumps(
                    {
                        "endpoint": "/get",
                        "method": "GET",
                        "connected_account_id": account,
                        "custom_connection_data": {"authScheme": "API_KEY", "toolkitSlug": "api", "val": {}},
                    }
                ),
            ),
            (f"{prefix} malformed", execute, composio_key, b'{"endpoint": '),
            (f"{prefix} wrong type", execute, composio_key, orjson.dumps({"endpoint": 5, "method": "GET"})),
            (f"{prefix} no key", execute, {}, orjson.dumps({"endpoint": "/get", "method": "GET"})),
            (
                f"{prefix} session get",
                session,
                composio_key,
                orjson.dumps({"toolkit_slug": "api", "endpoint": "/get", "method": "GET"}),
            ),
            (
                f"{prefix} session unknown toolkit",
                session,
                composio_key,
                orjson.dumps({"toolkit_slug": "nope", "endpoint": "/get", "method": "GET"}),
            ),
            (
                f"{prefix} unknown session",
                f"{prefix}/tool_router/session/trs_x/proxy_execute",
                composio_key,
                orjson.dumps({"toolkit_slug": "api", "endpoint": "/get", "method": "GET"}),
            ),
        ]
    return calls


def _masked(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [
        (name, value) for name, value in response.headers.multi_items() if name not in _VOLATILE_HEADERS
    ]
    return response.status_code, headers, _VOLATILE.sub(rb"\1null", response.content)


def test_fast_routes_answer_as_the_framework_does(pair: Pair) -> None:
    with (
        httpx.Client(base_url=pair.fast, timeout=30) as fast,
        httpx.Client(base_url=pair.framework, timeout=30) as framework,
    ):
        for name, path, headers, body in _corpus(pair):
            sent = {**headers, "Content-Type": "application/json", "X-Request-Id": f"parity-{len(body)}"}
            if "Idempotency-Key" in sent:  # one store: each server gets its own key
                fast_answer = fast.post(
                    path, content=body, headers={**sent, "Idempotency-Key": "fast-path-key"}
                )
                framework_answer = framework.post(
                    path, content=body, headers={**sent, "Idempotency-Key": "framework-key"}
                )
            else:
                fast_answer = fast.post(path, content=body, headers=sent)
                framework_answer = framework.post(path, content=body, headers=sent)
            assert fast_answer.status_code < 500 or name.endswith("500 post"), (name, fast_answer.text)
            assert _masked(fast_answer) == _masked(framework_answer), name
            if name == "idempotent":
                assert fast_answer.status_code == 200, fast_answer.text


def test_the_framework_app_has_no_middleware_of_its_own(tmp_path: Path) -> None:
    """Middleware added to the framework app would skip the fast routes: it belongs in create_app."""
    app = create_app(Settings(home=tmp_path))
    fast_routes = app.app
    assert isinstance(fast_routes, FastRoutes)
    assert fast_routes.app.user_middleware == []
