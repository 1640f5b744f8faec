"""The console's security, over HTTP, for every route it has.

The routes are read from the console's mount, so a page added later is held to the same rules
without a line here: a state-changing request needs the session's CSRF token and must come from
the console's own pages; a page needs a live session; every answer carries the security headers;
malformed forms get a clear 4xx page; another organization's objects are not found on any of
them. A route that answers without a session must be listed in ``PUBLIC`` on purpose, and a
state-changing route must say in ``_ACTS`` which object it acts on.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import BaseRoute, Mount, Route

from conftest import KeyholeServer, Keys
from keyhole.api.console.routes import console
from keyhole.api.console.security import HEADERS
from keyhole.api.console.templating import static_files

from .conftest import ConsoleServer
from .connection_pages import as_posted, parse
from .support import SAME_ORIGIN, ConsoleClient, csrf_of, sign_in

SIGN_IN = "/console/sign-in"
_SIGN_IN_TOKEN = re.compile(r'name="sign_in_token" value="([^"]+)"')
_NEXT = re.compile(r'name="next" value="([^"]*)"')
_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::([a-z]+))?}")
_FILLER = "0b6f8a52-3c1d-4e8f-9a7b-2d5c6e4f1a30"  # a well-formed id no row has
HYPOTHESIS = settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


@dataclass(frozen=True)
class ConsoleRoute:
    method: str
    template: str

    @property
    def path(self) -> str:
        """The template with a placeholder for every parameter, as a link would fill it."""
        return _PARAM.sub(lambda found: "1" if found.group(2) in ("int", "float") else _FILLER, self.template)

    def __str__(self) -> str:
        return f"{self.method} {self.template}"


def _walk(routes: list[BaseRoute], prefix: str) -> Iterator[ConsoleRoute]:
    for route in routes:
        if isinstance(route, Mount):
            yield from _walk(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    yield ConsoleRoute(method, prefix + route.path)


ROUTES = list(_walk(console.routes, console.path))
# What answers without a session: the way in, the console's files, "/" (a redirect), and the
# page an OAuth provider sends the browser back to (that navigation comes from another site, so
# the SameSite=Strict cookie stays home; the page only links on to the connection).
PUBLIC = {
    ConsoleRoute("GET", "/console/"),
    ConsoleRoute("GET", SIGN_IN),
    ConsoleRoute("POST", SIGN_IN),
    ConsoleRoute("GET", "/console/static/{digest}/{name}"),
    ConsoleRoute("GET", "/console/connections/{connection_id}/authorized"),
}
# Every method that may change something: a PUT, PATCH or DELETE route added later is held to the
# rules of a form as soon as it exists.
READ_ONLY = {"GET", "HEAD"}
PAGES = [route for route in ROUTES if route.method == "GET" and route not in PUBLIC]
CHANGING = [route for route in ROUTES if route.method not in READ_ONLY]
FORMS = [route for route in CHANGING if route not in PUBLIC]
# What a form of any page might carry: were a refused request acted on, it would change something.
_PLAUSIBLE = {
    "owner": "organization",
    "name": "x",
    "email": "mallory@evil.test",
    "role": "admin",
    "sql": "select 1",
}


def test_the_console_has_the_routes_this_suite_checks() -> None:
    assert set(ROUTES) >= PUBLIC
    assert ConsoleRoute("POST", "/console/sign-out") in FORMS
    assert ConsoleRoute("GET", "/console/keys") in PAGES
    assert set(ROUTES) == set(PAGES) | set(FORMS) | PUBLIC


# -- fixtures and helpers -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin(console_server: ConsoleServer, org: Keys) -> Iterator[ConsoleClient]:
    """A session no test here ends (a refused sign-out must leave it alive)."""
    client = sign_in(console_server.url, org.user_api_key)
    yield client
    client.http.close()


@pytest.fixture
def anonymous(console_server: ConsoleServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console_server.url, timeout=30) as client:
        yield client


def store(server: KeyholeServer) -> sqlite3.Connection:
    return sqlite3.connect(server.home / "keyhole.db", timeout=30)


_STEADY_COLUMNS = {
    "browser_sessions": "token_hash, key_id, expires_at",
    "jobs": "id, organization_id, owner_id, type, status, attempts, error, result, payload, created_at",
}


def store_state(console_server: ConsoleServer) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the store, but what time alone changes (process heartbeats, a session's
    last-seen time, a running job's lease renewals)."""
    state: dict[str, list[tuple[Any, ...]]] = {}
    with closing(store(console_server.server)) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            if table == "processes":
                continue
            columns = _STEADY_COLUMNS.get(table, "*")
            state[table] = sorted(db.execute(f'SELECT {columns} FROM "{table}"').fetchall(), key=repr)
    return state


def token_hash(client: ConsoleClient) -> str:
    return hashlib.sha256(client.http.cookies["keyhole_session"].encode()).hexdigest()


def session_row_exists(console_server: ConsoleServer, client: ConsoleClient) -> bool:
    with closing(store(console_server.server)) as db:
        found = db.execute("SELECT 1 FROM browser_sessions WHERE token_hash = ?", (token_hash(client),))
        return found.fetchone() is not None


def signed_in(client: ConsoleClient) -> bool:
    return client.get("/console/keys").status_code == 200


def assert_refused(answer: httpx.Response, status: int, key: str) -> None:
    assert answer.status_code == status, answer.text
    assert f"<code>{key}</code>" in answer.text
    assert answer.headers["content-type"].startswith("text/html")


def cookies_set(answer: httpx.Response) -> dict[str, dict[str, str]]:
    """Each Set-Cookie by name: its value under "" and its attributes, names lower-cased."""
    found: dict[str, dict[str, str]] = {}
    for header in answer.headers.get_list("set-cookie"):
        first, *attributes = (part.strip() for part in header.split(";"))
        name, _, value = first.partition("=")
        parsed = {"": value}
        for attribute in attributes:
            key, _, setting = attribute.partition("=")
            parsed[key.lower()] = setting
        found[name] = parsed
    return found


def token_of(form: httpx.Response) -> str:
    """The pre-session token a sign-in form carries."""
    found = _SIGN_IN_TOKEN.search(form.text)
    assert found is not None, form.text
    return found.group(1)


