"""200 MB through the async proxy with the official SDK: every byte arrives, and the embedded
server (which runs the worker) holds it in constant memory on the way in and on the way out."""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from polytomic import Polytomic
from polytomic.types import ConnectionProxyCall

from conftest import KeyholeServer, server_env

from .support import TOKEN, Upstream, status_kib

MIB = 1024 * 1024
SIZE = 200 * 1000 * 1000
BOUND = 64 * MIB


def _reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS where the kernel allows it (clear_refs 5)."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    return status_kib(pid, "VmHWM") - status_kib(pid, "VmRSS") < 1024


@pytest.fixture(scope="module")
def quiet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyholeServer]:
    home = tmp_path_factory.mktemp("jobs-memory")
    server = KeyholeServer(home, server_env(home)).start()
    yield server
    server.stop()


def test_200_megabytes_in_constant_memory(quiet_server: KeyholeServer, slow_upstream: Upstream) -> None:
    assert quiet_server.process is not None
    pid = quiet_server.process.pid
    keys = quiet_server.bootstrap("memory", "m@memory.test")
    client = Polytomic(base_url=quiet_server.url, token=keys.user_api_key, max_retries=0, timeout=120)
    connection = client.connections.create(
        name="big",
        type="api",
        configuration={"url": slow_upstream.url, "auth": {"type": "bearer", "token": TOKEN}},
        validate=False,
    ).data.id

    def run(size: int) -> tuple[dict[str, object], str]:
        handle = client.connections.proxy.execute_proxy(
            id=connection,
            request=ConnectionProxyCall(method="GET", path="/bytes", query={"size": size}),
            async_=True,
        ).data
        assert handle is not None and handle.status == 202
        deadline = time.monotonic() + 300
        while True:
            job = client.jobs.get(type="connectionproxy", id=str(handle.job_id)).data
            assert job is not None
            if job.status in ("done", "failed") or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert job.status == "done", job.error
        assert isinstance(job.result, dict)
        digest = hashlib.sha256()
        with httpx.stream("GET", str(job.result["bodyDownloadUrl"]), timeout=300) as download:
            assert download.status_code == 200
            for chunk in download.iter_bytes():
                digest.update(chunk)
        return job.result, digest.hexdigest()

    run(8 * MIB)  # warm every code path (imports, pools, buffers) before measuring

    before = status_kib(pid, "VmRSS")
    peak_known = _reset_peak(pid)
    result, digest = run(SIZE)
    after = status_kib(pid, "VmRSS")
    peak = status_kib(pid, "VmHWM") if peak_known else after

    assert result["contentLength"] == SIZE and result["truncated"] is False
    assert digest == _expected_digest(SIZE)
    growth = (max(after, peak) - before) * 1024
    print(f"RSS before {before // 1024} MiB, after {after // 1024} MiB, peak {peak // 1024} MiB")
    assert growth < BOUND, f"the server grew by {growth // MIB} MiB moving {SIZE // MIB} MB"


def _expected_digest(size: int) -> str:
    from .upstream_server import CHUNK, pattern_chunk

    digest = hashlib.sha256()
    index = 0
    while size > 0:
        block = pattern_chunk(index, min(CHUNK, size))
        digest.update(block)
        size -= len(block)
        index += 1
    return digest.hexdigest()
