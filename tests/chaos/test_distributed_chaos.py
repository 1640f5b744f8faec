"""Chaos on the distributed mode: two `keyhole serve`, two `keyhole worker` (procrastinate),
PostgreSQL, Redis and S3 (moto), under a mixed load while a random process is SIGKILLed and
restarted every few seconds.

Afterwards, with everything restarted and the leases expired:
* every job and every query is terminal, and none failed with an internal error;
* no statement runs on the database the queries target;
* every synchronous proxy call that got an answer got a non-5xx or a 502/503/504 (never 500),
  in the Polytomic envelope, and the audit log lists its ``proxyCallId``;
* no multipart upload is left in the bucket once the upload sweep has run.

The load is random with a fixed seed, printed with the summary; replay one with
``KEYHOLE_CHAOS_SEED=<seed>`` (``KEYHOLE_CHAOS_SECONDS`` sets how long the chaos lasts).

A failure the chaos found is also reproduced exactly, at the end: a worker killed between
taking a queue entry and claiming its job.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from blobs.conftest import BUCKET, S3Server
from conftest import REDIS_URL, free_port, require_service
from jobs.support import ADMIN_URL, TOKEN, Databases, api, deploy, fetch, upstream
from keyhole.jobs.runner import INTERNAL_FAILURE
from queries.support import POSTGRES

from .support import (
    Client,
    Cluster,
    Exchange,
    Ledger,
    chaos_upstream,
    incomplete_uploads,
    master_keys,
    moto_s3,
)

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SEED = int(os.environ.get("KEYHOLE_CHAOS_SEED", "1207"))
CHAOS_SECONDS = float(os.environ.get("KEYHOLE_CHAOS_SECONDS", "60"))
CLIENTS = 4
SETTLE_SECONDS = 90.0  # for every job and query to become terminal once the chaos stops
UPLOAD_MAX_AGE_SECONDS = 35  # the sweep aborts incomplete uploads older than this…
SWEEP_SECONDS = UPLOAD_MAX_AGE_SECONDS + 15.0  # …so none is left this long after the chaos
MIB = 1024 * 1024
TERMINAL = ("done", "failed")
DOCUMENTED_5XX = (502, 503, 504)
SETTINGS = {
    "KEYHOLE_JOB_LEASE_SECONDS": "3",
    "KEYHOLE_JOB_SWEEP_SECONDS": "1",
    "KEYHOLE_QUERY_CANCEL_POLL_SECONDS": "0.2",
    "KEYHOLE_ORG_RATE_LIMIT_PER_MINUTE": "100000",
    # The upload sweep runs all along, every 2 s; an upload must outlive the longest write.
    "KEYHOLE_PURGE_INTERVAL_SECONDS": "2",
    "KEYHOLE_ASYNC_PROXY_DEADLINE_SECONDS": str(UPLOAD_MAX_AGE_SECONDS - 5),
    "KEYHOLE_BLOB_UPLOAD_MAX_AGE_SECONDS": str(UPLOAD_MAX_AGE_SECONDS),
}


@dataclass(frozen=True)
class Call:
    variant: str
    connection: str
    path: str
    query: dict[str, Any] | None = None
    method: str = "GET"
    body: Any = None
    size: int | None = None  # the body length of a complete answer (async)

    def request(self) -> dict[str, Any]:
        request: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.query is not None:
            request["query"] = self.query
        if self.body is not None:
            request["body"] = self.body
        return request


SYNC = [
    Call("ok", "fast", "/count/sync"),
    Call("post", "fast", "/count/post", method="POST", body={"n": 1}),
    Call("binary", "fast", "/bytes", {"size": 30_000}),
    Call("timeout", "short", "/delay", {"seconds": 3}),  # timeout_ms 1000: a 504
    Call("cut", "fast", "/cut", {"size": 100_000, "sent": 10}),  # closes mid-body: a 502
    Call("refused", "dead", "/nothing"),  # nothing listens: a 502
]
ASYNC = [
    Call("large", "fast", "/bytes", {"size": 6 * MIB + 7}, size=6 * MIB + 7),
    Call("slow", "fast", "/slow", {"seconds": 4, "size": 40_000}, size=40_000),
    Call("slow-large", "fast", "/slow", {"seconds": 5, "size": 7 * MIB}, size=7 * MIB),
    Call("cut", "fast", "/cut", {"size": 100_000, "sent": 10}),
    Call("cut-large", "fast", "/cut", {"size": 16 * MIB, "sent": 6 * MIB}),  # after a first part
]
QUERIES = {
    "short": ("pg", "SELECT g, md5(g::text) AS h FROM generate_series(1, 5000) g"),
    "slow": ("pg", "SELECT pg_sleep(2)"),
    "long": ("pg_long", "SELECT pg_sleep(60)"),  # cancelled by its client after a few seconds
}


@dataclass
class Deployment:
    cluster: Cluster
    s3: S3Server
    database_url: str
    query_database: str
    bearer: dict[str, str]
    connections: dict[str, str]  # role → connection id


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[Deployment]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    redis = urlsplit(REDIS_URL)
    require_service("Redis", redis.hostname or "127.0.0.1", redis.port or 6379)
    databases = Databases()
    with ExitStack() as stack:
        stack.callback(databases.drop_all)
        s3 = stack.enter_context(moto_s3())
        upstream = stack.enter_context(chaos_upstream())
        database_url = databases.create()
        query_database = databases.create().rsplit("/", 1)[1]
        settings = {
            **SETTINGS,
            **s3.env,
            "KEYHOLE_JOB_ENGINE": "procrastinate",
            "KEYHOLE_DATABASE_URL": database_url,
            "KEYHOLE_MASTER_KEYS": master_keys(),
            "KEYHOLE_REDIS_URL": REDIS_URL,
            "KEYHOLE_BLOB_URL": f"s3://{BUCKET}/chaos",
        }
        cluster = Cluster(tmp_path, settings)
        stack.callback(cluster.stop)
        cluster.start("server-0")  # it migrates the store; then the others, side by side
        with ThreadPoolExecutor(4) as pool:
            starts = [pool.submit(cluster.start, name) for name in cluster.names[1:]]
            keys = pool.submit(cluster.servers[0].bootstrap, "chaos", "chaos@chaos.test").result()
            for start in starts:
                start.result()
        with httpx.Client(base_url=cluster.urls[0], headers=keys.bearer, timeout=60) as api:
            connections = {
                "fast": _api_connection(api, upstream, timeout_ms=10_000),
                "short": _api_connection(api, upstream, timeout_ms=1_000),
                "dead": _api_connection(api, f"http://127.0.0.1:{free_port()}", timeout_ms=2_000),
                "pg": _pg_connection(api, query_database),
                "pg_long": _pg_connection(api, query_database),
            }
        yield Deployment(cluster, s3, database_url, query_database, keys.bearer, connections)


def _api_connection(api: httpx.Client, url: str, *, timeout_ms: int) -> str:
    configuration = {
        "url": url,
        "auth": {"type": "bearer", "token": TOKEN},
        "proxy": {"rate_limit_per_minute": 100_000, "timeout_ms": timeout_ms},
    }
    response = api.post(
        "/api/connections",
        json={
            "name": f"chaos-{timeout_ms}",
            "type": "api",
            "configuration": configuration,
            "validate": False,
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["id"])


def _pg_connection(api: httpx.Client, database: str) -> str:
    response = api.post(
        "/api/connections",
        json={"name": "chaos-pg", "type": "postgresql", "configuration": {**POSTGRES, "database": database}},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["id"])


# -- the load and the chaos ------------------------------------------------------------------


def _load(deployment: Deployment, ledger: Ledger, index: int, stop: threading.Event) -> None:
    rng = Random(f"{SEED}-client-{index}")
    client = Client(deployment.cluster.urls, deployment.bearer, ledger, rng)
    connections = deployment.connections
    try:
        while not stop.is_set():
            roll = rng.random()
            if roll < 0.55:
                call = rng.choice(SYNC)
                client.call(
                    "sync",
                    call.variant,
                    "POST",
                    f"/api/connections/{connections[call.connection]}/proxy",
                    json={"request": call.request()},
                )
            elif roll < 0.8:  # few enough that two workers keep up between kills
                call = rng.choice(ASYNC)
                client.call(
                    "async",
                    call.variant,
                    "POST",
                    f"/api/connections/{connections[call.connection]}/proxy",
                    json={"request": call.request(), "async": True},
                )
            else:
                variant = rng.choice(sorted(QUERIES))
                connection, sql = QUERIES[variant]
                submitted = client.call(
                    "query",
                    variant,
                    "POST",
                    f"/api/connections/{connections[connection]}/query",
                    json={"query": sql},
                )
                if variant == "long" and submitted.status == 200:
                    time.sleep(rng.uniform(2.0, 6.0))
                    query_id = submitted.body["data"]["id"]
                    client.call("cancel", variant, "DELETE", f"/api/queries/{query_id}")
            stop.wait(rng.uniform(0.2, 0.6))
    finally:
        client.close()


def _threads(targets: list[Callable[[], None]], errors: list[str]) -> list[threading.Thread]:
    def guarded(target: Callable[[], None]) -> None:
        try:
            target()
        except BaseException as error:  # a harness failure, reported as such
            errors.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=guarded, args=(target,), daemon=True) for target in targets]
    for thread in threads:
        thread.start()
    return threads


# -- reading what happened -------------------------------------------------------------------


def _data(exchange: Exchange) -> dict[str, Any]:
    body = exchange.body
    data = body.get("data") if isinstance(body, dict) else None
    return data if isinstance(data, dict) else {}


def _call_id(exchange: Exchange) -> str | None:
    if exchange.status == 200:
        return _data(exchange).get("proxyCallId")
    metadata = exchange.body.get("metadata") if isinstance(exchange.body, dict) else None
    return metadata.get("proxyCallId") if isinstance(metadata, dict) else None


def _answer_problem(exchange: Exchange) -> str | None:
    """What is wrong with a synchronous proxy answer, if anything."""
    status, body = exchange.status, exchange.body
    assert status is not None
    if status >= 500 and status not in DOCUMENTED_5XX:
        return f"answered {status}"
    if status != 200 and not (
        isinstance(body, dict)
        and body.get("status") == status
        and isinstance(body.get("message"), str)
        and isinstance(body.get("key"), str)
        and isinstance(body.get("metadata"), dict)
    ):
        return f"answered {status} outside the Polytomic error envelope"
    if not _call_id(exchange):
        return f"answered {status} without a proxyCallId"
    return None


def _listed_calls(client: Client, connection_id: str) -> set[str] | None:
    """Every call id the audit log lists for a connection; None when a page got no answer."""
    ids: set[str] = set()
    path: str | None = f"/api/connections/{connection_id}/proxy/calls?limit=200"
    while path is not None:
        page = client.call("audit", "calls", "GET", path)
        if page.status != 200:
            return None
        ids.update(str(call["proxyCallId"]) for call in page.body["data"])
        path = page.body["links"]["next"]
    return ids


def _first_kill_after(kills: list[float], moment: float) -> float | None:
    later = [kill - moment for kill in kills if kill >= moment]
    return min(later) if later else None


# What never ended, with what tells where it got stuck: the attempts the job row counts and the
# state of its entry in procrastinate's queue (finished entries are deleted).
UNFINISHED = """
    SELECT 'job ' || j.type AS what, j.id, j.status, j.attempts, (
        SELECT string_agg(p.status::text, ',') FROM procrastinate_jobs p WHERE p.args->>'job_id' = j.id
    ) AS queued
    FROM jobs j WHERE j.status NOT IN ('done', 'failed')
    UNION ALL
    SELECT 'query', q.id, q.status, j.attempts, (
        SELECT string_agg(p.status::text, ',') FROM procrastinate_jobs p WHERE p.args->>'job_id' = j.id
    )
    FROM queries q LEFT JOIN jobs j ON j.id = q.job_id WHERE q.status NOT IN ('done', 'failed')
