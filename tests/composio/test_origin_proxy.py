"""Absolute endpoints end to end: the Composio proxy route refuses every off-site or off-path URL
with 400 ``OriginMismatch`` and the upstream receives nothing.

Upstreams are recorders on loopback. Tests that need DNS names run a server whose resolver
answers every name with 127.0.0.1 (``named_hosts.py``): no DNS lookup, no traffic off the machine.
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import PYTHON, KeyholeServer, server_env, stop_process, wait_for

from .conftest import TOKEN, Composio, envelope
from .test_origin import MINIMAL_LIST

LAUNCHER = Path(__file__).with_name("named_hosts.py")


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    host: str
    authorization: str


@dataclass
class Recorder:
    """An HTTP upstream on 127.0.0.1 that answers 200 and records every request it receives."""

    seen: list[Seen] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def url(self, host: str = "127.0.0.1", path: str = "") -> str:
        return f"http://{host}:{self.port}{path}"

    def start(self) -> Recorder:
        seen = self.seen

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                seen.append(
                    Seen(
                        self.command,
                        self.path,
                        self.headers.get("Host", ""),
                        self.headers.get("Authorization", ""),
                    )
                )
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _record

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


@dataclass
class NamedHostsServer(KeyholeServer):
    """``keyhole serve`` whose resolver answers every host name with 127.0.0.1."""

    def start(self) -> NamedHostsServer:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [PYTHON, str(LAUNCHER), "serve", "--port", str(self.port)],
            env={**self.env, "KEYHOLE_TEST_RESOLVE_ALL": "127.0.0.1"},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.home,
        )
        wait_for(self.url + "/healthz", self.process)
        return self


def _composio(server: KeyholeServer, org: str) -> Iterator[Composio]:
    keys = server.bootstrap(org, f"admin@{org}.test")
    with httpx.Client(base_url=server.url, headers={"x-api-key": keys.user_api_key}, timeout=30) as client:
        yield Composio(client)


@pytest.fixture(scope="module")
def recorders() -> Iterator[tuple[Recorder, Recorder]]:
    first, second = Recorder().start(), Recorder().start()
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Composio]:
    home = tmp_path_factory.mktemp("keyhole-named")
    server = NamedHostsServer(home, server_env(home)).start()
    try:
        yield from _composio(server, "org-named")
    finally:
        server.stop()


@pytest.fixture(scope="module")
def named_custom_list(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Composio]:
    home = tmp_path_factory.mktemp("keyhole-named-list")
    listed = home / "public_suffix_list.dat"
    listed.write_text(MINIMAL_LIST, encoding="utf-8")
    server = NamedHostsServer(home, server_env(home, KEYHOLE_PUBLIC_SUFFIX_LIST=str(listed))).start()
    try:
        yield from _composio(server, "org-named-list")
    finally:
        server.stop()


def _proxy(cio: Composio, account: str, endpoint: str) -> httpx.Response:
    return cio.proxy({"endpoint": endpoint, "method": "GET", "connected_account_id": account})


def assert_refused(cio: Composio, account: str, endpoint: str, *recorders: Recorder) -> None:
    before = [len(recorder.seen) for recorder in recorders]
    response = _proxy(cio, account, endpoint)
    envelope(response, 400, "OriginMismatch")
    assert TOKEN not in response.text
    assert [len(recorder.seen) for recorder in recorders] == before, endpoint


def assert_reaches(cio: Composio, account: str, endpoint: str, recorder: Recorder, host: str) -> Seen:
    before = len(recorder.seen)
    response = _proxy(cio, account, endpoint)
    assert response.status_code == 200, response.text
    assert len(recorder.seen) == before + 1
    seen = recorder.seen[-1]
    assert seen.host == f"{host}:{recorder.port}" and seen.authorization == f"Bearer {TOKEN}"
    return seen


# -- loopback addresses ------------------------------------------------------------------------


def test_another_port_on_the_same_address_receives_nothing(
    cio_a: Composio, recorders: tuple[Recorder, Recorder], user_id: str
) -> None:
    own, other = recorders
    account = cio_a.account(own.url(), user_id=user_id)
    assert_refused(cio_a, account, other.url(path="/x"), own, other)
    assert_refused(cio_a, account, other.url("localhost", "/x"), own, other)
    assert_refused(cio_a, account, own.url("localhost", "/x"), own, other)
    assert_refused(cio_a, account, own.url("127.0.0.2", "/x"), own, other)
    assert_refused(cio_a, account, own.url(path="/x").replace("http://", "https://"), own, other)
    assert_reaches(cio_a, account, own.url(path="/x"), own, "127.0.0.1")
    assert not other.seen


def test_the_base_path_is_kept_for_absolute_endpoints(
    cio_a: Composio, recorders: tuple[Recorder, Recorder], user_id: str
) -> None:
    own, other = recorders
    account = cio_a.account(own.url(path="/v2"), user_id=user_id)
    for path in ("/v2x", "/v1/users", "/", "/V2/users", "/v%32/users", "/v2%2Fusers"):
        assert_refused(cio_a, account, own.url(path=path), own, other)
    before = len(own.seen)
    for path in ("//v2/users", "/v2%2F..%2Fadmin", "/v2/../admin", "/v2/%2e%2e/admin"):
        envelope(_proxy(cio_a, account, own.url(path=path)), 400)
    assert len(own.seen) == before
    assert assert_reaches(cio_a, account, own.url(path="/v2/users?page=2"), own, "127.0.0.1").path == (
        "/v2/users?page=2"
    )
    assert assert_reaches(cio_a, account, "/users", own, "127.0.0.1").path == "/v2/users"
    assert not other.seen


# -- DNS names (the test's own resolver) ---------------------------------------------------------


def test_the_reviews_port_example(named: Composio, recorders: tuple[Recorder, Recorder]) -> None:
    """``api.x.com:8080`` → ``api.x.com:9999`` passed while the host had a registrable domain."""
    own, other = recorders
    account = named.account(own.url("api.example.com"))
    assert_refused(named, account, other.url("api.example.com", "/x"), own, other)
    assert_refused(named, account, other.url("www.example.com", "/x"), own, other)
    assert_refused(named, account, "http://api.example.com/x", own, other)
    assert_reaches(named, account, own.url("www.example.com", "/x"), own, "www.example.com")
    assert_reaches(named, account, own.url("API.Example.com.", "/x"), own, "api.example.com")


@pytest.mark.parametrize(
    ("base_host", "endpoint_host"),
    [
        ("victim.herokuapp.com", "attacker.herokuapp.com"),
        ("a.github.io", "b.github.io"),
        ("a.github.io", "github.io"),
        ("bucket-a.s3.amazonaws.com", "bucket-b.s3.amazonaws.com"),
        ("victim.appspot.com", "attacker.appspot.com"),
        ("gmail.googleapis.com", "www.googleapis.com"),  # hosted Composio allows it; the design does not
        ("github.com", "g\u0456thub.com"),  # a Cyrillic i
        ("api.example.com", "api.example.com.evil.example.net"),
    ],
)
def test_sites_of_the_review_receive_nothing(
    named: Composio, recorders: tuple[Recorder, Recorder], base_host: str, endpoint_host: str
) -> None:
    own, other = recorders
    account = named.account(own.url(base_host))
    assert_refused(named, account, own.url(endpoint_host, "/x"), own, other)
    assert_reaches(named, account, own.url(base_host.upper(), "/x"), own, base_host)


def test_hosts_of_one_site_under_a_private_suffix(
    named: Composio, recorders: tuple[Recorder, Recorder]
) -> None:
    own, _ = recorders
    account = named.account(own.url("api.victim.herokuapp.com"))
    assert_reaches(named, account, own.url("www.victim.herokuapp.com", "/x"), own, "www.victim.herokuapp.com")
    assert_reaches(named, account, own.url("victim.herokuapp.com", "/x"), own, "victim.herokuapp.com")


PRIVATE_SUFFIXES = (
    "herokuapp.com",
    "github.io",
    "appspot.com",
    "s3.amazonaws.com",
    "netlify.app",
    "pages.dev",
)
LABEL = st.from_regex(r"[a-z]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@settings(max_examples=25, deadline=None, database=None)
@given(
    suffix=st.sampled_from(PRIVATE_SUFFIXES),
    labels=st.tuples(LABEL, LABEL).filter(lambda pair: pair[0] != pair[1]),
    prefix=st.sampled_from(["", "api.", "www."]),
    change=st.sampled_from(["host", "port", "scheme"]),
)
def test_generated_siblings_ports_and_schemes_receive_nothing(
    named: Composio,
    recorders: tuple[Recorder, Recorder],
    suffix: str,
    labels: tuple[str, str],
    prefix: str,
    change: str,
) -> None:
    own, other = recorders
    victim, attacker = labels
    account = named.account(own.url(f"{victim}.{suffix}"))
    if change == "host":
        endpoint = own.url(f"{prefix}{attacker}.{suffix}", "/x")
    elif change == "port":
        endpoint = other.url(f"{prefix}{victim}.{suffix}", "/x")
    else:
        endpoint = own.url(f"{prefix}{victim}.{suffix}", "/x").replace("http://", "https://")
    assert_refused(named, account, endpoint, own, other)


# -- the operator's list -------------------------------------------------------------------------


def test_the_operators_list_replaces_the_snapshot(
    named: Composio, named_custom_list: Composio, recorders: tuple[Recorder, Recorder]
) -> None:
    """``tenants.example.com`` is a suffix only on the operator's list: there its tenants are
    separate sites, while the bundled snapshot counts them as one."""
    own, other = recorders
    snapshot = named.account(own.url("a.tenants.example.com"))
    assert_reaches(named, snapshot, own.url("b.tenants.example.com", "/x"), own, "b.tenants.example.com")
    operator = named_custom_list.account(own.url("a.tenants.example.com"))
    assert_refused(named_custom_list, operator, own.url("b.tenants.example.com", "/x"), own, other)
    assert_reaches(
        named_custom_list,
        operator,
        own.url("api.a.tenants.example.com", "/x"),
        own,
        "api.a.tenants.example.com",
    )


def test_an_incomplete_list_stops_the_server(tmp_path: Path) -> None:
    listed = tmp_path / "public_suffix_list.dat"
    listed.write_text(MINIMAL_LIST.split("// ===BEGIN PRIVATE")[0], encoding="utf-8")
    server = KeyholeServer(tmp_path, server_env(tmp_path, KEYHOLE_PUBLIC_SUFFIX_LIST=str(listed)))
    with pytest.raises(RuntimeError, match="exited"):
        server.start()
    assert server.process is not None
    stop_process(server.process)
    assert "KEYHOLE_PUBLIC_SUFFIX_LIST" in server.logs()
    assert "not a complete public-suffix list" in server.logs()
