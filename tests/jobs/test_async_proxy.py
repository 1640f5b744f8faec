"""The async proxy on both engines: a GET accepted as a job, its body streamed to the blob
store and fetched through a download URL; failures end the job cleanly."""

from __future__ import annotations

import hashlib
import time
import uuid
from typing import Any

import httpx
import pytest
from polytomic import Polytomic
from polytomic.types import ConnectionProxyCall

from conftest import Keys
from keyhole.vault.scrub import Scrubber

from .support import TOKEN, AsyncApi, Deployment, Upstream
from .upstream_server import pattern_chunk

MIB = 1024 * 1024


def expected_bytes(size: int) -> bytes:
    chunks, index = [], 0
    while size > 0:
        chunks.append(pattern_chunk(index, min(64 * 1024, size)))
        size -= len(chunks[-1])
        index += 1
    return b"".join(chunks)


def test_async_get_lands_in_a_download_url(
    deployment: Deployment, client_a: AsyncApi, slow_upstream: Upstream
) -> None:
    connection = client_a.connection(slow_upstream.url)
    size = 3 * MIB + 123
    handle = client_a.accepted(connection, "/bytes", query={"size": size})
    assert handle["jobStatus"] in ("created", "running", "done")
    assert handle["jobUrl"] == f"{deployment.server.url}/api/jobs/connectionproxy/{handle['jobId']}"
    assert handle["proxyCallId"]

    job = client_a.wait(handle["jobId"])
    assert (job["job_id"], job["type"], job["status"], job["error"]) == (
        handle["jobId"],
        "connectionproxy",
        "done",
        None,
    )
    result = job["result"]
    assert result["status"] == 200
    assert result["contentType"] == "application/octet-stream"
    assert result["contentLength"] == size
    assert result["truncated"] is False
    assert result["proxyCallId"] == handle["proxyCallId"]
    assert isinstance(result["latencyMs"], int)
    assert "Content-Length" not in result["headers"]
    url = result["bodyDownloadUrl"]
    assert url.startswith(f"{deployment.server.url}/api/blobs/")
    assert TOKEN not in url

    digest = hashlib.sha256()
    with httpx.stream("GET", url, timeout=60) as download:  # no API key: the URL is the capability
        assert download.status_code == 200
        assert download.headers["content-type"] == "application/octet-stream"
        assert download.headers["content-length"] == str(size)
        assert download.headers["content-disposition"] == "attachment"
        assert download.headers["x-content-type-options"] == "nosniff"
        for chunk in download.iter_bytes():
            digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(expected_bytes(size)).hexdigest()

    record = audit_record(client_a, connection, handle["proxyCallId"])
    assert (record["method"], record["path"], record["status"]) == ("GET", f"/bytes?size={size}", 200)
    assert (record["outcome"], record["bytesOut"], record["truncated"]) == ("ok", size, False)


def audit_record(client: AsyncApi, connection: str, call_id: str) -> dict[str, Any]:
    """The call's audit record; the process that ran the job writes it within a flush interval."""
    deadline = time.monotonic() + 30
    while True:
        calls = client.client.get(f"/api/connections/{connection}/proxy/calls").json()["data"]
        found = [call for call in calls if call["proxyCallId"] == call_id]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, calls
            return dict(found[0])
        time.sleep(0.2)


def test_echoed_secret_is_scrubbed_from_a_streamed_text_body(
    client_a: AsyncApi, slow_upstream: Upstream
) -> None:
    connection = client_a.connection(slow_upstream.url)
    repeat = 6000  # ~0.6 MB: copies straddle the upstream's and the reader's chunk boundaries
    job = client_a.wait(client_a.accepted(connection, "/echo", query={"repeat": repeat})["jobId"])
    assert job["status"] == "done", job
    body = httpx.get(job["result"]["bodyDownloadUrl"]).content
    assert TOKEN.encode() not in body
    assert body.count(b"Bearer [REDACTED]\n") == repeat
    assert job["result"]["contentLength"] == len(body)
    binary = client_a.accepted(connection, "/echo", query={"repeat": 50, "type": "application/octet-stream"})
    job = client_a.wait(binary["jobId"])
    body = httpx.get(job["result"]["bodyDownloadUrl"]).content
    assert TOKEN.encode() not in body and body.count(b"[REDACTED]") == 50
    info = client_a.client.get(f"/api/connections/{connection}/proxy/info").json()["data"]
    assert info["requestContract"]["maxAsyncBodyBytes"] == 1024**3


def test_body_is_cut_at_max_async_body_bytes(client_a: AsyncApi, slow_upstream: Upstream) -> None:
    connection = client_a.connection(slow_upstream.url, proxy={"max_async_body_bytes": 100_000})
    job = client_a.wait(client_a.accepted(connection, "/bytes", query={"size": 2 * MIB})["jobId"])
    result = job["result"]
    kept = 100_000 - Scrubber.of([TOKEN]).tail  # a cut body always loses the scrubber's fixed tail
    assert (result["truncated"], result["contentLength"]) == (True, kept)
    assert httpx.get(result["bodyDownloadUrl"]).content == expected_bytes(2 * MIB)[:kept]


def test_upstream_status_is_kept(client_a: AsyncApi, slow_upstream: Upstream) -> None:
    connection = client_a.connection(slow_upstream.url)
    job = client_a.wait(client_a.accepted(connection, "/status/404")["jobId"])
    assert (job["status"], job["result"]["status"]) == ("done", 404)
    assert httpx.get(job["result"]["bodyDownloadUrl"]).content == b"status"


