"""Tool calls answer the same whether the shortcut of ``api.mcp.fast_calls`` or the SDK's whole
pipeline serves them: one corpus of good, bad and hostile calls in the official client's
stateless shape goes to two servers on one store (``create_app`` with and without its fast
paths), and every answer must match once the values that differ on every call are masked. The
shortcut must really have served the plain calls of the corpus, and nothing else."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from conftest import KeyholeServer, Keys, served_in_thread, server_env
from keyhole.api.mcp import fast_calls
from keyhole.app import create_app
from keyhole.settings import Settings

from .support import SECRET, stateless_call

# Values that differ between two identical calls (ids, clocks, signed links): masked.
_VOLATILE = frozenset(
    {
        "call_id",
        "latency_ms",
        "Date",
        "date",
        "expires_at",
        "query_id",
        "next_page_token",
        "elapsed_seconds",
    }
)


@dataclass(frozen=True)
class Pair:
    fast: str
    sdk: str
    keys: Keys


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, httpbin_url: str) -> Iterator[Pair]:
    home: Path = tmp_path_factory.mktemp("mcp-parity")
    with sqlite3.connect(home / "rows.sqlite") as db:
        db.execute("CREATE TABLE t (id INTEGER, big INTEGER)")
        db.executemany("INSERT INTO t VALUES (?, ?)", [(i, 2**60 + i) for i in range(30)])
    env = server_env(home, KEYHOLE_SQL_FILE_ROOT=str(home))
    keys = KeyholeServer(home, env).bootstrap("parity", "p@parity.test")  # the CLI, no server yet
    settings = Settings(
        home=home, sql_file_root=home, egress_allow=[ip_network("127.0.0.0/8")], audit_flush_seconds=0.2
    )
    with (
        served_in_thread(create_app(settings)) as fast_url,
        served_in_thread(create_app(settings, fast_routes=False)) as sdk_url,
    ):
        yield _paired(fast_url, sdk_url, keys, httpbin_url)


def _paired(fast_url: str, sdk_url: str, keys: Keys, httpbin_url: str) -> Pair:
    """The pair, with ``billing`` (httpbin behind ``SECRET``) and ``rows`` (a SQLite file)."""
    with httpx.Client(base_url=fast_url, headers=keys.bearer, timeout=30) as client:
        for body in (
            {
                "name": "billing",
                "type": "api",
                "configuration": {"url": httpbin_url, "auth": {"type": "bearer", "token": SECRET}},
                "validate": False,
            },
            {"name": "rows", "type": "sqlite", "configuration": {"path": "rows.sqlite"}},
        ):
            created = client.post("/api/connections", json=body)
            assert created.status_code == 200, created.text
    return Pair(fast_url, sdk_url, keys)


GET = "keyhole_http_get"
REQUEST = "keyhole_http_request"
# (case, tool, arguments): every one served by the shortcut
PLAIN: list[tuple[str, str, Any]] = [
    ("get json", GET, {"connection": "billing", "path": "/anything", "query": {"a": [1, 2]}}),
    ("get echo of the credential", GET, {"connection": "billing", "path": "/bearer"}),
    ("head", GET, {"connection": "billing", "path": "/get", "method": "HEAD"}),
    ("upstream 404", GET, {"connection": "billing", "path": "/status/404"}),
    ("spilled", GET, {"connection": "billing", "path": "/html", "max_inline_bytes": 1024}),
    ("binary", GET, {"connection": "billing", "path": "/image/png"}),
    (
        "post json",
        REQUEST,
        {"connection": "billing", "method": "POST", "path": "/post", "body": {"n": 2**70}},
    ),
    ("post text", REQUEST, {"connection": "billing", "method": "PUT", "path": "/put", "body_text": "hi"}),
    ("locked header", GET, {"connection": "billing", "path": "/get", "headers": {"authorization": "x"}}),
    ("path escape", GET, {"connection": "billing", "path": "/../etc/passwd"}),
    ("unknown connection", GET, {"connection": "nope", "path": "/get"}),
    ("database over http", GET, {"connection": "rows", "path": "/get"}),
    ("wrong types", GET, {"connection": 5, "path": ["/"], "max_inline_bytes": "big"}),
    ("extra argument", GET, {"connection": "billing", "path": "/get", "verbose": True}),
    ("no arguments", GET, None),
    ("describe", "keyhole_describe_connection", {"connection": "billing"}),
    ("list", "keyhole_list_connections", {}),
    ("types", "keyhole_list_connection_types", {"search": "sql", "limit": 3}),
    (
        "sql",
        "keyhole_sql_query",
        {"connection": "rows", "sql": "SELECT * FROM t ORDER BY id", "page_size": 4},
    ),
    (
        "bad token",
        "keyhole_sql_results",
        {"query_id": "00000000-0000-0000-0000-000000000000", "page_token": "x"},
    ),
]
# Calls the shortcut leaves to the SDK: each must still be answered the same.
UNUSUAL: list[tuple[str, dict[str, str], bytes]] = [
    ("unknown tool", *stateless_call("keyhole_nope", {})),
    ("null id", *stateless_call(GET, {"connection": "billing", "path": "/get"}, id=None)),
    ("extra envelope field", *stateless_call(GET, {"connection": "billing", "path": "/get"}, extra=1)),
    ("arguments not an object", *stateless_call(GET, [1, 2])),
]


def _mask(value: Any) -> Any:
    """``value`` with every volatile member masked, also inside a text block's JSON."""
    if isinstance(value, dict):
        masked = {key: "*" if key in _VOLATILE else _mask(item) for key, item in value.items()}
        if masked.get("type") == "resource_link":  # named after its call, pointing at its download
            masked["name"] = masked["uri"] = "*"
        if "expires_at" in value and "url" in value:  # a download: a signed link of its own
            masked["url"] = "*"
        if masked.get("type") == "text" and isinstance(masked.get("text"), str):
            headline, _, rest = masked["text"].partition("\n")
            with contextlib.suppress(orjson.JSONDecodeError):  # an error's text is no JSON
                masked["text"] = [headline, _mask(orjson.loads(rest))]
        return masked
    if isinstance(value, list):
        return [_mask(item) for item in value]
    return value