def sign_in_form(client: httpx.Client) -> str:
    form = client.get(SIGN_IN)
    assert form.status_code == 200
    return token_of(form)


def post_sign_in(
    client: httpx.Client,
    key: str,
    *,
    token: str,
    address: str,
    next_path: str = "/console/keys",
    **headers: str,
) -> httpx.Response:
    return client.post(
        SIGN_IN,
        data={"sign_in_token": token, "api_key": key, "next": next_path},
        headers={**SAME_ORIGIN, "X-Forwarded-For": address, **headers},
    )


def send(client: ConsoleClient, method: str, path: str, pairs: list[tuple[str, str]]) -> httpx.Response:
    """A form of the console's pages sent with ``method``, as ``ConsoleClient.post`` sends one."""
    if method == "POST":
        return client.post(path, pairs)
    return client.http.request(
        method,
        path,
        content=urlencode([*pairs, ("csrf_token", client.csrf)]),
        headers={**SAME_ORIGIN, "Content-Type": "application/x-www-form-urlencoded"},
    )


def fresh_address() -> str:
    """A documentation address of its own, for the per-address sign-in limit."""
    number = uuid.uuid4().int
    return f"198.18.{number >> 8 & 255}.{number & 255}"


def rest_key(console_server: ConsoleServer, org: Keys, role: str = "admin") -> tuple[str, str]:
    """A new user of ``org`` with a key minted through the REST API: (user id, key)."""
    with httpx.Client(base_url=console_server.url, timeout=30, headers=org.bearer) as rest:
        user = rest.post(
            "/api/organization/users", json={"email": f"{uuid.uuid4().hex[:10]}@s.test", "role": role}
        )
        user_id = user.json()["data"]["id"]
        minted = rest.post(f"/api/organizations/{org.organization_id}/users/{user_id}/keys")
        return user_id, minted.json()["data"]["value"]


# -- CSRF and the origin of state-changing requests ------------------------------------------------

_CSRF_VARIANTS = ["missing", "wrong", "another session's", "another organization's"]


def origin_variants(base_url: str) -> dict[str, dict[str, str]]:
    """Headers of a request from anywhere but the console at ``base_url``. The https variant has
    the server's own host and port, so only its scheme tells it apart."""
    https_twin = urlsplit(base_url)._replace(scheme="https").geturl()
    assert https_twin != base_url and urlsplit(https_twin).netloc == urlsplit(base_url).netloc
    return {
        "cross-site fetch": {"Sec-Fetch-Site": "cross-site"},
        "same-site fetch": {"Sec-Fetch-Site": "same-site"},
        "foreign Origin": {"Origin": "https://evil.test"},
        "null Origin": {"Origin": "null"},
        "same host, another port": {"Origin": "http://127.0.0.1:1"},
        "same host and port, https": {"Origin": https_twin},
        "same host and port, https Referer": {"Referer": f"{https_twin}/console/keys"},
        "foreign Referer": {"Referer": "https://evil.test/console/keys"},
    }


@pytest.fixture(scope="module")
def other_tokens(console_server: ConsoleServer, org: Keys) -> Iterator[dict[str, str]]:
    """CSRF tokens of other live sessions: the same key's, and another organization's."""
    same_key = sign_in(console_server.url, org.user_api_key)
    rival = sign_in(console_server.url, console_server.rival.user_api_key)
    yield {"another session's": same_key.csrf, "another organization's": rival.csrf}
    same_key.http.close()
    rival.http.close()


@pytest.mark.parametrize("route", FORMS, ids=str)
def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(
    route: ConsoleRoute, console_server: ConsoleServer, admin: ConsoleClient, other_tokens: dict[str, str]
) -> None:
    before = store_state(console_server)
    for variant in _CSRF_VARIANTS:
        form = dict(_PLAUSIBLE)
        if variant == "wrong":
            form["csrf_token"] = admin.csrf[:-4] + "AAAA"
        elif variant != "missing":
            form["csrf_token"] = other_tokens[variant]
        answer = admin.http.request(route.method, route.path, data=form, headers=SAME_ORIGIN)
        assert_refused(answer, 403, "csrf_failed")
        header = admin.http.request(
            route.method,
            route.path,
            data=_PLAUSIBLE,
            headers={**SAME_ORIGIN, "X-CSRF-Token": form.get("csrf_token", "")},
        )
        assert_refused(header, 403, "csrf_failed")
    assert store_state(console_server) == before
    assert signed_in(admin)


@pytest.mark.parametrize("route", FORMS, ids=str)
def test_a_form_from_another_site_is_refused_even_with_the_token(
    route: ConsoleRoute, console_server: ConsoleServer, admin: ConsoleClient
) -> None:
    before = store_state(console_server)
    for variant, headers in origin_variants(console_server.url).items():
        answer = admin.http.request(
            route.method, route.path, data={**_PLAUSIBLE, "csrf_token": admin.csrf}, headers=headers
        )
        assert answer.status_code == 403, variant
        assert_refused(answer, 403, "cross_site_request")
    assert store_state(console_server) == before
    assert signed_in(admin)


@pytest.mark.parametrize("route", FORMS, ids=str)
def test_a_form_without_a_session_is_refused(
    route: ConsoleRoute, console_server: ConsoleServer, anonymous: httpx.Client
) -> None:
    before = store_state(console_server)
    for cookie in ("", "keyhole_session=forged-" + uuid.uuid4().hex):
        answer = anonymous.request(
            route.method,
            route.path,
            data={**_PLAUSIBLE, "csrf_token": "x"},
            headers={**SAME_ORIGIN, "Cookie": cookie},
        )
        assert_refused(answer, 401, "session_ended")
        assert 'href="/console/sign-in"' in answer.text
    assert store_state(console_server) == before


# -- pages need a live session ---------------------------------------------------------------------


@pytest.mark.parametrize("route", PAGES, ids=str)
def test_a_page_without_a_session_sends_to_sign_in_and_shows_nothing(
    route: ConsoleRoute, anonymous: httpx.Client
) -> None:
    query = "?a=1&b=%2F"
    expected = f"{SIGN_IN}?next={quote(route.path + query, safe='')}"
    for cookie in ("", "keyhole_session=forged-" + uuid.uuid4().hex, "keyhole_session=" + "x" * 4000):
        for method in ("GET", "HEAD"):
            answer = anonymous.request(method, route.path + query, headers={"Cookie": cookie})
            assert answer.status_code == 303, (method, answer.text)
            assert answer.headers["location"] == expected
            assert answer.content == b""