def test_unreachable_upstream_fails_the_job_with_a_reason(client_a: AsyncApi) -> None:
    from proxy.support import closed_port

    connection = client_a.connection(f"http://127.0.0.1:{closed_port()}")
    handle = client_a.accepted(connection, "/anything")
    job = client_a.wait(handle["jobId"])
    assert job["status"] == "failed"
    assert job["result"] is None
    assert "could not connect" in job["error"]
    record = audit_record(client_a, connection, handle["proxyCallId"])
    assert (record["outcome"], record["status"], record["path"]) == (
        "upstream_unreachable",
        None,
        "/anything",
    )


def test_async_is_for_get_only(client_a: AsyncApi, slow_upstream: Upstream) -> None:
    connection = client_a.connection(slow_upstream.url)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = client_a.submit(connection, "/count/x", method=method)
        assert response.status_code == 400, response.text
        assert response.json()["key"] == "async_requires_get"
    response = client_a.submit(connection, "/count/x", body={"a": 1})
    assert (response.status_code, response.json()["key"]) == (400, "async_requires_get")
    response = client_a.client.post(
        f"/api/connections/{connection}/proxy",
        json={"request": {"method": "GET", "path": "/"}, "async": "yes"},
    )
    assert (response.status_code, response.json()["key"]) == (400, "invalid_proxy_request")
    assert slow_upstream.hits("/count/x") == 0


@pytest.mark.parametrize("spelling", ['"\\u0061sync"', '"asyn\\u0063"', '"as\\u0079nc"'])
def test_async_is_read_from_the_parsed_body(
    client_a: AsyncApi, slow_upstream: Upstream, spelling: str
) -> None:
    """A key spelled with JSON escapes is the same key: the body is parsed once, never searched."""
    connection = client_a.connection(slow_upstream.url)
    raw = '{"request": {"method": "GET", "path": "/status/201"}, ' + spelling + ": true}"
    response = client_a.client.post(
        f"/api/connections/{connection}/proxy", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["status"] == 202 and data["jobId"]
    assert client_a.wait(data["jobId"])["result"]["status"] == 201


def test_submission_passes_the_synchronous_checks(client_a: AsyncApi, slow_upstream: Upstream) -> None:
    connection = client_a.connection(slow_upstream.url, proxy={"rate_limit_per_minute": 2})
    for _ in range(2):
        client_a.accepted(connection, "/count/limited")
    limited = client_a.submit(connection, "/count/limited")
    assert limited.status_code == 429, limited.text
    assert limited.json()["key"] == "connection_rate_limited"
    assert "retry-after" in limited.headers

    locked = client_a.submit(connection, "/count/locked", headers={"Authorization": "Bearer mine"})
    assert (locked.status_code, locked.json()["key"]) == (400, "locked_header")
    traversal = client_a.submit(connection, "/a/../../etc")
    assert traversal.status_code == 400

    disabled = client_a.connection(slow_upstream.url)
    assert client_a.client.put(
        f"/api/connections/{disabled}/proxy/settings", json={"enabled": False}
    ).is_success
    refused = client_a.submit(disabled, "/count/disabled")
    assert (refused.status_code, refused.json()["key"]) == (403, "proxy_disabled")


def test_jobs_are_scoped_to_their_organization(
    client_a: AsyncApi, client_b: AsyncApi, slow_upstream: Upstream
) -> None:
    connection = client_a.connection(slow_upstream.url)
    job_id = client_a.accepted(connection, "/count/scoped")["jobId"]
    client_a.wait(job_id)
    foreign = client_b.job(job_id)
    unknown = client_a.job(str(uuid.uuid4()))
    for response in (foreign, unknown):
        assert response.status_code == 404, response.text
        assert response.json()["key"] == "job_not_found"
    assert foreign.json()["message"] == unknown.json()["message"].replace(
        unknown.url.path.rsplit("/", 1)[1], job_id
    )
    other_type = client_a.job(job_id, "createmodel")
    assert other_type.status_code == 404
    bad_type = client_a.job(job_id, "nosuchtype")
    assert (bad_type.status_code, bad_type.json()["key"]) == (400, "invalid_job_type")
    assert client_b.submit(connection, "/count/scoped").status_code == 404


def test_the_official_sdk(
    deployment: Deployment, tenants: tuple[Keys, Keys], slow_upstream: Upstream
) -> None:
    client = Polytomic(base_url=deployment.server.url, token=tenants[0].user_api_key, max_retries=0)
    created = client.connections.create(
        name="sdk-async",
        type="api",
        configuration={"url": slow_upstream.url, "auth": {"type": "bearer", "token": TOKEN}},
        validate=False,
    )
    reply = client.connections.proxy.execute_proxy(
        id=created.data.id,
        request=ConnectionProxyCall(method="GET", path="/text", query={"size": 1000}),
        async_=True,
    )
    assert reply.data is not None
    assert reply.data.status == 202
    assert reply.data.job_status in ("created", "running", "done")
    assert reply.data.job_url and reply.data.job_url.endswith(
        f"/api/jobs/connectionproxy/{reply.data.job_id}"
    )
    job = AsyncApi(httpx.Client(base_url=deployment.server.url, headers=tenants[0].bearer)).wait(
        str(reply.data.job_id)
    )
    assert job["status"] == "done"
    fetched = client.jobs.get(type="connectionproxy", id=str(reply.data.job_id))
    assert fetched.data is not None
    assert (fetched.data.job_id, fetched.data.status) == (reply.data.job_id, "done")
    result = fetched.data.result
    assert isinstance(result, dict)
    assert result["status"] == 200 and result["contentLength"] == 1000
    assert httpx.get(result["bodyDownloadUrl"]).content == b"x" * 1000
