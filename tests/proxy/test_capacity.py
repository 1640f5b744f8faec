"""Egress capacity through a server: a saturated origin or organization answers a clean 504 within
the connection's timeout_ms, or at once 503/429 with Retry-After in each dialect's envelope, is
audited, and never holds up another origin or organization. Bad limits stop the server at start."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import PYTHON, KeyholeServer, Keys, free_port, server_env

from .support import Gateway, gateway

LIMITS = {
    "KEYHOLE_EGRESS_MAX_IN_FLIGHT": "50",
    "KEYHOLE_EGRESS_MAX_IN_FLIGHT_PER_ORIGIN": "2",
    "KEYHOLE_EGRESS_MAX_IN_FLIGHT_PER_ORGANIZATION": "3",
}
HANG_GUARD = 60  # seconds: only a hang ever gets near it
SLOW = {"timeout_ms": 60_000}
QUICK = {"timeout_ms": 300}  # for calls that must time out; any that must succeed get SLOW


class HeldUpstream:
    """Answers ``/hold`` only once released, anything else at once; counts what it received."""

    def __init__(self) -> None:
        self.seen = 0
        self.held = 0
        self.arrived = threading.Condition()
        self.release = threading.Event()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with upstream.arrived:
                    upstream.seen += 1
                    if self.path == "/hold":
                        upstream.held += 1
                        upstream.arrived.notify_all()
                if self.path == "/hold":
                    upstream.release.wait(HANG_GUARD)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def holding(self, count: int) -> None:
        with self.arrived:
            assert self.arrived.wait_for(lambda: self.held >= count, HANG_GUARD)

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstreams() -> Iterator[tuple[HeldUpstream, HeldUpstream]]:
    made = HeldUpstream(), HeldUpstream()
    yield made
    for upstream in made:
        upstream.stop()


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyholeServer]:
    home = tmp_path_factory.mktemp("keyhole-capacity")
    instance = KeyholeServer(home, server_env(home, **LIMITS)).start()
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def orgs(limited: KeyholeServer) -> Iterator[tuple[Gateway, Gateway, Keys]]:
    keys_a = limited.bootstrap("cap-a", "a@cap.test")
    a = gateway(limited.url, keys_a.bearer)
    b = gateway(limited.url, limited.bootstrap("cap-b", "b@cap.test").bearer)
    yield a, b, keys_a
    a.client.close()
    b.client.close()


def first_done(futures: list[Future[httpx.Response]], count: int) -> list[httpx.Response]:
    done = []
    for future in as_completed(futures, timeout=HANG_GUARD):
        done.append(future.result())
        if len(done) == count:
            return done
    raise AssertionError("fewer calls ended than expected")


def statuses(futures: list[Future[httpx.Response]]) -> list[int]:
    """Each call's status, and the upstream's inside a 200."""
    responses = [future.result(timeout=HANG_GUARD) for future in futures]
    return sorted(r.json()["data"]["status"] if r.status_code == 200 else r.status_code for r in responses)


def outcomes(gw: Gateway, connection: str) -> list[str]:
    return [call["outcome"] for call in gw.calls(connection, limit=50)["data"]]


def test_a_saturated_origin_answers_in_time_and_other_origins_are_unaffected(
    limited: KeyholeServer,
    orgs: tuple[Gateway, Gateway, Keys],
    upstreams: tuple[HeldUpstream, HeldUpstream],
) -> None:
    a, b, keys_a = orgs
    full, other = upstreams
    slow = a.create(full.url, proxy=SLOW)
    quick = a.create(full.url, proxy=QUICK)
    elsewhere = a.create(other.url, proxy=SLOW)
    with ThreadPoolExecutor(8) as pool:
        running = [pool.submit(a.call, slow, method="GET", path="/hold") for _ in range(2)]
        full.holding(2)

        # (a) the same origin: the clean timeout of the call, within its own timeout_ms
        body = a.refused(quick, 504, "upstream_timeout", method="GET", path="/")
        assert body["message"].startswith("timed out after 300 ms waiting for a free upstream slot")
        assert "the request was not sent" in body["message"]
        assert body["metadata"]["scope"] == "origin"
        # (b) another origin, of the same organization: at once
        assert a.ok(elsewhere, method="GET", path="/")["status"] == 200
        # the origin limit holds for every organization
        b.refused(b.create(full.url, proxy=QUICK), 504, "upstream_timeout", method="GET", path="/")

        # Two more wait (the most that may), so three further calls are refused at once.
        later = [pool.submit(a.call, slow, method="GET", path="/") for _ in range(5)]
        for response in first_done(later, 3):
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "1"
            error = response.json()
            assert (error["key"], error["metadata"]["scope"]) == ("origin_saturated", "origin")
        with httpx.Client(base_url=limited.url, headers={"x-api-key": keys_a.user_api_key}) as composio:
            response = composio.post(
                "/api/v3.1/tools/execute/proxy",
                json={
                    "endpoint": "/",
                    "method": "GET",
                    "custom_connection_data": {
                        "authScheme": "BEARER_TOKEN",
                        "toolkitSlug": "api",
                        "val": {"token": "t", "base_url": full.url},
                    },
                },
            )
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "1"
        error = response.json()["error"]
        assert (error["status"], error["code"], error["slug"]) == (503, 10503, "OriginSaturated")
        assert "not sent" in error["suggested_fix"]

        full.release.set()
        assert statuses(running) == [200] * 2
        assert statuses(later) == [200] * 2 + [503] * 3  # the two that waited got the freed slots
    assert full.seen == 4  # two held, two that waited: nothing refused was sent
    assert outcomes(a, quick) == ["upstream_timeout"]
    assert sorted(outcomes(a, slow)) == ["ok"] * 4 + ["origin_saturated"] * 3


def test_an_organization_at_its_limit_does_not_hold_up_another(
    orgs: tuple[Gateway, Gateway, Keys], upstreams: tuple[HeldUpstream, HeldUpstream]
) -> None:
    a, b, _ = orgs
    first, second = upstreams
    to_first, to_second = a.create(first.url, proxy=SLOW), a.create(second.url, proxy=SLOW)
    with ThreadPoolExecutor(8) as pool:
        running = [pool.submit(a.call, to_first, method="GET", path="/hold") for _ in range(2)]
        first.holding(2)
        running.append(pool.submit(a.call, to_second, method="GET", path="/hold"))
        second.holding(1)

        # organization a has its three calls in flight, though `second` could take one more...
        quick = a.create(second.url, proxy=QUICK)
        body = a.refused(quick, 504, "upstream_timeout", method="GET", path="/")
        assert body["metadata"]["scope"] == "organization"
        # ...which organization b gets at once.
        assert b.ok(b.create(second.url, proxy=SLOW), method="GET", path="/")["status"] == 200

        later = [pool.submit(a.call, to_second, method="GET", path="/") for _ in range(5)]
        for response in first_done(later, 2):  # three wait, the most that may
            assert response.status_code == 429, response.text
            assert response.headers["retry-after"] == "1"
            error = response.json()
            assert (error["key"], error["metadata"]["scope"]) == (
                "organization_concurrency_limited",
                "organization",
            )
        assert b.ok(b.create(second.url, proxy=SLOW), method="GET", path="/")["status"] == 200

        first.release.set()
        second.release.set()
        assert statuses(running) == [200] * 3
        assert statuses(later) == [200] * 3 + [429] * 2
    assert sorted(outcomes(a, to_second)) == ["ok"] * 4 + ["organization_concurrency_limited"] * 2


def test_a_bad_limit_stops_the_server_at_start(tmp_path: Path) -> None:
    # Every setting and kind of bad value: tests/egress/test_capacity.py.
    name = "KEYHOLE_EGRESS_MAX_IN_FLIGHT_PER_ORIGIN"
    result = subprocess.run(
        [PYTHON, "-m", "keyhole.cli", "serve", "--port", str(free_port())],
        env=server_env(tmp_path, **{name: "0"}),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD,
    )
    assert result.returncode == 2
    assert f"{name} must be a whole number from 1 to 100,000, not '0'" in result.stderr