def _end_by_time(console_server: ConsoleServer, client: ConsoleClient, column: str) -> None:
    past = (datetime.now(UTC) - timedelta(days=2)).strftime("%Y-%m-%d %H:%M:%S.%f")
    with closing(store(console_server.server)) as db, db:
        db.execute(
            f"UPDATE browser_sessions SET {column} = ? WHERE token_hash = ?", (past, token_hash(client))
        )


def _revoke_through_rest(console_server: ConsoleServer, org: Keys, key: str) -> None:
    with httpx.Client(base_url=console_server.url, timeout=30, headers=org.bearer) as rest:
        key_id = next(
            row["id"]
            for row in rest.get("/api/organization/keys").json()["data"]
            if row["prefix"] == key[:12]
        )
        assert rest.delete(f"/api/organization/keys/{key_id}").status_code == 200


def _delete_user_through_rest(console_server: ConsoleServer, org: Keys, user_id: str) -> None:
    with httpx.Client(base_url=console_server.url, timeout=30, headers=org.bearer) as rest:
        assert rest.delete(f"/api/organization/users/{user_id}").status_code == 200


@pytest.mark.parametrize(
    "ending", ["absolute expiry", "idle", "key revoked", "user deleted", "forged cookie"]
)
def test_an_ended_session_is_signed_out(console_server: ConsoleServer, org: Keys, ending: str) -> None:
    user_id, key = rest_key(console_server, org)
    client = sign_in(console_server.url, key)
    assert signed_in(client)
    if ending == "absolute expiry":
        _end_by_time(console_server, client, "expires_at")
    elif ending == "idle":
        _end_by_time(console_server, client, "seen_at")
    elif ending == "key revoked":
        _revoke_through_rest(console_server, org, key)
    elif ending == "user deleted":
        _delete_user_through_rest(console_server, org, user_id)
    token = client.http.cookies["keyhole_session"]
    if ending == "forged cookie":
        token = token[:-2] + ("BB" if token.endswith("AA") else "AA")
    with httpx.Client(
        base_url=console_server.url, timeout=30, headers={"Cookie": f"keyhole_session={token}"}
    ) as again:
        page = again.get("/console/keys")
        assert page.status_code == 303
        assert page.headers["location"].startswith(f"{SIGN_IN}?next=")
        refused = again.post(
            "/console/keys", data={"owner": "organization", "csrf_token": client.csrf}, headers=SAME_ORIGIN
        )
        assert_refused(refused, 401, "session_ended")
    if ending != "forged cookie":
        assert not session_row_exists(console_server, client)  # the store forgets it, too


def test_a_key_has_sessions_of_its_own_and_signing_out_ends_one(
    console_server: ConsoleServer, org: Keys
) -> None:
    _, key = rest_key(console_server, org)
    first = sign_in(console_server.url, key)
    second = sign_in(console_server.url, key)
    assert first.http.cookies["keyhole_session"] != second.http.cookies["keyhole_session"]
    assert first.csrf != second.csrf
    out = first.post("/console/sign-out")
    assert out.status_code == 303
    assert out.headers["location"] == f"{SIGN_IN}?signed_out=1"
    assert cookies_set(out)["keyhole_session"]["max-age"] == "0"
    assert not signed_in(first)
    assert signed_in(second)


# -- sign-in -----------------------------------------------------------------------------------------


def test_a_partner_key_is_refused_plainly(console_server: ConsoleServer, anonymous: httpx.Client) -> None:
    made = console_server.server.cli(
        "bootstrap",
        "--org",
        f"console-partner-{uuid.uuid4().hex[:8]}",
        "--user",
        "pat@partner.test",
        "--partner",
    )
    partner_key = json.loads(made.stdout.strip().splitlines()[-1])["partner_api_key"]
    answer = post_sign_in(anonymous, partner_key, token=sign_in_form(anonymous), address=fresh_address())
    assert answer.status_code == 403
    assert "a partner key cannot sign in to the console" in answer.text
    assert "keyhole_session" not in cookies_set(answer)
    assert partner_key not in answer.text


def _notice(answer: httpx.Response) -> str:
    found = re.search(r'<p class="notice notice-error" role="alert">([^<]*)</p>', answer.text)
    assert found is not None, answer.text
    return html.unescape(found.group(1))


def test_a_wrong_key_gets_one_plain_refusal(
    console_server: ConsoleServer, org: Keys, anonymous: httpx.Client
) -> None:
    _, revoked = rest_key(console_server, org)
    _revoke_through_rest(console_server, org, revoked)
    deleted_user, of_deleted_user = rest_key(console_server, org)
    _delete_user_through_rest(console_server, org, deleted_user)
    wrong = [
        "kh_u_" + "A" * 43,  # well-formed, unknown
        "kh_o_" + "B" * 43,
        revoked,
        of_deleted_user,
        "not a key at all",
        org.user_api_key[:-1],  # one character short of a live key
        org.user_api_key + "x",
    ]
    notices = set()
    for key in wrong:
        answer = post_sign_in(anonymous, key, token=sign_in_form(anonymous), address=fresh_address())
        assert answer.status_code == 401, key
        assert "keyhole_session" not in cookies_set(answer)
        assert key not in answer.text
        notices.add(_notice(answer))
    assert notices == {"That key was not accepted."}


def test_sign_in_attempts_are_limited_per_address(
    console_server: ConsoleServer, org: Keys, anonymous: httpx.Client
) -> None:
    address = fresh_address()
    token = sign_in_form(anonymous)
    for _ in range(20):
        refused = post_sign_in(anonymous, "kh_u_" + "C" * 43, token=token, address=address)
        assert refused.status_code == 401
        token = token_of(refused)  # each answer's form carries a new one
    limited = post_sign_in(anonymous, org.user_api_key, token=token, address=address)
    assert_refused(limited, 429, "rate_limited")
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert "keyhole_session" not in cookies_set(limited)  # even the right key waits
    elsewhere = post_sign_in(anonymous, org.user_api_key, token=token, address=fresh_address())
    assert elsewhere.status_code == 303