def _masked(raw: bytes) -> Any:
    return _mask(orjson.loads(raw))


def _exchange(url: str, keys: Keys, headers: dict[str, str], body: bytes) -> tuple[int, str, Any]:
    response = httpx.post(url + "/mcp", content=body, headers={**keys.bearer, **headers}, timeout=60)
    return response.status_code, response.headers.get("content-type", ""), _masked(response.content)


@pytest.fixture
def shortcut_calls(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each request was answered by the shortcut (True) or left to the SDK (False)."""
    answered: list[bool] = []
    original = fast_calls.answer

    async def counted(*args: Any) -> bool:
        served = await original(*args)
        answered.append(served)
        return served

    monkeypatch.setattr(fast_calls, "answer", counted)
    return answered


@pytest.mark.parametrize(("case", "tool", "arguments"), PLAIN, ids=[case for case, _, _ in PLAIN])
def test_plain_calls_answer_the_same(
    pair: Pair, shortcut_calls: list[bool], case: str, tool: str, arguments: Any
) -> None:
    headers, body = stateless_call(tool, arguments)
    fast, sdk = _exchange(pair.fast, pair.keys, headers, body), _exchange(pair.sdk, pair.keys, headers, body)
    assert shortcut_calls == [True], "the fast server's shortcut did not serve a plain call"
    assert fast == sdk
    assert SECRET not in orjson.dumps(fast[2]).decode()


@pytest.mark.parametrize(("case", "headers", "body"), UNUSUAL, ids=[case for case, _, _ in UNUSUAL])
def test_unusual_calls_go_to_the_sdk(
    pair: Pair, shortcut_calls: list[bool], case: str, headers: dict[str, str], body: bytes
) -> None:
    fast, sdk = _exchange(pair.fast, pair.keys, headers, body), _exchange(pair.sdk, pair.keys, headers, body)
    assert shortcut_calls == [False]
    assert fast == sdk


def test_the_older_protocol_goes_to_the_sdk(pair: Pair, shortcut_calls: list[bool]) -> None:
    headers, body = stateless_call(GET, {"connection": "billing", "path": "/get"})
    headers["MCP-Protocol-Version"] = "2025-11-25"
    fast, sdk = _exchange(pair.fast, pair.keys, headers, body), _exchange(pair.sdk, pair.keys, headers, body)
    assert shortcut_calls == [False]
    assert fast == sdk and fast[0] == 200


def test_mismatched_routing_headers_go_to_the_sdk(pair: Pair, shortcut_calls: list[bool]) -> None:
    headers, body = stateless_call(GET, {"connection": "billing", "path": "/get"})
    headers["Mcp-Name"] = "keyhole_http_request"
    fast, sdk = _exchange(pair.fast, pair.keys, headers, body), _exchange(pair.sdk, pair.keys, headers, body)
    assert shortcut_calls == [False]
    assert fast == sdk and fast[0] == 400


def test_a_string_id_is_served_and_echoed(pair: Pair, shortcut_calls: list[bool]) -> None:
    headers, body = stateless_call(GET, {"connection": "billing", "path": "/get"}, id="seven")
    fast, sdk = _exchange(pair.fast, pair.keys, headers, body), _exchange(pair.sdk, pair.keys, headers, body)
    assert shortcut_calls == [True]
    assert fast == sdk and fast[2]["id"] == "seven"
