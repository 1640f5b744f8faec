"""/metrics under a small scripted load: the job, egress and blob families exist, move with the
work done, and carry no ids as labels."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import httpx

from conftest import KeyholeServer

from .helpers import bootstrap_keys, proxy_call

_SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$")


def scrape(server: KeyholeServer) -> dict[str, float]:
    text = httpx.get(server.url + "/metrics", timeout=30).text
    samples: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if match:
            samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def test_metrics_follow_the_work(make_server: Callable[..., KeyholeServer], httpbin_url: str) -> None:
    server = make_server()
    keys = bootstrap_keys(server, "metrics-org", "m@metrics.test")
    before = scrape(server)
    assert before['keyhole_jobs{queue="keyhole.proxy",status="created"}'] == 0
    assert before["keyhole_egress_in_flight"] == 0
    with httpx.Client(base_url=server.url, timeout=30) as api:
        created = api.post(
            "/api/connections",
            json={"name": "metered", "type": "api", "configuration": {"url": httpbin_url}},
            headers=keys.bearer,
        )
        connection_id = created.json()["data"]["id"]
        assert proxy_call(api, connection_id, keys.bearer, "/get").status_code == 200
        accepted = api.post(
            f"/api/connections/{connection_id}/proxy",
            json={"request": {"method": "GET", "path": "/bytes/2048"}, "async": True},
            headers=keys.bearer,
        ).json()["data"]
        deadline = time.monotonic() + 60
        while api.get(accepted["jobUrl"], headers=keys.bearer).json()["data"]["status"] != "done":
            assert time.monotonic() < deadline, "the async job did not finish"
            time.sleep(0.1)

    after = scrape(server)
    done = 'keyhole_job_attempts_total{outcome="done",queue="keyhole.proxy",reason=""}'
    assert after[done] - before.get(done, 0) == 1
    assert after['keyhole_job_attempt_seconds_count{queue="keyhole.proxy"}'] >= 1
    assert after['keyhole_job_attempts_running{queue="keyhole.proxy"}'] == 0
    assert after['keyhole_blob_operations_total{operation="write",outcome="ok"}'] >= 1
    assert after["keyhole_blob_written_bytes_total"] >= 2048
    assert after['keyhole_jobs{queue="keyhole.queries",status="running"}'] == 0
    assert after["keyhole_egress_in_flight"] == 0 and after["keyhole_egress_waiting"] == 0

    text = httpx.get(server.url + "/metrics", timeout=30).text
    for identifier in (connection_id, keys.organization_id, accepted["jobId"]):
        assert identifier not in text  # no ids as labels: cardinality stays bounded