def test_login_csrf_is_refused(console_server: ConsoleServer, org: Keys) -> None:
    def attempt(*, cookie: bool, token: str | None, **headers: str) -> httpx.Response:
        """A sign-in with the right key; ``headers`` replace a same-origin browser's."""
        with httpx.Client(base_url=console_server.url, timeout=30) as client:
            issued = sign_in_form(client)
            if not cookie:
                client.cookies.clear()
            form = {"api_key": org.user_api_key, "next": "/console/keys"}
            if token is not None:
                form["sign_in_token"] = issued if token == "issued" else token
            return client.post(
                SIGN_IN, data=form, headers={"X-Forwarded-For": fresh_address(), **(headers or SAME_ORIGIN)}
            )

    with httpx.Client(base_url=console_server.url, timeout=30) as elsewhere:
        foreign_token = sign_in_form(elsewhere)  # a valid token of another browser
    refused = {
        "no token": attempt(cookie=True, token=None),
        "empty token": attempt(cookie=True, token=""),
        "no cookie": attempt(cookie=False, token="issued"),
        "another browser's token": attempt(cookie=True, token=foreign_token),
    }
    for name, answer in refused.items():
        assert_refused(answer, 403, "csrf_failed")
        assert "keyhole_session" not in cookies_set(answer), name
    for headers in origin_variants(console_server.url).values():
        answer = attempt(cookie=True, token="issued", **headers)
        assert_refused(answer, 403, "cross_site_request")
        assert "keyhole_session" not in cookies_set(answer)
    assert attempt(cookie=True, token="issued").status_code == 303  # the same request, from here


# -- where sign-in leads -------------------------------------------------------------------------

_PIECES = [
    "/",
    "//",
    "\\",
    "\\\\",
    "/console",
    "/console/",
    "/consolex",
    "@",
    "evil.test",
    "https:",
    "http:",
    "javascript:alert(1)",
    "data:text/html,x",
    "%2f",
    "%2F",
    "%5c",
    "%5C",
    "%2e",
    "%2E",
    "%2e%2e",
    ".",
    "..",
    "\t",
    "\n",
    "\r",
    " ",
    "\x00",
    "\x7f",
    "%09",
    "%0a",
    "%00",
    "?",
    "#",
    ":",
    "%40",
    "\u3002",
    "\uff0f",
    "\uff3c",
    "\uff0e",
    "/console@evil.test",
    "/console/..",
    "keys",
]
_spellings = st.lists(st.sampled_from(_PIECES), min_size=1, max_size=7).map("".join)
CANDIDATES = st.one_of(
    _spellings,
    _spellings.map(lambda spelling: "/console" + spelling),
    _spellings.map(lambda spelling: quote(spelling, safe="")),
    _spellings.map(lambda spelling: quote(quote(spelling, safe=""), safe="")),
    st.text(max_size=40),
)
NASTY = [
    "//evil.test",
    "https://evil.test/console",
    "/console@evil.test",
    "/\\evil.test",
    "\\\\evil.test",
    "/console/..//evil.test",
    "/console/%2e%2e/%2e%2e/evil",
    "/console/../api/organization/keys",
    "/%2fevil.test",
    "/\tconsole//evil.test",
    "/console\\..\\..\\evil",
    "javascript:alert(1)",
    "/consoleevil",
    "%2Fconsole%2Fkeys",
    "/console/.%2E/docs",
    # Inside /console but for a backslash, which a browser reads as a slash: out to /api.
    "/console/..\\..\\api/organization/keys",
    "/console/%2e%2e\\%2E%2E\\api/organization/keys",
    "/console/keys\\..\\..\\..\\evil",
    # Inside /console but for a tab, newline or carriage return, which a browser drops: out to /api.
    "/console/.\t./api",
    "/console/.\n./api",
    "/console/.\r./.\r./api",
    "/console/%2e\t%2e/api",
    "/console/keys/.\t./.\t./api/organization/keys",
    # The same, percent-encoded whole.
    quote("/console/..\\..\\api/organization/keys", safe=""),
    quote("/console/.\t./api", safe=""),
]


def stays_in_console(location: str) -> bool:
    """Whether a browser, resolving ``location`` against a console page, stays on this server
    under ``/console``. Conservative: anything a browser could read otherwise fails (it drops
    tabs and newlines, reads a backslash as a slash and ``%2e`` as a dot)."""
    if any(ord(character) < 0x21 or character in "\\\x7f" for character in location) or "//" in location:
        return False
    if not re.fullmatch(r"/console(?:[/?#].*)?", location, flags=re.DOTALL):
        return False
    path = re.split(r"[?#]", location, maxsplit=1)[0]
    return all(segment not in (".", "..") for segment in unquote(path).split("/"))


@HYPOTHESIS
@given(candidate=CANDIDATES)
def test_next_never_leads_out_of_the_console(
    candidate: str, admin: ConsoleClient, anonymous: httpx.Client
) -> None:
    signed_in_redirect = admin.get(SIGN_IN, params={"next": candidate})
    assert signed_in_redirect.status_code == 303
    assert stays_in_console(signed_in_redirect.headers["location"]), signed_in_redirect.headers["location"]
    form = anonymous.get(SIGN_IN, params={"next": candidate})
    carried = _NEXT.search(form.text)
    assert carried is not None
    assert stays_in_console(html.unescape(carried.group(1))), carried.group(1)


@pytest.mark.parametrize("candidate", NASTY)
def test_a_hostile_next_is_replaced_by_the_home_page(
    candidate: str, admin: ConsoleClient, anonymous: httpx.Client
) -> None:
    """Fixed, so no run depends on what the generator happens to try: signed in, the sign-in page
    sends to the home page; signed out, its form carries the home page."""
    signed_in_redirect = admin.get(SIGN_IN, params={"next": candidate})
    assert signed_in_redirect.status_code == 303
    assert signed_in_redirect.headers["location"] == "/console/connections"
    carried = _NEXT.search(anonymous.get(SIGN_IN, params={"next": candidate}).text)
    assert carried is not None
    assert html.unescape(carried.group(1)) == "/console/connections"


