"""The parts of the chaos test: an upstream that can break off mid-body, moto's S3 server, a
distributed deployment whose processes are killed and restarted, and a client that records
every exchange it makes (answered or not).

Run as a module from the tests directory, this file serves the two of them that run as their
own processes: ``python -m chaos.support upstream --port N``, the jobs suite's routes plus
``/cut?size=N&sent=K`` (announces N bytes, sends K, closes the connection), and
``python -m chaos.support s3 --port N``, moto's S3 server telling when each multipart upload began.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from random import Random
from typing import Any

import httpx
from aiohttp import web

from blobs.conftest import BUCKET, S3Server
from conftest import PYTHON, KeyholeServer, free_port, server_env, stop_process, wait_for
from jobs import upstream_server
from jobs.support import kill9

TESTS = Path(__file__).resolve().parents[1]
CUT_CHUNK = 64 * 1024
START_SECONDS = 90.0  # a start takes seconds of CPU (imports); on two busy cores, far longer
WORKER_STARTED = re.compile(r"worker \S+ started")

# -- the upstream ----------------------------------------------------------------------------


async def _cut(request: web.Request) -> web.StreamResponse:
    """Content-Length ``size``, then ``sent`` bytes, then the connection closes."""
    size, sent = int(request.query["size"]), int(request.query.get("sent", "10"))
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = size
    await response.prepare(request)
    written = 0
    while written < sent:
        piece = min(CUT_CHUNK, sent - written)
        await response.write(b"c" * piece)
        written += piece
    assert request.transport is not None
    request.transport.close()  # close, not abort: what was written still goes out first
    return response


async def _handle(request: web.Request) -> web.StreamResponse:
    if request.path == "/cut":
        return await _cut(request)
    return await upstream_server.handle(request)


def _serve_upstream(port: int) -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _handle)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


@contextmanager
def chaos_upstream() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [PYTHON, "-m", "chaos.support", "upstream", "--port", str(port)],
        cwd=TESTS,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/_hits", process)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)


# -- S3 --------------------------------------------------------------------------------------


def _serve_s3(port: int) -> None:
    """moto's S3 server, except that ListMultipartUploads tells when each upload began: moto
    answers a fixed date in 2010, which makes every upload, even one being written, look
    abandoned to a sweep that goes by age."""
    from moto.core.responses import ActionResult
    from moto.s3 import models, responses
    from moto.server import main

    began: dict[str, str] = {}
    initialise = models.FakeMultipart.__init__

    def recording(self: Any, *args: Any, **kwargs: Any) -> None:
        initialise(self, *args, **kwargs)
        began[self.id] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    class Listing(ActionResult):
        def __init__(self, result: object) -> None:
            if isinstance(result, dict):
                for upload in result.get("Uploads", []):
                    upload["Initiated"] = began.get(upload["UploadId"], upload["Initiated"])
            super().__init__(result)

    models.FakeMultipart.__init__ = recording  # type: ignore[method-assign]
    responses.ActionResult = Listing  # type: ignore[attr-defined]
    main(["-H", "127.0.0.1", "-p", str(port)])


@contextmanager
def moto_s3() -> Iterator[S3Server]:
    """moto's S3 server on loopback with an empty bucket (as the blob suite's ``s3`` fixture)."""
    port = free_port()
    process = subprocess.Popen(
        [PYTHON, "-m", "chaos.support", "s3", "--port", str(port)],
        cwd=TESTS,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/moto-api/", process)
        server = S3Server(f"http://127.0.0.1:{port}")
        client = server.client()
        client.create_bucket(Bucket=BUCKET)
        probe = client.create_multipart_upload(Bucket=BUCKET, Key="probe")
        [upload] = incomplete_uploads(server)
        client.abort_multipart_upload(Bucket=BUCKET, Key="probe", UploadId=probe["UploadId"])
        age = datetime.now(UTC) - upload["Initiated"]
        assert abs(age.total_seconds()) < 60, f"moto reports uploads begun at {upload['Initiated']}"
        yield server
    finally:
        stop_process(process)


def incomplete_uploads(s3: S3Server) -> list[dict[str, Any]]:
    uploads: list[dict[str, Any]] = s3.client().list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    return uploads


# -- the deployment --------------------------------------------------------------------------


def master_keys() -> str:
    return f"chaos:{base64.b64encode(os.urandom(32)).decode()}"


@dataclass
class Cluster:
    """Two ``keyhole serve`` and two ``keyhole worker`` processes on one store, named
    ``server-0``, ``server-1``, ``worker-0`` and ``worker-1``; any of them may be killed.

    Each has its own home and log file (appended across restarts, with a line at every kill).
    ``up`` holds the names of the processes running (for a server: answering ``/healthz``)."""

    root: Path
    settings: dict[str, str]
    servers: list[KeyholeServer] = field(default_factory=list)
    workers: list[subprocess.Popen[bytes] | None] = field(default_factory=list)
    kills: dict[str, list[float]] = field(default_factory=dict)  # name → time.time() of each SIGKILL
    up: set[str] = field(default_factory=set)
    favoured_kills: int = 0

    def __post_init__(self) -> None:
        for index in range(2):
            home = self.root / f"server-{index}"
            home.mkdir(parents=True, exist_ok=True)
            self.servers.append(KeyholeServer(home, server_env(home, **self.settings)))
            (self.root / f"worker-{index}").mkdir(parents=True, exist_ok=True)
            self.workers.append(None)
        self.kills = {name: [] for name in self.names}

    @property
    def names(self) -> list[str]:
        return ["server-0", "server-1", "worker-0", "worker-1"]

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    def log_path(self, name: str) -> Path:
        kind, index = name.split("-")
        return self.servers[int(index)].log_path if kind == "server" else self.root / name / "worker.log"

    def start(self, name: str) -> None:
        kind, index = name.split("-")
        if kind == "server":
            server = self.servers[int(index)]
            try:
                server.start()  # waits until /healthz answers
            except RuntimeError:
                if server.process is None or server.process.poll() is not None:
                    raise
                wait_for(server.url + "/healthz", server.process, timeout=START_SECONDS)
        else:
            home, log = self.root / name, self.log_path(name)
            offset = log.stat().st_size if log.exists() else 0
            process = subprocess.Popen(
                [PYTHON, "-m", "keyhole.cli", "worker"],
                env=server_env(home, **self.settings),
                cwd=home,
                stdout=log.open("ab"),
                stderr=subprocess.STDOUT,
            )
            self.workers[int(index)] = process
            _wait_for_line(log, offset, WORKER_STARTED, process)
        self.up.add(name)

    def kill(self, name: str) -> None:
        self.up.discard(name)
        kind, index = name.split("-")
        if kind == "server":
            process, self.servers[int(index)].process = self.servers[int(index)].process, None
        else:
            process, self.workers[int(index)] = self.workers[int(index)], None
        assert process is not None and process.poll() is None, f"{name} is not running"
        kill9(process)
        self.kills[name].append(time.time())
        with self.log_path(name).open("a") as log:
            log.write(f"\n----- chaos: SIGKILL at {time.strftime('%H:%M:%S')} -----\n")

    def stop(self) -> None:
        self.up.clear()
        for process in self.workers:
            if process is not None:
                stop_process(process)
        self.workers = [None] * len(self.workers)
        for server in self.servers:
            server.stop()

    def pid(self, name: str) -> int | None:
        kind, index = name.split("-")
        process = self.servers[int(index)].process if kind == "server" else self.workers[int(index)]
        return None if process is None else process.pid

    def rampage(
        self,
        rng: Random,
        stop: threading.Event,
        *,
        every: tuple[float, float],
        favour: Callable[[], set[int]],
    ) -> None:
        """Until ``stop``: every ``every`` seconds SIGKILL a random process, and start it again
        after a moment (in the background: starts are slow). A server is only killed while the
        other one answers, so that one always does, except while both are starting. Half of the
        time the victim is one of the processes whose pid ``favour`` returns, if any is up."""
        restarts: list[threading.Thread] = []
        failures: list[BaseException] = []

        def restart(name: str, delay: float) -> None:
            try:
                time.sleep(delay)
                self.start(name)
            except BaseException as error:
                failures.append(error)

        while not stop.wait(rng.uniform(*every)) and not failures:
            candidates = [
                name
                for name in sorted(self.up)
                if name.startswith("worker") or {"server-0", "server-1"} <= self.up
            ]
            if not candidates:
                continue
            favoured = [name for name in candidates if self.pid(name) in favour()]
            victim = rng.choice(favoured if favoured and rng.random() < 0.5 else candidates)
            self.favoured_kills += victim in favoured
            self.kill(victim)
            restarts.append(threading.Thread(target=restart, args=(victim, rng.uniform(0.0, 1.5))))
            restarts[-1].start()
        for thread in restarts:
            thread.join()
        if failures:
            raise failures[0]

    def tally(self, pattern: str) -> int:
        """The sum of the numbers that ``pattern``'s group captures in every log line."""
        return sum(
            int(found)
            for name in self.names
            if self.log_path(name).exists()
            for found in re.findall(pattern, self.log_path(name).read_text(errors="replace"))
        )

    def evidence(self, pattern: str = r'"level": ?"(error|critical)"|Traceback', limit: int = 6000) -> str:
        """Log lines matching ``pattern`` from every process, at most ``limit`` characters."""
        found: list[str] = []
        for name in self.names:
            path = self.log_path(name)
            if not path.exists():
                continue
            for line in path.read_text(errors="replace").splitlines():
                if re.search(pattern, line):
                    found.append(f"[{name}] {line[:1500]}")
        text = "\n".join(found)
        return text if len(text) <= limit else text[:limit] + f"\n… ({len(found)} lines in all)"


