"""The playground over HTTP: a call through a connection from the form, its answer with the
echoed credential redacted, the contract beside it, the same call as curl, Python SDK and MCP
(each run here and compared), and every refusal a clear page that sent nothing upstream."""

from __future__ import annotations

import base64
import html
import json
import re
import shlex
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from keyhole.api.console.playground import DISPLAY_BYTES
from mcp_server.support import stateless_call
from proxy.support import LocalUpstream

from .conftest import ConsoleServer
from .playground_support import SECRET, Tenant, call_id_of, pre, run, tenant
from .support import SAME_ORIGIN, sign_in

ECHO = {
    "path": "/anything/orders",
    "method": "POST",
    "query": "limit=10\ntag=a\ntag=b",
    "headers": "X-Trace: t-42",
    "body": '{"customer": "cus_1", "amount": 4200, "lines": [1, 2]}',
}


@pytest.fixture(scope="module")
def org(console_server: ConsoleServer) -> Iterator[Tenant]:
    with tenant(console_server) as made:
        yield made


@pytest.fixture(scope="module")
def upstream() -> Iterator[LocalUpstream]:
    instance = LocalUpstream().start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def echo(org: Tenant, httpbin_url: str) -> str:
    """httpbin, which echoes the request: headers (the credential too), query and body."""
    return org.connection(httpbin_url, name="echo")


@pytest.fixture(scope="module")
def local(org: Tenant, upstream: LocalUpstream) -> str:
    """The counting upstream: whatever reaches it is in ``upstream.requests``."""
    return org.connection(upstream.url(), name="local")


def reflect(body: bytes, content_type: str) -> str:
    """A path of the counting upstream answering ``body`` with ``content_type``."""
    encoded = base64.urlsafe_b64encode(body).decode()
    return f"/reflect?body={encoded}&type={content_type}"


def test_the_page_shows_the_contract_by_name_only(org: Tenant, echo: str, httpbin_url: str) -> None:
    page = org.console.get(f"/console/playground?connection={echo}")
    assert page.status_code == 200, page.text
    assert httpbin_url in page.text
    injected = re.search(r"<dt>Injected by Keyhole</dt>\s*<dd>(.*?)</dd>", page.text, re.DOTALL)
    assert injected is not None and "<code>Authorization</code> header" in injected.group(1)
    assert SECRET not in page.text


def test_without_a_connection_the_first_is_chosen(org: Tenant, echo: str) -> None:
    page = org.console.get("/console/playground")
    assert page.status_code == 200
    assert re.search(r'<option value="[0-9a-f-]{36}" selected>', page.text)


def test_a_call_shows_the_echo_with_the_credential_redacted(org: Tenant, echo: str) -> None:
    page = run(org.console, echo, **ECHO)
    assert page.status_code == 200, page.text
    assert SECRET not in page.text
    assert '<span class="badge badge-ok" id="answer-status">200 OK</span>' in page.text
    echoed = json.loads(_raw_body(page.text))
    assert echoed["headers"]["Authorization"] == "Bearer [REDACTED]"
    assert echoed["headers"]["X-Trace"] == "t-42"
    assert echoed["args"] == {"limit": "10", "tag": ["a", "b"]}
    assert echoed["json"] == {"customer": "cus_1", "amount": 4200, "lines": [1, 2]}
    assert '<ul class="json" aria-label="JSON body">' in page.text  # folded, not only raw
    call_id = call_id_of(page.text)
    detail = org.console.get(f"/console/activity/{call_id}")
    assert detail.status_code == 200
    assert "<code>/anything/orders?limit=10&amp;tag=a&amp;tag=b</code>" in detail.text
    assert "the console&#39;s playground" in detail.text


def _raw_body(page: str) -> str:
    found = re.search(r"<summary>Raw body</summary><pre>(.*?)</pre>", page, re.DOTALL)
    assert found is not None, "no raw body"
    return html.unescape(found.group(1))


def _essence(echoed: dict[str, Any]) -> dict[str, Any]:
    """What httpbin saw of a call, beyond what differs between two runs of it."""
    headers = echoed["headers"]
    return {
        "method": echoed["method"],
        "path": httpx.URL(echoed["url"]).path,
        "args": echoed["args"],
        "data": echoed["data"],  # the body's very bytes
        "headers": {name: headers.get(name) for name in ("Authorization", "Content-Type", "X-Trace")},
    }