@pytest.mark.parametrize("candidate", NASTY)
def test_signing_in_with_a_hostile_next_stays_in_the_console(
    candidate: str, org: Keys, anonymous: httpx.Client
) -> None:
    answer = post_sign_in(
        anonymous,
        org.user_api_key,
        token=sign_in_form(anonymous),
        address=fresh_address(),
        next_path=candidate,
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/connections"


def test_a_next_within_the_console_is_kept(org: Keys, anonymous: httpx.Client) -> None:
    target = "/console/keys?prefix=kh_o_"
    answer = post_sign_in(
        anonymous, org.user_api_key, token=sign_in_form(anonymous), address=fresh_address(), next_path=target
    )
    assert answer.headers["location"] == target


# -- cookies ---------------------------------------------------------------------------------------


def test_cookies_are_http_only_and_strictly_same_site(org: Keys, anonymous: httpx.Client) -> None:
    form = anonymous.get(SIGN_IN)
    pre = cookies_set(form)["keyhole_sign_in"]
    answer = post_sign_in(anonymous, org.user_api_key, token=sign_in_form(anonymous), address=fresh_address())
    session = cookies_set(answer)["keyhole_session"]
    for cookie in (pre, session):
        assert "httponly" in cookie
        assert cookie["samesite"].lower() == "strict"
        assert cookie["path"] == "/"
        assert "domain" not in cookie
        assert "secure" not in cookie  # plain http on loopback, as "auto" says
    assert session["max-age"] == str(8 * 3600)
    assert len(session[""]) >= 43  # 256 random bits
    assert cookies_set(answer)["keyhole_sign_in"]["max-age"] == "0"  # the pre-session token goes


@pytest.mark.parametrize(
    "env",
    [{"KEYHOLE_CONSOLE_SECURE_COOKIES": "always"}, {"KEYHOLE_PUBLIC_URL": "https://keyhole.example"}],
    ids=["always", "auto-behind-https"],
)
def test_secure_cookies_are_host_prefixed(make_server: Any, env: dict[str, str]) -> None:
    server: KeyholeServer = make_server(**env)
    keys = server.bootstrap("secure-cookies", "sec@cookies.test")
    with httpx.Client(base_url=server.url, timeout=30) as client:
        form = client.get(SIGN_IN)
        pre = cookies_set(form)["__Host-keyhole_sign_in"]
        answer = client.post(
            SIGN_IN,
            data={"sign_in_token": token_of(form), "api_key": keys.user_api_key, "next": "/console/keys"},
            headers={**SAME_ORIGIN, "Cookie": f"__Host-keyhole_sign_in={pre['']}"},
        )
        assert answer.status_code == 303, answer.text
        session = cookies_set(answer)["__Host-keyhole_session"]
        for cookie in (pre, session):
            assert "secure" in cookie and "httponly" in cookie
            assert cookie["samesite"].lower() == "strict"
            assert cookie["path"] == "/" and "domain" not in cookie
        client.cookies.clear()
        page = client.get("/console/keys", headers={"Cookie": f"__Host-keyhole_session={session['']}"})
        assert page.status_code == 200
        unprefixed = client.get("/console/keys", headers={"Cookie": f"keyhole_session={session['']}"})
        assert unprefixed.status_code == 303  # only the prefixed cookie, which a browser guards, counts
        out = client.post(
            "/console/sign-out",
            data={"csrf_token": csrf_of(page.text)},
            headers={**SAME_ORIGIN, "Cookie": f"__Host-keyhole_session={session['']}"},
        )
        assert out.status_code == 303, out.text
        cleared = cookies_set(out)
        assert "keyhole_session" not in cleared  # the cookie cleared is the one that was set
        assert "secure" in cleared["__Host-keyhole_session"]  # else a browser ignores the clearing
        assert cleared["__Host-keyhole_session"]["max-age"] == "0"
        assert cleared["__Host-keyhole_session"]["path"] == "/"
        again = client.get("/console/keys", headers={"Cookie": f"__Host-keyhole_session={session['']}"})
        assert again.status_code == 303


def test_cookies_are_secure_behind_a_local_https_proxy(console_server: ConsoleServer) -> None:
    """A TLS-terminating proxy on the same machine says the browser's scheme in
    X-Forwarded-Proto, which the server trusts from loopback: the browser is on https."""
    with httpx.Client(base_url=console_server.url, timeout=30) as client:
        form = client.get(SIGN_IN, headers={"X-Forwarded-Proto": "https"})
        assert form.status_code == 200, form.text
        set_here = cookies_set(form)
        assert "keyhole_sign_in" not in set_here
        pre = set_here["__Host-keyhole_sign_in"]
        assert "secure" in pre and "httponly" in pre
        assert pre["path"] == "/" and "domain" not in pre
        plain = cookies_set(client.get(SIGN_IN))  # the same server, reached over http
        assert "secure" not in plain["keyhole_sign_in"]


def test_a_null_origin_is_refused_where_a_public_url_is_set(make_server: Any) -> None:
    """With a public URL among the accepted origins, the opaque origin of a sandboxed frame or a
    data: page is still no origin of the console's."""
    public = "https://keyhole.example"
    server: KeyholeServer = make_server(KEYHOLE_PUBLIC_URL=public)
    keys = server.bootstrap("null-origin", "nul@origin.test")
    with httpx.Client(base_url=server.url, timeout=30) as client:

        def sign_in_from(origin: str) -> httpx.Response:
            form = client.get(SIGN_IN)
            pre = cookies_set(form)["__Host-keyhole_sign_in"][""]
            return client.post(
                SIGN_IN,
                data={"sign_in_token": token_of(form), "api_key": keys.user_api_key, "next": "/console/keys"},
                headers={"Origin": origin, "Cookie": f"__Host-keyhole_sign_in={pre}"},
            )

        refused = sign_in_from("null")
        assert_refused(refused, 403, "cross_site_request")
        assert "__Host-keyhole_session" not in cookies_set(refused)
        signed_in_answer = sign_in_from(public)  # the same form, from the public URL's pages
        assert signed_in_answer.status_code == 303, signed_in_answer.text
        session = {
            "Cookie": f"__Host-keyhole_session={cookies_set(signed_in_answer)['__Host-keyhole_session']['']}"
        }
        client.cookies.clear()
        page = client.get("/console/keys", headers=session)
        assert page.status_code == 200
        csrf = csrf_of(page.text)
        for origin in ("null", server.url.replace("http:", "https:")):
            out = client.post(
                "/console/sign-out", data={"csrf_token": csrf}, headers={**session, "Origin": origin}
            )
            assert_refused(out, 403, "cross_site_request")
        assert client.get("/console/keys", headers=session).status_code == 200  # still signed in
        out = client.post(
            "/console/sign-out", data={"csrf_token": csrf}, headers={**session, "Origin": public}
        )
        assert out.status_code == 303


# -- another organization's objects, on every route ------------------------------------------------

# What each route parameter names: an object of one organization, or nothing anybody owns.
_OBJECT_PARAMETERS = ("connection_id", "call_id", "query_id", "job_id", "key_id", "user_id")
_SHARED_PARAMETERS = {"type_id": "api"}
# Where a page without an object in its path takes one from its query string.
_QUERY_OBJECTS = {"connection": "connection_id", "call": "call_id"}
_WAIT_SECONDS = 60


@dataclass
class Seeded:
    """An organization with a real object behind every route parameter, and its admin's session."""

    keys: Keys
    rest: httpx.Client
    console: ConsoleClient
    ids: dict[str, str]  # route parameter → its object's id; sql_connection_id for the query's
    names: dict[str, str]  # what only this organization's pages show
    upstream_secret: str  # what its connection sends upstream, which no page or answer shows

    def secrets(self) -> list[str]:
        """Everything of this organization another one must never see: names, ids, the secret."""
        return [
            *self.names.values(),
            *self.ids.values(),
            self.keys.organization_id,
            self.keys.user_id,
            self.upstream_secret,
        ]


def _wait_until(what: str, done: Callable[[], bool]) -> None:
    deadline = time.monotonic() + _WAIT_SECONDS
    while not done():
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.05)


