"""The connections pages over HTTP: list, create from the generated form, edit with write-only
secrets, test, proxy on and off, delete after typing the name, OAuth2 connect; what another
organization sees; and hostile forms, each refused whole with a 4xx page that writes nothing (the
store's rows compared, where a secret is as stored rather than redacted)."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from oauth.conftest import AuthServer, authserver  # noqa: F401 (a fixture)

from .conftest import ConsoleServer
from .connection_pages import (
    api_fields,
    as_posted,
    branch,
    create,
    parse,
    proxied,
    rest,
    stored,
)
from .support import SAME_ORIGIN, ConsoleClient, sign_in
from .test_security import store_state

REDACTED = "[REDACTED]"


def _secret() -> str:
    return f"s3cr3t-{uuid.uuid4().hex}"


def _basic(password: str) -> dict[str, str]:
    return {"type": "basic", "username": "u", "password": password}


def _rows(console_server: ConsoleServer) -> dict[str, list[tuple[Any, ...]]]:
    """The store's rows, but the proxy calls' audit: the server writes it on its own time, after
    the calls earlier tests made."""
    return {table: rows for table, rows in store_state(console_server).items() if table != "proxy_calls"}


# -- list ----------------------------------------------------------------------------------------


def test_an_empty_organization_is_invited_to_create_one(console_server: ConsoleServer) -> None:
    keys = console_server.server.bootstrap(f"console-empty-{uuid.uuid4().hex[:8]}", "eve@empty.test")
    client = sign_in(console_server.url, keys.user_api_key)
    page = client.get("/console/connections")
    assert page.status_code == 200
    assert "No connections yet" in page.text
    assert "/console/connections/new" in parse(page.text).links
    picker = client.get("/console/connections/new")
    assert picker.status_code == 200
    for type_id in ("api", "github", "postgresql", "sqlite"):
        assert f"/console/connections/new/{type_id}" in parse(picker.text).links


def test_the_list_pages_filters_and_shows_each_last_call(
    console_server: ConsoleServer, httpbin_url: str
) -> None:
    keys = console_server.server.bootstrap(f"console-many-{uuid.uuid4().hex[:8]}", "max@many.test")
    ids: dict[str, str] = {}
    with rest(console_server.url, keys) as api:
        for number in range(55):
            type_id, configuration = (
                ("api", {"url": httpbin_url}) if number % 5 else ("github", {"token": "ghp_x"})
            )
            name = f"conn-{number:03d}"
            made = api.post(
                "/api/connections",
                json={"name": name, "type": type_id, "configuration": configuration, "validate": False},
            )
            assert made.status_code == 200, made.text
            ids[name] = made.json()["data"]["id"]
        assert proxied(api, ids["conn-001"], "/status/418").json()["data"]["status"] == 418
    client = sign_in(console_server.url, keys.user_api_key)

    first = client.get("/console/connections")
    assert first.status_code == 200
    assert "1 to 50 of 55 connections" in first.text
    shown = re.findall(r'href="/console/connections/([0-9a-f-]{36})"', first.text)
    assert shown == [ids[f"conn-{number:03d}"] for number in range(50)]  # by name
    assert 'href="/console/connections?page=2"' in first.text
    row = first.text.split(f'href="/console/connections/{ids["conn-001"]}"')[1].split("</tr>")[0]
    assert "GET · 418 · ok" in row
    quiet = first.text.split(f'href="/console/connections/{ids["conn-002"]}"')[1].split("</tr>")[0]
    assert "none yet" in quiet

    second = client.get("/console/connections?page=2")
    assert "51 to 55 of 55 connections" in second.text
    assert re.findall(r'href="/console/connections/([0-9a-f-]{36})"', second.text) == [
        ids[f"conn-{number:03d}"] for number in range(50, 55)
    ]
    assert 'href="/console/connections"' in second.text  # back to the first page

    github = client.get("/console/connections", params={"type": "github"})
    assert "1 to 11 of 11 connections" in github.text
    named = client.get("/console/connections", params={"q": "CONN-04"})
    assert "1 to 10 of 10 connections" in named.text
    both = client.get("/console/connections", params={"q": "conn-04", "type": "github"})
    assert re.findall(r'href="/console/connections/([0-9a-f-]{36})"', both.text) == [
        ids["conn-040"],
        ids["conn-045"],
    ]
    assert 'href="/console/connections?type=github&amp;q=conn-04&amp;page=2"' not in both.text
    nothing = client.get("/console/connections", params={"q": "100%_"})
    assert nothing.status_code == 200 and "No connection matches these filters." in nothing.text
    past = client.get("/console/connections?page=3")
    assert past.status_code == 200 and "This page is past the last one." in past.text


# -- forms ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("type_id", ["api", "github", "postgresql", "mysql", "sqlite", "duckdb", "stripe"])
def test_every_control_of_a_generated_form_has_a_label(client: ConsoleClient, type_id: str) -> None:
    page = client.get(f"/console/connections/new/{type_id}")
    assert page.status_code == 200
    parsed = parse(page.text)
    for control in parsed.controls:
        if control.attrs.get("type") == "hidden":
            continue
        assert parsed.labels.get(control.attrs["id"]), control
    for control in parsed.controls:
        if control.attrs.get("type") == "password":
            assert control.attrs["autocomplete"] == "new-password"
            assert "value" not in control.attrs


def test_the_api_form_follows_the_schema(client: ConsoleClient) -> None:
    parsed = parse(client.get("/console/connections/new/api").text)
    url = parsed.control("config/url")
    assert (url.attrs["type"], "required" in url.attrs) == ("url", True)
    assert parsed.options["config/auth/type"] == ["none", "bearer", "basic", "header", "query", "oauth2"]
    assert parsed.control("config/auth/type").value == "none"  # the schema's default
    token = parsed.control(branch("bearer", "token"))
    assert token.attrs["type"] == "password" and "data-required" in token.attrs
    assert parsed.control(branch("oauth2", "grant")).value == "authorization_code"
    assert parsed.control(branch("oauth2", "scopes")).tag == "textarea"
    timeout = parsed.control("config/proxy/timeout_ms")
    assert (timeout.attrs["type"], timeout.value, timeout.attrs["min"]) == ("number", "30000", "100")
    assert "checked" in parsed.control("config/proxy/scrub_echoed_secrets").attrs
    postgres = parse(client.get("/console/connections/new/postgresql").text)
    assert postgres.control("config/port").value == "5432"
    assert postgres.options["config/ssl_mode"] == ["disable", "prefer", "require", "verify-full"]
    assert postgres.control("config/password").attrs["type"] == "password"


def test_a_connection_made_from_the_form_as_a_browser_posts_it(
    client: ConsoleClient, api: httpx.Client, httpbin_url: str
) -> None:
    password = _secret()
    parsed = parse(client.get("/console/connections/new/api").text)
    posted = as_posted(
        parsed,
        {
            "name": "From the whole form",
            "config/url": httpbin_url,
            "config/auth/type": "basic",
            branch("basic", "username"): "u",
            branch("basic", "password"): password,
            "config/healthcheck_path": f"/basic-auth/u/{password}",
            "config/headers": "X-Team: data\nX-Env: test",
            "config/proxy/rate_limit_per_minute": "",
        },
        unchecked=("config/proxy/scrub_echoed_secrets",),
    )
    connection_id = create(client, "api", posted)
    configuration = stored(api)[connection_id]["configuration"]
    assert configuration["auth"] == {"type": "basic", "username": "u", "password": REDACTED}
    assert configuration["headers"] == {"X-Team": "data", "X-Env": "test"}
    assert configuration["proxy"]["rate_limit_per_minute"] is None
    assert configuration["proxy"]["scrub_echoed_secrets"] is False
    assert configuration["proxy"]["timeout_ms"] == 30000
    detail = client.get(f"/console/connections/{connection_id}?done=created")
    assert "Connection created." in detail.text
    assert "X-Team: data<br>X-Env: test" in detail.text


def test_health_is_checked_on_save_unless_unticked(
    console_server: ConsoleServer, client: ConsoleClient, httpbin_url: str
) -> None:
    before = _rows(console_server)
    nowhere = "http://127.0.0.1:9"  # the discard port: nothing listens
    refused = client.post("/console/connections/new/api", api_fields("Nowhere", nowhere))
    assert refused.status_code == 422
    assert "could not reach the connection" in refused.text
    assert "untick “Check that the target answers before saving”" in refused.text
    assert parse(refused.text).control("config/url").value == nowhere
    assert _rows(console_server) == before
    create(client, "api", api_fields("Nowhere", nowhere, validate=False))

    sick = create(client, "api", api_fields("Sick", httpbin_url, healthcheck_path="/status/503"))
    row = client.get("/console/connections", params={"q": "Sick"}).text.split("</thead>")[1]
    assert "unhealthy" in row and "health check GET /status/503 answered 503" in row
    assert "answered 503" in client.get(f"/console/connections/{sick}").text


# -- secrets ---------------------------------------------------------------------------------------


def test_no_page_ever_holds_a_stored_secret(
    client: ConsoleClient, api: httpx.Client, httpbin_url: str
) -> None:
    token = _secret()
    fields = api_fields(
        "Secret keeper", httpbin_url, {"type": "bearer", "token": token}, healthcheck_path="/bearer"
    )
    connection_id = create(client, "api", fields)
    assert stored(api)[connection_id]["configuration"]["auth"]["token"] == REDACTED
    base = f"/console/connections/{connection_id}"
    pages = [
        client.get("/console/connections"),
        client.get(base),
        client.get(f"{base}/edit"),
        client.get(f"{base}/delete"),
        client.post(f"{base}/test"),
        # refused forms come back with what was typed, except secrets
        client.post(
            f"{base}/edit", [("name", ""), ("config/url", httpbin_url), ("config/auth/type", "bearer")]
        ),
        client.post(
            "/console/connections/new/api",
            api_fields("", httpbin_url, {"type": "bearer", "token": token}),
        ),
        client.post(
            "/console/connections/new/api",
            [
                *api_fields("x", httpbin_url, {"type": "bearer", "token": token}),
                ("config/proxy/timeout_ms", "soon"),
            ],
        ),
    ]
    assert [page.status_code for page in pages] == [200, 200, 200, 200, 200, 422, 422, 422]
    for page in pages:
        assert token not in page.text
        assert REDACTED not in page.text
        for control in parse(page.text).controls:
            assert control.value != REDACTED and token not in control.value
    edit = parse(pages[2].text)
    secret = edit.control(branch("bearer", "token"))
    assert secret.attrs["type"] == "password" and secret.attrs["autocomplete"] == "new-password"
    assert (
        "value" not in secret.attrs and "required" not in secret.attrs and "data-required" not in secret.attrs
    )
    assert "set</span> Leave it empty to keep the stored secret" in pages[2].text
    assert '<span class="badge badge-ok">set</span>' in pages[1].text


def test_a_secret_left_blank_on_edit_keeps_the_stored_one(
    client: ConsoleClient, api: httpx.Client, httpbin_url: str
) -> None:
    password = _secret()
    check = f"/basic-auth/u/{password}"  # httpbin answers 200 only to this very password
    connection_id = create(
        client, "api", api_fields("Basic one", httpbin_url, _basic(password), healthcheck_path=check)
    )
    base = f"/console/connections/{connection_id}"

    # Renamed with the password left empty: the save's own check reaches httpbin with the kept one.
    kept = client.post(
        f"{base}/edit", api_fields("Basic one, renamed", httpbin_url, _basic(""), healthcheck_path=check)
    )
    assert kept.status_code == 303, kept.text
    assert kept.headers["location"] == f"{base}?done=saved"
    assert stored(api)[connection_id]["name"] == "Basic one, renamed"
    tested = client.post(f"{base}/test")
    assert "The test passed" in tested.text
    assert proxied(api, connection_id, check).json()["data"]["status"] == 200

    # A password typed over it replaces it (saved unchecked: httpbin now refuses it).
    wrong = client.post(
        f"{base}/edit",
        api_fields(
            "Basic one, renamed", httpbin_url, _basic("not-it"), healthcheck_path=check, validate=False
        ),
    )
    assert wrong.status_code == 303, wrong.text
    failed = client.post(f"{base}/test")
    assert failed.status_code == 200
    assert "The test failed" in failed.text and "answered 401" in failed.text
    assert proxied(api, connection_id, check).json()["data"]["status"] == 401


def test_moving_a_kept_secret_to_another_target_is_refused(
    console_server: ConsoleServer, client: ConsoleClient, httpbin_url: str
) -> None:
    password = _secret()
    connection_id = create(
        client,
        "api",
        api_fields("Bound", httpbin_url, _basic(password), healthcheck_path=f"/basic-auth/u/{password}"),
    )
    before = _rows(console_server)
    elsewhere = httpbin_url.replace("127.0.0.1", "localhost")
    moved = client.post(
        f"/console/connections/{connection_id}/edit",
        api_fields("Bound", elsewhere, _basic(""), validate=False),
    )
    assert moved.status_code == 422
    assert "send the secret" in moved.text
    page = parse(moved.text)
    assert page.control("config/url").value == elsewhere  # what was typed is kept
    problem = moved.text.split(f'id="{page.control(branch("basic", "password")).attrs["id"]}-problem"')[1]
    assert problem.split("</p>")[0].endswith("type it again: where the credential goes has changed")
    assert _rows(console_server) == before  # nothing written
    switched = client.post(
        f"/console/connections/{connection_id}/edit",
        api_fields("Bound", httpbin_url, {"type": "bearer", "token": ""}, validate=False),
    )
    assert switched.status_code == 422  # a new method: its secret is required, none is kept
    assert _rows(console_server) == before


# -- actions ---------------------------------------------------------------------------------------


def test_proxy_off_and_on(client: ConsoleClient, api: httpx.Client, httpbin_url: str) -> None:
    connection_id = create(client, "api", api_fields("Switch", httpbin_url))
    base = f"/console/connections/{connection_id}"
    off = client.post(f"{base}/proxy", {"enabled": "false"})
    assert off.headers["location"] == f"{base}?done=proxy_disabled"
    page = client.get(off.headers["location"]).text
    assert "The proxy is disabled" in page and "Enable proxy" in page
    assert proxied(api, connection_id, "/get").json()["key"] == "proxy_disabled"
    on = client.post(f"{base}/proxy", {"enabled": "true"})
    assert on.headers["location"] == f"{base}?done=proxy_enabled"
    assert "Disable proxy" in client.get(on.headers["location"]).text
    assert proxied(api, connection_id, "/get").json()["data"]["status"] == 200


def test_delete_needs_the_name_typed(client: ConsoleClient, api: httpx.Client, httpbin_url: str) -> None:
    connection_id = create(client, "api", api_fields("Doomed", httpbin_url))
    base = f"/console/connections/{connection_id}"
    confirm = client.get(f"{base}/delete")
    assert parse(confirm.text).labels["confirm-name"].startswith("Type the connection's name")
    wrong = client.post(f"{base}/delete", {"confirm_name": "doomed"})
    assert wrong.status_code == 400 and "nothing was deleted" in wrong.text
    assert connection_id in stored(api)
    gone = client.post(f"{base}/delete", {"confirm_name": "Doomed"})
    assert gone.headers["location"] == "/console/connections?done=deleted"
    assert "Connection deleted." in client.get(gone.headers["location"]).text
    assert connection_id not in stored(api)
    assert client.get(base).status_code == 404


def test_oauth2_connect_comes_back_to_the_connection(
    client: ConsoleClient,
    api: httpx.Client,
    authserver: AuthServer,  # noqa: F811
) -> None:
    auth = authserver.auth()
    fields = [
        ("name", "Calendar"),
        ("config/url", authserver.url),
        ("config/auth/type", "oauth2"),
        (branch("oauth2", "grant"), "authorization_code"),
        (branch("oauth2", "authorization_url"), auth["authorization_url"]),
        (branch("oauth2", "token_url"), auth["token_url"]),
        (branch("oauth2", "client_id"), auth["client_id"]),
        (branch("oauth2", "client_secret"), auth["client_secret"]),
        (branch("oauth2", "scopes"), "read\nwrite"),
        ("validate", "on"),
    ]
    connection_id = create(client, "api", fields)
    base = f"/console/connections/{connection_id}"
    detail = client.get(base).text
    assert f'href="{base}/connect"' in detail and "awaiting authorization" in detail
    assert auth["client_secret"] not in detail

    started = client.get(f"{base}/connect", headers=SAME_ORIGIN)
    assert started.status_code == 303
    assert started.headers["location"].startswith(authserver.url + "/authorize?")
    assert "scope=read+write" in started.headers["location"]
    consent = httpx.get(started.headers["location"], follow_redirects=False, timeout=10)
    callback = httpx.get(consent.headers["location"], follow_redirects=False, timeout=30)
    assert callback.status_code == 302
    landing = callback.headers["location"]
    assert landing.startswith(f"{str(client.http.base_url).rstrip('/')}{base}/authorized?status=success")
    # The landing page needs no session (the browser sends none from the provider's redirect).
    arrived = httpx.get(landing, timeout=10)
    assert arrived.status_code == 200
    target = f"{base}?authorization=success"
    assert f'content="0;url={target}"' in arrived.text
    back = client.get(target).text
    assert "Authorized: the provider granted access" in back
    assert '<span class="badge badge-ok">healthy</span>' in back
    assert proxied(api, connection_id, "/api/me").json()["data"]["status"] == 200

    refused = httpx.get(f"{landing.split('?')[0]}?status=error&error=access_denied", timeout=10)
    assert f"{base}?authorization=failed&amp;reason=access_denied" in refused.text
    assert (
        "did not complete (access_denied)"
        in client.get(f"{base}?authorization=failed&reason=access_denied").text
    )
    assert "did not complete:" in client.get(f"{base}?authorization=failed&reason=<b>x</b>").text


def test_connect_refuses_what_it_cannot_authorize(client: ConsoleClient, httpbin_url: str) -> None:
    connection_id = create(client, "api", api_fields("Plain", httpbin_url))
    base = f"/console/connections/{connection_id}"
    assert f"{base}/connect" not in client.get(base).text
    refused = client.get(f"{base}/connect", headers=SAME_ORIGIN)
    assert refused.status_code == 400 and "oauth_not_configured" in refused.text
    cross = client.get(f"{base}/connect", headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    assert httpx.get(f"{client.http.base_url}/console/connections/not-an-id/authorized").status_code == 404


# -- other organizations and hostile input --------------------------------------------------------


def test_another_organizations_connection_is_not_found(
    console_server: ConsoleServer, client: ConsoleClient, api: httpx.Client, httpbin_url: str
) -> None:
    connection_id = create(client, "api", api_fields("Ours", httpbin_url))
    rival = sign_in(console_server.url, console_server.rival.user_api_key)
    before = _rows(console_server)
    base = f"/console/connections/{connection_id}"
    for path in (base, f"{base}/edit", f"{base}/delete", f"{base}/connect"):
        assert rival.get(path, headers=SAME_ORIGIN).status_code == 404, path
    posts: list[tuple[str, list[tuple[str, str]]]] = [
        (f"{base}/edit", api_fields("Theirs now", httpbin_url, validate=False)),
        (f"{base}/test", []),
        (f"{base}/proxy", [("enabled", "false")]),
        (f"{base}/delete", [("confirm_name", "Ours")]),
    ]
    for path, fields in posts:
        assert rival.post(path, fields).status_code == 404, path
    assert connection_id not in rival.get("/console/connections").text
    assert _rows(console_server) == before
    assert proxied(api, connection_id, "/get").json()["data"]["status"] == 200  # still enabled


def test_hostile_forms_are_refused_whole(
    console_server: ConsoleServer, client: ConsoleClient, api: httpx.Client, httpbin_url: str
) -> None:
    existing = create(client, "api", api_fields("Target", httpbin_url))
    before = _rows(console_server)
    good = api_fields("Nope", httpbin_url, {"type": "bearer", "token": "t"}, validate=False)
    new = "/console/connections/new/api"

    def assert_refused(answer: httpx.Response, status: int, text: str) -> None:
        assert answer.status_code == status, answer.text
        assert text in answer.text
        assert "<html" in answer.text  # a page, not a bare error

    missing_csrf = client.http.post(new, data=dict(good), headers=SAME_ORIGIN)
    assert_refused(missing_csrf, 403, "csrf_failed")
    cross_site = client.http.post(
        new, data={**dict(good), "csrf_token": client.csrf}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert_refused(cross_site, 403, "cross_site_request")
    assert_refused(client.post("/console/connections/new/nope", good), 404, "unknown connection type")
    assert_refused(client.post(new, [*good, ("config/evil", "1")]), 400, "unexpected_field")
    assert_refused(_sent_as_is(client, new, [*good, ("name", "twice")]), 400, "repeated_field")
    assert_refused(
        client.post(new, [*good, ("config/proxy/timeout_ms", "[1]")]), 422, "must be a whole number"
    )
    assert_refused(
        client.post(new, [*good, ("config/proxy/timeout_ms", "9" * 5000)]), 422, "must be a whole number"
    )
    assert_refused(client.post(new, [*good, ("config/proxy/timeout_ms", "5")]), 422, "must be at least 100")
    assert_refused(
        client.post(new, [*good, ("config/headers", "no colon here")]), 422, "must read name: value"
    )
    overlong = [("name", "n" * 201), *good[1:]]
    assert_refused(client.post(new, overlong), 422, "at most 200 characters")
    assert_refused(client.post(new, [("name", "a\x00b"), *good[1:]]), 422, "control characters")
    bad_choice = [(key, "sideways" if key == "config/auth/type" else value) for key, value in good]
    assert_refused(client.post(new, bad_choice), 422, "choose one of the options")
    assert_refused(
        client.post(new, [*api_fields("Nope", "ftp://x", validate=False)]), 422, "must match pattern"
    )
    huge = client.post(new, [*good, ("config/headers", "X-Big: " + "x" * 2_000_000)])
    assert huge.status_code == 413
    as_json = client.http.post(new, json=dict(good), headers={**SAME_ORIGIN, "X-CSRF-Token": client.csrf})
    assert as_json.status_code == 415
    base = f"/console/connections/{existing}"
    assert_refused(client.post(f"{base}/proxy", {"enabled": "maybe"}), 400, "enabled must be true or false")
    assert_refused(client.post(f"{base}/proxy", {"enabled": "false", "extra": "1"}), 400, "unexpected_field")
    assert_refused(
        client.post(f"{base}/delete", {"confirm_name": "Target", "also": "x"}), 400, "unexpected_field"
    )
    assert_refused(
        client.post(f"{base}/edit", [*good, ("config/auth/~:nope/token", "x")]), 400, "unexpected_field"
    )
    for page in ("0", "x", "%C2%B2", "%EF%BC%91", "1e3", "+1", "%201", "99999999"):  # '²', a wide '1'
        assert_refused(client.get(f"/console/connections?page={page}"), 400, "page must be a whole number")
    for name in ("q", "type", "page"):
        assert_refused(client.get(f"/console/connections?{name}=%00"), 400, "invalid_query_parameter")
    assert_refused(client.post(f"{base}/test", {"extra": "1"}), 400, "unexpected_field")
    for path, fields in (
        (f"{base}/proxy", [("enabled", "false"), ("enabled", "true")]),
        (f"{base}/delete", [("confirm_name", "Target"), ("confirm_name", "Target")]),
        (f"{base}/edit", [*api_fields("Target", httpbin_url, validate=False), ("config/url", httpbin_url)]),
        (f"{base}/edit", [*api_fields("Target", httpbin_url), ("validate", "on")]),
    ):
        assert_refused(_sent_as_is(client, path, fields), 400, "repeated_field")
    assert_refused(client.get("/console/connections", params={"q": "q" * 201}), 400, "at most 200")
    assert client.get("/console/connections/not-a-uuid").status_code == 404
    assert _rows(console_server) == before  # nothing written, nothing changed
    assert proxied(api, existing, "/get").json()["data"]["status"] == 200  # the proxy still enabled


def _sent_as_is(client: ConsoleClient, path: str, fields: list[tuple[str, str]]) -> httpx.Response:
    """A form posted with exactly these fields, repeated ones included."""
    return client.http.post(
        path,
        content=urlencode([*fields, ("csrf_token", client.csrf)]),
        headers={**SAME_ORIGIN, "Content-Type": "application/x-www-form-urlencoded"},
    )