def _wait_for_line(
    log: Path, offset: int, pattern: re.Pattern[str], process: subprocess.Popen[bytes]
) -> None:
    """Until a line past ``offset`` of ``log`` matches ``pattern``; fails if ``process`` exits."""
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{log} ended: the process exited with {process.returncode}")
        with log.open("rb") as lines:
            lines.seek(offset)
            if pattern.search(lines.read().decode(errors="replace")):
                return
        time.sleep(0.1)
    raise RuntimeError(f"{pattern.pattern!r} did not appear in {log} within {START_SECONDS} s")


# -- the client ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One HTTP request of the test; ``status`` is None when no answer came back. The requests
    of one call (the first try and its retry on the other server) share ``call``."""

    call: int
    kind: str  # sync | async | query | cancel | poll | audit
    variant: str
    server: int
    answered_at: float  # time.time(), also set (to the failure time) when unanswered
    status: int | None
    body: Any  # parsed JSON, or the text when not JSON
    failure: str | None = None  # the transport error when unanswered

    @property
    def answered(self) -> bool:
        return self.status is not None


class Ledger:
    """Every exchange of every client thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.exchanges: list[Exchange] = []

    def add(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)

    def of(self, *kinds: str) -> list[Exchange]:
        with self._lock:
            return [exchange for exchange in self.exchanges if exchange.kind in kinds]