@contextmanager
def seeded_organization(console_server: ConsoleServer, upstream_url: str) -> Iterator[Seeded]:
    """A new organization with an ``api`` connection to ``upstream_url`` and a SQLite one, a call,
    a finished async call (a job), a finished query, and a member with a key: made through the
    REST API and the console, as their users would, and settled (the call in the activity log)."""
    label = uuid.uuid4().hex[:8]
    keys = console_server.server.bootstrap(f"console-seeded-{label}", f"sid@seeded-{label}.test")
    upstream_secret = f"sek-seeded-{uuid.uuid4().hex}"
    names = {
        "connection": f"seeded-api-{label}",
        "sql connection": f"seeded-sql-{label}",
        "user": f"seeded-user-{label}@seeded.test",
        "path": f"/anything/seeded-path-{label}",
        "sql": f"SELECT 'seeded-sql-text-{label}' AS seeded_column_{label}",
    }

    def created(answer: httpx.Response) -> str:
        assert answer.status_code == 200, answer.text
        return str(answer.json()["data"]["id"])

    with httpx.Client(base_url=console_server.url, headers=keys.bearer, timeout=30) as rest:
        console = sign_in(console_server.url, keys.user_api_key)
        connection_id = created(
            rest.post(
                "/api/connections",
                json={
                    "name": names["connection"],
                    "type": "api",
                    "configuration": {
                        "url": upstream_url,
                        "auth": {"type": "bearer", "token": upstream_secret},
                    },
                    "validate": False,
                },
            )
        )
        with closing(sqlite3.connect(console_server.sql_root / f"seeded-{label}.sqlite")) as db:
            db.execute("CREATE TABLE t (n INTEGER)")
        sql_connection_id = created(
            rest.post(
                "/api/connections",
                json={
                    "name": names["sql connection"],
                    "type": "sqlite",
                    "configuration": {"path": f"seeded-{label}.sqlite"},
                },
            )
        )
        user_id = created(
            rest.post("/api/organization/users", json={"email": names["user"], "role": "member"})
        )
        minted = rest.post(f"/api/organizations/{keys.organization_id}/users/{user_id}/keys")
        key_id = created(minted)
        names["key prefix"] = minted.json()["data"]["value"][:12]
        request = {"method": "GET", "path": names["path"]}
        called = rest.post(f"/api/connections/{connection_id}/proxy", json={"request": request})
        assert called.status_code == 200, called.text
        call_id = str(called.json()["data"]["proxyCallId"])
        job = rest.post(f"/api/connections/{connection_id}/proxy", json={"request": request, "async": True})
        assert job.status_code == 200, job.text
        job_id = str(job.json()["data"]["jobId"])
        ran = console.post("/console/queries", {"connection_id": sql_connection_id, "sql": names["sql"]})
        assert ran.status_code == 303, ran.text
        query_id = ran.headers["location"].rsplit("/", 1)[1]

        def settled() -> bool:
            job_done = rest.get(f"/api/jobs/connectionproxy/{job_id}").json()["data"]["status"] == "done"
            query_done = "data-poll" not in console.get(f"/console/queries/{query_id}/status").text
            call_logged = console.get(f"/console/activity/{call_id}").status_code == 200
            return job_done and query_done and call_logged

        _wait_until("the seeded call, job and query", settled)
        ids = {
            "connection_id": connection_id,
            "sql_connection_id": sql_connection_id,
            "call_id": call_id,
            "query_id": query_id,
            "job_id": job_id,
            "key_id": key_id,
            "user_id": user_id,
        }
        try:
            yield Seeded(keys, rest, console, ids, names, upstream_secret)
        finally:
            console.http.close()


@pytest.fixture(scope="module")
def victim(console_server: ConsoleServer, httpbin_url: str) -> Iterator[Seeded]:
    with seeded_organization(console_server, httpbin_url) as seeded:
        yield seeded


@pytest.fixture(scope="module")
def rival(console_server: ConsoleServer) -> Iterator[ConsoleClient]:
    """The administrator of another organization, of this module's own (so what its pages list
    is this module's alone)."""
    keys = console_server.server.bootstrap(f"console-rival-{uuid.uuid4().hex[:8]}", "rex@rival.test")
    client = sign_in(console_server.url, keys.user_api_key)
    yield client
    client.http.close()


def _playground_form(victim: Seeded) -> list[tuple[str, str]]:
    return [
        ("connection", victim.ids["connection_id"]),
        ("method", "GET"),
        ("path", victim.names["path"]),
        ("query", ""),
        ("headers", ""),
        ("body_format", "json"),
        ("body", ""),
        ("action", "run"),
    ]