"""


def _wait_terminal(
    client: Client, database_url: str, jobs: set[str], queries: set[str]
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]], list[str]]:
    """Poll the API for the tracked jobs and queries and the store for all others, until every
    one is terminal or ``SETTLE_SECONDS`` pass; returns the last views and what never ended."""
    final_jobs: dict[str, dict[str, Any]] = {}
    final_queries: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        for job_id in sorted(jobs - final_jobs.keys()):
            view = _data(client.call("poll", "job", "GET", f"/api/jobs/connectionproxy/{job_id}"))
            if view.get("status") in TERMINAL:
                final_jobs[job_id] = view
        for query_id in sorted(queries - final_queries.keys()):
            view = _data(client.call("poll", "query", "GET", f"/api/queries/{query_id}"))
            if view.get("status") in TERMINAL:
                final_queries[query_id] = view
        unfinished = [
            f"{row['what']} {row['id']} still {row['status']} (job attempts {row['attempts']}, "
            f"queue entry {row['queued'] or 'none'})"
            for row in fetch(database_url, UNFINISHED)
        ]
        if (not unfinished and final_jobs.keys() == jobs and final_queries.keys() == queries) or (
            time.monotonic() > deadline
        ):
            unfinished += [
                f"job {job_id}: the API never showed it terminal" for job_id in jobs - final_jobs.keys()
            ]
            unfinished += [
                f"query {query_id}: the API never showed it terminal"
                for query_id in queries - final_queries.keys()
            ]
            return final_jobs, final_queries, unfinished
        time.sleep(1.0)


def _running_queries(database_url: str) -> set[int]:
    """The pids of the workers running a query: killing one is what may orphan a statement."""
    rows = fetch(database_url, "SELECT worker_id FROM jobs WHERE status = 'running' AND type = 'query'")
    return {int(row["worker_id"].split(":")[1]) for row in rows if row["worker_id"]}


def _running_statements(database: str) -> list[str]:
    rows = fetch(
        ADMIN_URL,
        "SELECT pid, state, application_name, query, now() - query_start AS running_for "
        "FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND state <> 'idle'",
        database,
    )
    return [
        f"pid {row['pid']} {row['state']} for {row['running_for']} "
        f"({row['application_name']}): {row['query'][:120]}"
        for row in rows
    ]


# -- the test --------------------------------------------------------------------------------


def test_distributed_deployment_survives_kill9_under_load(deployment: Deployment) -> None:
    cluster, connections = deployment.cluster, deployment.connections
    print(
        f"\nchaos: seed {SEED} (replay with KEYHOLE_CHAOS_SEED={SEED}), "
        f"{CHAOS_SECONDS:.0f} s, {CLIENTS} clients"
    )
    started = time.monotonic()
    ledger = Ledger()
    errors: list[str] = []
    stop = threading.Event()
    load = _threads(
        [functools.partial(_load, deployment, ledger, index, stop) for index in range(CLIENTS)], errors
    )
    rampage = functools.partial(
        cluster.rampage,
        Random(f"{SEED}-chaos"),
        stop,
        every=(3.0, 5.0),
        favour=lambda: _running_queries(deployment.database_url),
    )
    [chaos] = _threads([rampage], errors)
    stop.wait(CHAOS_SECONDS)
    stop.set()
    chaos.join(120)  # every process killed is running again when it returns
    for thread in load:
        thread.join(60)
    assert not errors, f"the harness failed (seed {SEED}): {errors}\n{cluster.evidence()}"
    assert not chaos.is_alive() and not any(thread.is_alive() for thread in load), "a harness thread hung"
    chaos_ended = time.monotonic()

    # Every long query is cancelled, as its client (or an operator, for one whose submit
    # answer was lost to a kill) would.
    settler = Client(cluster.urls, deployment.bearer, ledger, Random(f"{SEED}-settle"))
    long_running = fetch(
        deployment.database_url,
        "SELECT id FROM queries WHERE connection_id = $1 AND status NOT IN ('done', 'failed')",
        connections["pg_long"],
    )
    with ThreadPoolExecutor(4) as pool:
        list(
            pool.map(
                lambda row: settler.call("cancel", "long", "DELETE", f"/api/queries/{row['id']}"),
                long_running,
            )
        )

    failures: list[str] = []
    submitted_jobs = {
        str(_data(exchange)["jobId"]): exchange
        for exchange in ledger.of("async")
        if exchange.status == 200 and "jobId" in _data(exchange)
    }
    submitted_queries = {
        str(_data(exchange)["id"]): exchange.variant
        for exchange in ledger.of("query")
        if exchange.status == 200 and "id" in _data(exchange)
    }
    jobs, queries, unfinished = _wait_terminal(
        settler, deployment.database_url, set(submitted_jobs), set(submitted_queries)
    )
    settled = time.monotonic()
    if unfinished:
        failures.append("not terminal after the chaos:\n  " + "\n  ".join(unfinished[:40]))

    statements = _running_statements(deployment.query_database)
    deadline = time.monotonic() + 5
    while statements and time.monotonic() < deadline:
        time.sleep(0.5)
        statements = _running_statements(deployment.query_database)
    if statements:
        failures.append(
            "statements still running on the queried database with every query terminal:\n  "
            + "\n  ".join(statements)
        )

    calls = {call.variant: call for call in ASYNC}
    for job_id, view in sorted(jobs.items()):
        call = calls[submitted_jobs[job_id].variant]
        result = view.get("result") or {}
        if view["status"] == "failed" and view.get("error") == INTERNAL_FAILURE:
            failures.append(f"job {job_id} ({call.variant}) failed with an internal error")
        if view["status"] == "done" and call.size is None:
            failures.append(
                f"job {job_id} ({call.variant}): an upstream that closed early ended done: {result}"
            )
        complete = (result.get("status"), result.get("contentLength")) == (200, call.size)
        if view["status"] == "done" and call.size is not None and not complete:
            failures.append(f"job {job_id} ({call.variant}) done with the wrong body: {result}")
    for query_id, view in sorted(queries.items()):
        if view["status"] == "failed" and "internal error" in str(view.get("error")).lower():
            failures.append(f"query {query_id} ({submitted_queries[query_id]}) failed: {view.get('error')}")

    sync = ledger.of("sync")
    answered = [exchange for exchange in sync if exchange.answered]
    bad = [
        f"{exchange.variant} via server-{exchange.server}: {problem}: {str(exchange.body)[:300]}"
        for exchange in answered
        if (problem := _answer_problem(exchange)) is not None
    ]
    if bad:
        failures.append(f"{len(bad)} synchronous answers were not clean:\n  " + "\n  ".join(bad[:20]))
    errors_500 = [
        f"{exchange.kind} {exchange.variant} via server-{exchange.server}: {str(exchange.body)[:300]}"
        for exchange in ledger.exchanges
        if exchange.status == 500
    ]
    if errors_500:
        failures.append(f"{len(errors_500)} answers were 500:\n  " + "\n  ".join(errors_500[:20]))

    time.sleep(1.0)  # every audit buffer flushed (KEYHOLE_AUDIT_FLUSH_SECONDS is 0.2 s here)
    listed: set[str] = set()
    for role in ("fast", "short", "dead"):
        ids = _listed_calls(settler, connections[role])
        if ids is None:
            failures.append(f"the audit listing of connection {role} got no answer")
        listed |= ids or set()
    missing = []
    for exchange in answered:
        call_id = _call_id(exchange)
        if call_id and call_id not in listed:
            kill = _first_kill_after(cluster.kills[f"server-{exchange.server}"], exchange.answered_at)
            when = "never killed afterwards" if kill is None else f"SIGKILLed {kill:.2f} s after answering"
            missing.append(f"{exchange.variant} call {call_id} answered by server-{exchange.server}, {when}")
    unlisted = [
        job_id
        for job_id, exchange in sorted(submitted_jobs.items())
        if job_id in jobs and _data(exchange).get("proxyCallId") not in listed
    ]
    worker_kills = cluster.kills["worker-0"] + cluster.kills["worker-1"]
    missing_async = []
    for row in fetch(
        deployment.database_url, "SELECT id, finished_at FROM jobs WHERE id = ANY($1)", unlisted
    ):
        kill = _first_kill_after(worker_kills, row["finished_at"].timestamp())
        when = "no worker killed afterwards" if kill is None else f"a worker SIGKILLed {kill:.2f} s later"
        exchange = submitted_jobs[row["id"]]
        missing_async.append(
            f"{exchange.variant} job {row['id']}: call {_data(exchange)['proxyCallId']} "
            f"({jobs[row['id']]['status']}), ended, {when}"
        )
    if missing or missing_async:
        failures.append(
            f"the audit log misses {len(missing)} of {len(answered)} answered synchronous calls and "
            f"{len(missing_async)} of {len(jobs)} finished async calls (a process buffers its audit "
            "records for KEYHOLE_AUDIT_FLUSH_SECONDS, 0.2 s here; a SIGKILL loses the buffer):\n  "
            + "\n  ".join((missing + missing_async)[:40])
        )

    uploads = incomplete_uploads(deployment.s3)
    deadline = chaos_ended + SWEEP_SECONDS
    while uploads and time.monotonic() < deadline:
        time.sleep(1.0)
        uploads = incomplete_uploads(deployment.s3)
    if uploads:
        failures.append(
            f"{len(uploads)} incomplete multipart uploads left "
            f"{SWEEP_SECONDS:.0f} s after the chaos (the sweep aborts them at "
            f"{UPLOAD_MAX_AGE_SECONDS} s):\n  "
            + "\n  ".join(f"{upload['Key']} (initiated {upload['Initiated']})" for upload in uploads[:20])
        )
    settler.close()

    print(
        _summary(ledger, cluster, jobs, queries, submitted_jobs, submitted_queries, len(uploads), statements)
    )
    print(
        f"  audit: {len(answered)} answered sync and {len(jobs)} finished async calls, "
        f"{len(missing) + len(missing_async)} missing from the listing"
    )
    print(
        f"  time: chaos {chaos_ended - started:.0f} s, settling {settled - chaos_ended:.0f} s, "
        f"checks {time.monotonic() - settled:.0f} s"
    )
    if failures:
        evidence = cluster.evidence()
        pytest.fail(
            f"chaos seed {SEED} (replay with KEYHOLE_CHAOS_SEED={SEED}):\n- "
            + "\n- ".join(failures)
            + f"\n\nerrors in the process logs (under {cluster.root}):\n{evidence}",
            pytrace=False,
        )


def _summary(
    ledger: Ledger,
    cluster: Cluster,
    jobs: dict[str, dict[str, Any]],
    queries: dict[str, dict[str, Any]],
    submitted_jobs: dict[str, Exchange],
    submitted_queries: dict[str, str],
    uploads: int,
    statements: list[str],
) -> str:
    def statuses(kind: str) -> str:
        exchanges = ledger.of(kind)
        calls = {exchange.call for exchange in exchanges}
        answered = {exchange.call for exchange in exchanges if exchange.answered}
        counts = collections.Counter(str(exchange.status or exchange.failure) for exchange in exchanges)
        return (
            f"{len(calls)} calls, {len(answered)} answered, in {len(exchanges)} requests "
            f"({dict(sorted(counts.items()))})"
        )

    job_outcomes = collections.Counter(
        f"{submitted_jobs[job_id].variant}:{view['status']}" for job_id, view in jobs.items()
    )
    query_outcomes = collections.Counter(
        f"{submitted_queries[query_id]}:{view['status']}"
        + (":cancelled" if view.get("error") == "cancelled" else "")
        for query_id, view in queries.items()
    )
    sync_variants = collections.Counter(
        f"{exchange.variant}:{exchange.status}" for exchange in ledger.of("sync") if exchange.answered
    )
    kills = {name: len(times) for name, times in cluster.kills.items()}
    orphans = cluster.tally(r"cancelled (\d+) orphaned statement")
    aborted = cluster.tally(r"aborted (\d+) incomplete blob upload")
    return "\n".join(
        [
            f"chaos summary (seed {SEED}):",
            f"  sync proxy calls: {statuses('sync')}",
            f"    by variant: {dict(sorted(sync_variants.items()))}",
            f"  async submits: {statuses('async')}",
            f"  query submits: {statuses('query')}; cancels: {statuses('cancel')}",
            f"  kills: {kills} ({sum(kills.values())} in all, {cluster.favoured_kills} of a worker "
            "running a query)",
            f"  jobs: {len(jobs)} terminal of {len(submitted_jobs)} tracked: "
            f"{dict(sorted(job_outcomes.items()))}",
            f"  queries: {len(queries)} terminal of {len(submitted_queries)} tracked: "
            f"{dict(sorted(query_outcomes.items()))}",
            f"  cleaned up by Keyhole: {orphans} orphaned statements cancelled, {aborted} incomplete "
            "uploads aborted (from the logs)",
            f"  left behind: {len(statements)} running statements, {uploads} incomplete uploads",
        ]
    )


# -- a finding of the chaos, reproduced exactly ----------------------------------------------


def test_a_job_taken_by_a_worker_killed_before_claiming_it_still_runs(tmp_path: Path) -> None:
    """A worker SIGKILLed between taking a queue entry and claiming its job row leaves the row
    ``created`` with its entry ``doing``; the lease sweep only sees ``running`` rows. Here the
    dead worker is a row in procrastinate's table that took the entry and was last heard of an
    hour ago; the live worker's queue tidying must dispatch the job again."""
    databases = Databases()
    with upstream() as origin:
        deployment = deploy(
            tmp_path, "procrastinate", databases, workers=0, KEYHOLE_PURGE_INTERVAL_SECONDS="1"
        )
        try:
            assert deployment.database_url is not None
            keys = deployment.server.bootstrap("taken", "t@taken.test")
            client = api(deployment.server.url, keys.bearer)
            job_id = client.accepted(client.connection(origin.url), "/count/taken")["jobId"]
            [dead] = fetch(
                deployment.database_url,
                "INSERT INTO procrastinate_workers (last_heartbeat) VALUES (now() - interval '1 hour') "
                "RETURNING id",
            )
            [taken] = fetch(  # from the queue the job went to
                deployment.database_url,
                "SELECT status, args FROM procrastinate_fetch_job_v2(ARRAY(SELECT queue_name "
                "FROM procrastinate_jobs WHERE args->>'job_id' = $1)::varchar[], $2)",
                job_id,
                dead["id"],
            )
            assert (taken["status"], json.loads(taken["args"])) == ("doing", {"job_id": job_id})

            deployment.start_worker()
            job = client.wait(job_id, timeout=60)
            assert job["status"] == "done", (job, deployment.worker_logs()[-4000:])
            assert origin.hits("/count/taken") == 1
        finally:
            deployment.stop()
            databases.drop_all()
