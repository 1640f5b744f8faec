"""Shared fixtures: real server processes, a real httpbin upstream, and service guards.

Services (PostgreSQL, MariaDB, Redis) may be missing on a laptop, where their tests skip;
under ``CI=true`` a missing service fails the run instead of skipping silently.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from side_envs import HTTPBIN, ensure

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
# What a run leaves for a person to look at (screenshots, fuzzing reports): kept after the run.
ARTIFACTS = Path(os.environ.get("KEYHOLE_ARTIFACTS") or ROOT / ".artifacts")
IN_CI = os.environ.get("CI", "").lower() == "true"
POSTGRES_URL = os.environ.get("KEYHOLE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("KEYHOLE_TEST_REDIS", "redis://127.0.0.1:6379/0")


def require_service(name: str, host: str, port: int) -> None:
    """Skip when a service is down, except in CI, where that is a failure."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError:
        message = f"{name} is not reachable on {host}:{port}"
        if IN_CI:
            pytest.fail(message + " (CI=true: a missing service is a failure)")
        pytest.skip(message)


@asynccontextmanager
async def fresh_postgres_database(prefix: str = "keyhole_test") -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for one test; dropped afterwards with its sessions."""
    require_service("PostgreSQL", "127.0.0.1", 5432)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield name
    finally:
        admin = await asyncpg.connect(POSTGRES_URL)
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            await admin.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served_in_thread(app: Any) -> Iterator[str]:
    """``app`` under uvicorn in a thread of this process (lifespan on), on a free loopback port:
    its base URL. For tests that must reach into the app; the others start real processes."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "a server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def wait_for(url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up within {timeout}s")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Keys:
    organization_id: str
    user_id: str
    user_api_key: str
    org_api_key: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.user_api_key}"}

    @property
    def basic(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.organization_id}:{self.org_api_key}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


@dataclass
class KeyholeServer:
    """A `keyhole serve` process on loopback with its own home directory."""

    home: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.home / "server.log"

    def start(self) -> KeyholeServer:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [PYTHON, "-m", "keyhole.cli", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.home,
        )
        wait_for(self.url + "/healthz", self.process)
        return self

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, "-m", "keyhole.cli", *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def bootstrap(self, org: str, user: str) -> Keys:
        result = self.cli("bootstrap", "--org", org, "--user", user)
        return Keys(**json.loads(result.stdout.strip().splitlines()[-1]))

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def server_env(home: Path, **overrides: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KEYHOLE_")}
    env.update(
        {
            "KEYHOLE_HOME": str(home),
            "KEYHOLE_EGRESS_ALLOW": "127.0.0.0/8",
            "KEYHOLE_AUDIT_FLUSH_SECONDS": "0.2",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    if env.get("KEYHOLE_DATABASE_URL", "").startswith("postgresql") and "KEYHOLE_MASTER_KEYS" not in env:
        # A shared store needs the master keys in the environment; one per deployment here.
        env["KEYHOLE_MASTER_KEYS"] = f"test:{base64.b64encode(os.urandom(32)).decode()}"
    return env


@pytest.fixture
def make_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[callable]:  # type: ignore[valid-type]
    """Factory for extra servers: ``make_server(home=None, **env)``; all stopped at teardown."""
    started: list[KeyholeServer] = []

    def factory(home: Path | None = None, **env: str) -> KeyholeServer:
        home = home or tmp_path_factory.mktemp("keyhole")
        server = KeyholeServer(home, server_env(home, **env)).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyholeServer]:
    """The shared server on the embedded defaults (SQLite, in-memory counters)."""
    home = tmp_path_factory.mktemp("keyhole-main")
    instance = KeyholeServer(home, server_env(home)).start()
    yield instance
    instance.stop()


@pytest.fixture(scope="session")
def org_a(server: KeyholeServer) -> Keys:
    return server.bootstrap("org-a", "alice@a.test")


@pytest.fixture(scope="session")
def org_b(server: KeyholeServer) -> Keys:
    return server.bootstrap("org-b", "bob@b.test")


@pytest.fixture(scope="session")
def httpbin_url() -> Iterator[str]:
    """httpbin, a real upstream nobody here wrote, on loopback."""
    port = free_port()
    process = subprocess.Popen(
        [str(ensure(HTTPBIN)), "-m", "httpbin.core", "--port", str(port), "--host", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(url + "/get", process)
    yield url
    stop_process(process)


@pytest.fixture
def api(server: KeyholeServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        yield client