def _edit_form(victim: Seeded) -> list[tuple[str, str]]:
    """The victim's own edit form, as its page fills it, with a new name typed."""
    page = victim.console.get(f"/console/connections/{victim.ids['connection_id']}/edit")
    assert page.status_code == 200, page.text
    return as_posted(parse(page.text), {"name": "renamed-by-another-organization"})


def _delete_form(victim: Seeded) -> list[tuple[str, str]]:
    """The name typed to confirm: the connection's name now (the edit form renames it)."""
    found = victim.rest.get(f"/api/connections/{victim.ids['connection_id']}")
    assert found.status_code == 200, found.text
    return [("confirm_name", found.json()["data"]["name"])]


# Each state-changing route with the form that, sent by the organization owning the object,
# acts on it; None for a route that names no object of an organization (it acts on the
# sender's own). In the order the owner may send them one after another: what removes an object
# comes last.
_ACTS: dict[ConsoleRoute, Callable[[Seeded], list[tuple[str, str]]] | None] = {
    ConsoleRoute("POST", "/console/sign-out"): None,
    ConsoleRoute("POST", "/console/connections/new/{type_id}"): None,
    ConsoleRoute("POST", "/console/users"): None,
    ConsoleRoute("POST", "/console/connections/{connection_id}/test"): lambda victim: [],
    ConsoleRoute("POST", "/console/playground"): _playground_form,
    ConsoleRoute("POST", "/console/queries"): lambda victim: [
        ("connection_id", victim.ids["sql_connection_id"]),
        ("sql", "SELECT 1"),
    ],
    ConsoleRoute("POST", "/console/queries/{query_id}/cancel"): lambda victim: [],
    ConsoleRoute("POST", "/console/connections/{connection_id}/edit"): _edit_form,
    ConsoleRoute("POST", "/console/connections/{connection_id}/proxy"): lambda victim: [("enabled", "false")],
    ConsoleRoute("POST", "/console/keys/{key_id}/revoke"): lambda victim: [],
    ConsoleRoute("POST", "/console/keys"): lambda victim: [
        ("owner", victim.ids["user_id"]),
        ("name", "minted-by-another-organization"),
        ("replace", "1"),
    ],
    ConsoleRoute("POST", "/console/users/{user_id}/role"): lambda victim: [("role", "admin")],
    ConsoleRoute("POST", "/console/users/{user_id}/remove"): lambda victim: [],
    ConsoleRoute("POST", "/console/connections/{connection_id}/delete"): _delete_form,
}


def _filled(template: str, ids: dict[str, str]) -> str:
    def value(found: re.Match[str]) -> str:
        parameter = found.group(1)
        assert parameter in _OBJECT_PARAMETERS or parameter in _SHARED_PARAMETERS, (
            f"{template}: say whose object {parameter} names"
        )
        return ids[parameter] if parameter in _OBJECT_PARAMETERS else _SHARED_PARAMETERS[parameter]

    return _PARAM.sub(value, template)


def _names_an_object(route: ConsoleRoute) -> bool:
    return any(found.group(1) in _OBJECT_PARAMETERS for found in _PARAM.finditer(route.template))


def _carried(victim: Seeded, *sent: str) -> dict[str, str]:
    """The victim's ids a request carries (in its path, query or form)."""
    return {
        parameter: found for parameter, found in victim.ids.items() if any(found in part for part in sent)
    }


def _shown(answer: httpx.Response) -> str:
    return answer.text + str(answer.headers.get("location", ""))


def _seen(answer: httpx.Response, victim: Seeded, carried: dict[str, str]) -> list[str]:
    """What of the victim's an answer shows, but the ids the request itself carried."""
    shown = _shown(answer)
    for sent in carried.values():
        shown = shown.replace(sent, "")
    return [secret for secret in victim.secrets() if secret in shown]


def test_every_state_changing_route_says_what_it_acts_on() -> None:
    assert set(_ACTS) == set(FORMS)


def test_another_organization_s_objects_are_not_found_on_any_route(
    console_server: ConsoleServer, victim: Seeded, rival: ConsoleClient
) -> None:
    """Another organization's administrator, with a valid session and token of its own, names the
    victim's real objects on every route: each page answers as for an id nobody has (a 404 where
    the path names the object) and shows nothing of the victim's; each form is refused and
    changes nothing in the store. Then the same requests, from the victim, work: the ids and
    forms were real."""
    stand_ins = {parameter: str(uuid.uuid4()) for parameter in victim.ids}
    for route in PAGES:  # the victim's own first: every page of an object is there
        if _names_an_object(route):
            own = victim.console.get(_filled(route.template, victim.ids))
            assert own.status_code != 404 and own.status_code < 500, (str(route), own.text)

    for route in PAGES:
        query = {} if _names_an_object(route) else _QUERY_OBJECTS
        path = _filled(route.template, victim.ids)
        params = {name: victim.ids[parameter] for name, parameter in query.items()}
        answer = rival.get(path, params=params)
        control = rival.get(
            _filled(route.template, stand_ins),
            params={name: stand_ins[parameter] for name, parameter in query.items()},
        )
        if _names_an_object(route):
            assert answer.status_code == 404, (str(route), answer.status_code, answer.text)
        assert answer.status_code == control.status_code, (str(route), answer.text)
        carried = _carried(victim, path, *params.values())
        assert _seen(answer, victim, carried) == [], str(route)
        for parameter, sent in carried.items():  # echoed no more than an id nobody has
            assert _shown(answer).count(sent) == _shown(control).count(stand_ins[parameter]), str(route)

    before = store_state(console_server)
    acting = [(route, act) for route, act in _ACTS.items() if act is not None]
    for route, act in acting:
        pairs = act(victim)
        path = _filled(route.template, victim.ids)
        answer = send(rival, route.method, path, pairs)
        expected = {404} if _names_an_object(route) else set(range(400, 500))
        assert answer.status_code in expected, (str(route), answer.status_code, answer.text)
        assert _seen(answer, victim, _carried(victim, path, *(value for _, value in pairs))) == [], str(route)
        assert store_state(console_server) == before, str(route)
    assert signed_in(rival)

    for route, act in acting:  # last: some remove what they act on
        answer = send(victim.console, route.method, _filled(route.template, victim.ids), act(victim))
        assert answer.status_code < 400, (str(route), answer.status_code, answer.text)