_CALLS = itertools.count()


class Client:
    """One caller of the API through both servers: a server that does not answer is retried
    once on the other; a transport error is recorded as "no answer"."""

    def __init__(self, urls: list[str], headers: dict[str, str], ledger: Ledger, rng: Random) -> None:
        timeout = httpx.Timeout(30.0, connect=3.0)
        self._http = [httpx.Client(base_url=url, headers=headers, timeout=timeout) for url in urls]
        self._ledger = ledger
        self._rng = rng

    def call(self, kind: str, variant: str, method: str, path: str, *, json: Any = None) -> Exchange:
        number, first = next(_CALLS), self._rng.randrange(len(self._http))
        exchange: Exchange | None = None
        for server in (first, 1 - first):
            exchange = self._once(number, kind, variant, server, method, path, json)
            self._ledger.add(exchange)
            if exchange.answered:
                break
        assert exchange is not None
        return exchange

    def _once(
        self, number: int, kind: str, variant: str, server: int, method: str, path: str, json: Any
    ) -> Exchange:
        try:
            response = self._http[server].request(method, path, json=json)
        except httpx.TransportError as error:
            return Exchange(number, kind, variant, server, time.time(), None, None, type(error).__name__)
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text
        return Exchange(number, kind, variant, server, time.time(), response.status_code, body)

    def close(self) -> None:
        for http in self._http:
            http.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["upstream", "s3"])
    parser.add_argument("--port", type=int, required=True)
    arguments = parser.parse_args()
    (_serve_upstream if arguments.role == "upstream" else _serve_s3)(arguments.port)