def _curl(command: str, key: str) -> dict[str, Any]:
    """The curl command run as a shell would read it (with ``$KEYHOLE_API_KEY`` set)."""
    words = shlex.split(command.replace("\\\n", " "))
    assert words[:2] == ["curl", "-sS"], words
    url, options = words[2], words[3:]
    headers: dict[str, str] = {}
    body = None
    while options:
        flag, value, options = options[0], options[1], options[2:]
        if flag == "-H":
            name, _, header = value.partition(": ")
            headers[name] = header.replace("$KEYHOLE_API_KEY", key)
        else:
            assert flag == "--data-raw", flag
            body = value
    answer: dict[str, Any] = httpx.post(url, content=body, headers=headers, timeout=60).json()
    return answer


def test_the_same_call_from_code_makes_the_same_request(
    console_server: ConsoleServer, org: Tenant, echo: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    page = run(org.console, echo, **ECHO)
    expected = _essence(json.loads(_raw_body(page.text)))
    assert expected["headers"]["Authorization"] == "Bearer [REDACTED]"
    key = org.keys.user_api_key
    assert key not in page.text

    reply = _curl(pre(page.text, "code-curl"), key)["data"]
    assert (reply["status"], _essence(json.loads(reply["body"]))) == (200, expected)

    monkeypatch.setenv("KEYHOLE_API_KEY", key)
    namespace: dict[str, Any] = {}
    exec(pre(page.text, "code-python"), namespace)  # the snippet as a reader would run it
    sdk = namespace["reply"].data
    assert (sdk.status, _essence(json.loads(sdk.body))) == (200, expected)

    tool = json.loads(pre(page.text, "code-mcp"))
    headers, body = stateless_call(tool["name"], tool["arguments"])
    answer = httpx.post(
        f"{console_server.url}/mcp", content=body, headers={**headers, **org.keys.bearer}, timeout=60
    )
    result = answer.json()["result"]["structuredContent"]
    assert (result["status"], _essence(result["body"])) == (200, expected)


def test_a_read_is_written_as_the_read_tool(org: Tenant, echo: str) -> None:
    page = org.console.post(
        "/console/playground",
        {
            "connection": echo,
            "method": "GET",
            "path": "/get",
            "query": "q=1",
            "body_format": "json",
            "action": "code",
        },
    )
    assert page.status_code == 200
    assert json.loads(pre(page.text, "code-mcp")) == {
        "name": "keyhole_http_get",
        "arguments": {"connection": echo, "method": "GET", "path": "/get", "query": {"q": "1"}},
    }
    assert 'id="answer-title"' not in page.text  # written out, not sent


def test_upstream_errors_are_results(org: Tenant, echo: str) -> None:
    for status, phrase in ((404, "Not Found"), (503, "Service Unavailable")):
        page = run(org.console, echo, path=f"/status/{status}")
        assert page.status_code == 200, page.text
        assert f'<span class="badge badge-bad" id="answer-status">{status} {phrase}</span>' in page.text
        assert "notice-error" not in page.text


def test_a_binary_answer_is_a_download(org: Tenant, local: str, upstream: LocalUpstream) -> None:
    page = run(org.console, local, path="/echo-binary", query="pad=16")
    assert page.status_code == 200, page.text
    link = re.search(r'<a href="([^"]+)" download>Download the body</a>', page.text)
    assert link is not None
    assert 'id="answer-body"' not in page.text
    body = httpx.get(html.unescape(link.group(1)), timeout=30)
    assert body.status_code == 200
    assert body.content == b"\x00\xff\xfe" + b"\x00" * 16 + b"bin:Bearer [REDACTED]"


def test_a_long_answer_shows_its_start_and_downloads_whole(org: Tenant, local: str) -> None:
    page = run(org.console, local, path="/big", query="size=300000")
    assert page.status_code == 200, page.text
    assert "shown in part" in page.text
    assert pre(page.text, "answer-body") == "x" * DISPLAY_BYTES
    link = re.search(r'<a href="([^"]+)" download>Download the body</a>', page.text)
    assert link is not None
    assert httpx.get(html.unescape(link.group(1)), timeout=30).content == b"x" * 300_000


def test_json_answers_fold_and_keep_exact_numbers(org: Tenant, local: str) -> None:
    items = ",".join(["0"] * 2100).encode()
    document = (
        b'{"big": 123456789012345678901234567890, "exact": 0.10000000000000000555, "items": [%s]}' % items
    )
    path, _, query = reflect(document, "application/json").partition("?")
    page = run(org.console, local, path=path, query="\n".join(query.split("&")))
    assert page.status_code == 200, page.text
    assert "<code>123456789012345678901234567890</code>" in page.text
    assert "<code>0.10000000000000000555</code>" in page.text
    assert "[…] 2100 items" in page.text
    assert re.search(r"… \d+ more \(see the raw body\)", page.text)

    deep = b"[" * 2500 + b"]" * 2500
    path, _, query = reflect(deep, "application/json").partition("?")
    page = run(org.console, local, path=path, query="\n".join(query.split("&")))
    assert page.status_code == 200, page.text
    assert pre(page.text, "answer-body") == deep.decode()  # too deep to fold: shown as text


def test_a_connection_that_lets_echoes_through_still_shows_none(org: Tenant, httpbin_url: str) -> None:
    leaky = org.connection(httpbin_url, proxy={"scrub_echoed_secrets": False})
    through_api = org.proxy(leaky, {"method": "GET", "path": "/headers"})
    assert SECRET in through_api["data"]["body"]  # the API caller asked for it
    page = run(org.console, leaky, path="/headers")
    assert page.status_code == 200, page.text
    assert SECRET not in page.text
    assert "Bearer [REDACTED]" in _raw_body(page.text)


REFUSED: list[tuple[dict[str, str], int, str]] = [
    ({"method": "TRACE"}, 400, "invalid_proxy_request"),
    ({"method": "G ET"}, 400, "invalid_proxy_request"),
    ({"method": ""}, 400, "invalid_proxy_request"),
    ({"path": ""}, 400, "invalid_proxy_request"),
    ({"path": "../etc/passwd"}, 400, "invalid_proxy_request"),
    ({"path": "/../etc/passwd"}, 400, "invalid_proxy_request"),
    ({"path": "/a/%2e%2e/%2e%2e/b"}, 400, "invalid_proxy_request"),
    ({"path": "http://evil.example/steal"}, 400, "invalid_proxy_request"),
    ({"path": "//evil.example/steal"}, 400, "invalid_proxy_request"),
    ({"path": "/x?y=1"}, 400, "invalid_proxy_request"),
    ({"path": "/x\\..\\y"}, 400, "invalid_proxy_request"),
    ({"headers": "Authorization: Bearer mine"}, 400, "locked_header"),
    ({"headers": "X-Ok: 1\nauthorization : Basic bWluZQ=="}, 400, "locked_header"),
    ({"headers": "Host: evil.example"}, 400, "blocked_header"),
    ({"headers": "Proxy-Authorization: x"}, 400, "blocked_header"),
    ({"headers": "just a line"}, 400, "invalid_proxy_request"),
    ({"headers": ": no name"}, 400, "invalid_proxy_request"),
    ({"headers": "Bad Name: v"}, 400, "invalid_proxy_request"),
    ({"headers": "X-A: 1\nx-a: 2"}, 400, "invalid_proxy_request"),
    ({"headers": "X-A: caf\u00e9\u0000"}, 400, "invalid_proxy_request"),
    ({"query": "=orphan"}, 400, "invalid_proxy_request"),
    ({"method": "POST", "body": "{not json"}, 400, "malformed_json"),
    ({"method": "POST", "body": "5"}, 400, "invalid_proxy_request"),
    ({"method": "POST", "body": "x", "body_format": "xml"}, 400, "invalid_proxy_request"),
    ({"method": "POST", "body": "x" * 300_000, "body_format": "text"}, 413, "request_body_too_large"),
]


@pytest.mark.parametrize(("fields", "status", "key"), REFUSED, ids=[str(case[0])[:60] for case in REFUSED])
def test_a_refused_call_is_a_clear_page_and_sends_nothing(
    org: Tenant, local: str, upstream: LocalUpstream, fields: dict[str, str], status: int, key: str
) -> None:
    before = len(upstream.requests)
    page = run(org.console, local, **fields)
    assert page.status_code == status, page.text
    assert f"HTTP {status} · <code>{key}</code>" in page.text
    refused = re.search(
        r'Recorded in Activity as call <a href="/console/activity/([0-9a-f-]{36})">', page.text
    )
    assert refused is not None  # audited like every refusal of the core
    detail = org.console.get(f"/console/activity/{refused.group(1)}")
    assert detail.status_code == 200 and f"<code>{key}</code>" in detail.text
    assert len(upstream.requests) == before
    assert SECRET not in page.text


def test_the_form_is_shown_back_as_it_was_typed(org: Tenant, local: str) -> None:
    page = run(org.console, local, path="/x?y=<b>", headers="X-Note: <script>alert(1)</script>")
    assert page.status_code == 400
    assert 'value="/x?y=&lt;b&gt;"' in page.text
    assert "X-Note: &lt;script&gt;alert(1)&lt;/script&gt;</textarea>" in page.text
    assert "<script>alert" not in page.text


def _rival_connection(console_server: ConsoleServer, url: str) -> str:
    with tenant(console_server) as rival:
        return rival.connection(url)


def test_what_the_console_refuses_before_the_core(
    console_server: ConsoleServer, org: Tenant, local: str, upstream: LocalUpstream
) -> None:
    before = len(upstream.requests)
    foreign = _rival_connection(console_server, upstream.url())
    database = org.rest.post(
        "/api/connections",
        json={"name": "db", "type": "sqlite", "configuration": {"path": "none.sqlite"}, "validate": False},
    )
    assert database.status_code == 200, database.text
    sql = database.json()["data"]["id"]
    form = {"connection": local, "method": "GET", "path": "/", "action": "run"}
    http = org.console.http
    answers: list[tuple[httpx.Response, int]] = [
        (http.post("/console/playground", data=form, headers=SAME_ORIGIN), 403),  # no CSRF token
        (http.post("/console/playground", data={**form, "csrf_token": "forged"}, headers=SAME_ORIGIN), 403),
        (org.console.post("/console/playground", form, headers={"Sec-Fetch-Site": "cross-site"}), 403),
        (
            http.post(
                "/console/playground",
                files={"path": ("p", b"/")},
                data={**form, "csrf_token": org.console.csrf},
                headers=SAME_ORIGIN,
            ),
            415,
        ),
        (run(org.console, local, body="x" * 2_000_000, body_format="text", method="POST"), 413),
        (run(org.console, foreign), 404),
        (run(org.console, "not-a-connection"), 404),
        (run(org.console, ""), 404),
        (run(org.console, sql), 400),
        (org.console.get(f"/console/playground?connection={foreign}"), 404),
        (org.console.get("/console/playground?connection=%00"), 400),  # refused before any page reads it
        (org.console.get(f"/console/playground?connection={sql}"), 400),
    ]
    for answer, status in answers:
        assert answer.status_code == status, (answer.request.url, answer.text)
        assert "Error code: <code>" in answer.text
    assert len(upstream.requests) == before


def test_limits_and_policies_of_the_core_are_notices(org: Tenant, upstream: LocalUpstream) -> None:
    limited = org.connection(upstream.url(), proxy={"rate_limit_per_minute": 1})
    assert run(org.console, limited, path="/first").status_code == 200
    before = len(upstream.requests)
    page = run(org.console, limited, path="/second")
    assert page.status_code == 429
    assert "<code>connection_rate_limited</code>" in page.text
    assert int(page.headers["retry-after"]) > 0
    assert len(upstream.requests) == before

    denied = org.connection("http://192.168.1.1")
    page = run(org.console, denied, path="/admin")
    assert page.status_code == 403 and "<code>egress_denied</code>" in page.text

    switched = org.connection(upstream.url())
    off = org.rest.put(f"/api/connections/{switched}/proxy/settings", json={"enabled": False})
    assert off.status_code == 200, off.text
    assert (
        "The proxy is disabled for this connection"
        in org.console.get(f"/console/playground?connection={switched}").text
    )
    page = run(org.console, switched, path="/never")
    assert page.status_code == 403 and "<code>proxy_disabled</code>" in page.text
    assert upstream.hits("/never") == 0


def test_a_member_uses_the_playground(console_server: ConsoleServer, org: Tenant, local: str) -> None:
    member = sign_in(console_server.url, org.member_key())
    page = run(member, local, path="/member")
    assert page.status_code == 200, page.text
    assert '<span class="badge badge-ok" id="answer-status">200 OK</span>' in page.text


def _form(connection_id: str, *extra: tuple[str, str]) -> list[tuple[str, str]]:
    """The request form as the page sends it (a GET of ``/``), with ``extra`` fields after it."""
    fields = {"method": "GET", "path": "/", "query": "", "headers": "", "body_format": "json", "body": ""}
    return [("connection", connection_id), *fields.items(), ("action", "run"), *extra]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (("dialect", "rest"), "a field this page does not have"),
        (("header", "Authorization: Bearer mine"), "a field this page does not have"),
        (("path", "/second"), "the field &#39;path&#39; twice"),
        (("action", "code"), "the field &#39;action&#39; twice"),
    ],
)
def test_a_form_with_a_field_its_page_did_not_generate_sends_and_records_nothing(
    org: Tenant, local: str, upstream: LocalUpstream, extra: tuple[str, str], words: str
) -> None:
    calls = f"/api/connections/{local}/proxy/calls"
    recorded = org.rest.get(calls).json()["data"]
    before = len(upstream.requests)
    page = org.console.post("/console/playground", _form(local, extra))
    assert page.status_code == 400, page.text
    assert words in page.text and "Recorded in Activity" not in page.text
    assert len(upstream.requests) == before
    assert org.rest.get(calls).json()["data"] == recorded
    assert run(org.console, local).status_code == 200  # the form the page generated goes through