# -- headers on every answer ----------------------------------------------------------------------


def assert_secured(answer: httpx.Response) -> None:
    for name, value in HEADERS.items():
        assert answer.headers.get(name) == value, (name, answer.request.method, answer.request.url)
    if answer.headers.get("content-type", "").startswith("text/html") or answer.status_code in (
        301,
        302,
        303,
    ):
        assert answer.headers["cache-control"] == "no-store", answer.request.url


def test_every_answer_carries_the_security_headers(admin: ConsoleClient, anonymous: httpx.Client) -> None:
    answers = [anonymous.get("/"), anonymous.get("/console/"), anonymous.get(SIGN_IN)]
    for route in ROUTES:
        if route.method == "GET":
            answers.append(anonymous.get(route.path))
            answers.append(admin.get(route.path))
        else:
            answers.append(anonymous.request(route.method, route.path, data={"x": "1"}, headers=SAME_ORIGIN))
            if route.template != "/console/sign-out":
                answers.append(
                    admin.http.request(route.method, route.path, data={"x": "1"}, headers=SAME_ORIGIN)
                )
    answers += [
        admin.get("/console/no-such-page"),
        admin.http.put("/console/keys"),
        admin.http.delete(SIGN_IN),
        admin.http.post(
            "/console/keys", content=b"{}", headers={**SAME_ORIGIN, "Content-Type": "application/json"}
        ),
    ]
    for answer in answers:
        assert answer.status_code < 500, (answer.request.url, answer.text)
        assert_secured(answer)


def test_static_files_are_served_only_by_their_digest(anonymous: httpx.Client) -> None:
    files = static_files()
    assert {"console.css", "console.js"} <= files.keys()
    for name, found in files.items():
        answer = anonymous.get(f"/console/static/{found.digest}/{name}")
        assert answer.status_code == 200
        assert answer.content == found.body
        assert answer.headers["content-type"] == found.media_type
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        for header, value in HEADERS.items():
            assert answer.headers[header] == value
        for wrong in (
            f"/console/static/{'0' * len(found.digest)}/{name}",
            f"/console/static/{found.digest.upper()}/{name}",
            f"/console/static/{name}",
            f"/console/static/{found.digest}/{name}.map",
            f"/console/static/{found.digest}/..%2f{name}",
            f"/console/static/{found.digest}/%2e%2e%2ftemplates%2fbase.html",
        ):
            refused = anonymous.get(wrong)
            assert refused.status_code == 404, wrong
            assert found.body not in refused.content
            assert_secured(refused)
    digest = next(iter(files.values())).digest
    for hidden in ("base.html", "__init__.py", "routes.py", "keyhole.db"):
        assert anonymous.get(f"/console/static/{digest}/{hidden}").status_code == 404


# -- malformed forms -------------------------------------------------------------------------------

_FORM = "application/x-www-form-urlencoded"
_MALFORMED: dict[str, tuple[int, str | None, bytes]] = {
    "json": (415, "application/json", b'{"csrf_token": "x"}'),
    "multipart": (
        415,
        "multipart/form-data; boundary=x",
        b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--\r\n",
    ),
    "text": (415, "text/plain", b"a=1"),
    "no content type": (415, None, b"a=1"),
    "oversized": (413, _FORM, b"a=" + b"x" * (1_048_576 + 1)),
    "invalid UTF-8": (400, _FORM, b"a=\xff\xfe"),
    "percent-encoded invalid UTF-8": (400, _FORM, b"a=%ff%c3%28"),
    "broken percent-encoding": (400, _FORM, b"a=%zz&b=1"),
    "a trailing percent": (400, _FORM, b"a=1%"),
    "thousands of fields": (400, _FORM, b"&".join(b"f%d=1" % number for number in range(5000))),
}


@pytest.mark.parametrize("route", CHANGING, ids=str)
@pytest.mark.parametrize("kind", list(_MALFORMED))
def test_a_malformed_form_gets_a_clear_4xx_page(
    route: ConsoleRoute, kind: str, console_server: ConsoleServer, admin: ConsoleClient
) -> None:
    status, content_type, body = _MALFORMED[kind]
    headers = {**SAME_ORIGIN, "X-CSRF-Token": admin.csrf, "X-Forwarded-For": fresh_address()}
    if content_type is not None:
        headers["Content-Type"] = content_type
    before = store_state(console_server)
    answer = admin.http.request(route.method, route.path, content=body, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert "Error code:" in answer.text
    assert_secured(answer)
    assert store_state(console_server) == before
    assert signed_in(admin)


_HOSTILE = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "x" * 20_000,
    "\x00\x01\x1b[31m\u202e\ufeff",
    "../../../../etc/passwd",
    "' OR '1'='1",
]


@pytest.mark.parametrize(
    "route", [route for route in FORMS if route.template != "/console/sign-out"], ids=str
)
def test_hostile_values_never_break_a_page(route: ConsoleRoute, admin: ConsoleClient) -> None:
    """With a valid token, whatever the fields hold: a page (a 4xx when refused), never a 500,
    and what was sent never comes back as markup."""
    for value in _HOSTILE:
        fields = [
            "owner",
            "name",
            "email",
            "role",
            "prefix",
            "replace",
            "sql",
            "connection_id",
            "method",
            "path",
            "body",
        ]
        answer = send(
            admin, route.method, route.path, [(field, value) for field in fields] + [("unknown", value)]
        )
        assert answer.status_code < 500, answer.text
        assert "<script>alert(1)" not in answer.text
        assert "<img src=x" not in answer.text
        assert_secured(answer)
    assert signed_in(admin)


def test_the_sign_in_form_stays_usable_after_a_refusal(org: Keys, anonymous: httpx.Client) -> None:
    """A refused key gives the form back with a new pre-session token that works."""
    refused = post_sign_in(anonymous, "wrong", token=sign_in_form(anonymous), address=fresh_address())
    assert refused.status_code == 401
    answer = post_sign_in(anonymous, org.user_api_key, token=token_of(refused), address=fresh_address())
    assert answer.status_code == 303
    assert csrf_of(anonymous.get("/console/keys").text)
