"""Audit records left in the spool by the previous release (no ``parent_connection_id``) are
stored by this one, with no parent, beside records of this release's own format."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conftest import KeyholeServer

from .support import records, tenant, wait_for


def spool_segment(home: Path, lines: list[list[Any]]) -> Path:
    """A segment as a dead process leaves it: complete lines, nobody holding its lock. Written
    under another name first, so the server never reads half of it."""
    spool = home / "audit-spool"
    spool.mkdir(mode=0o700, exist_ok=True)
    segment = spool / f"previous-release-{uuid.uuid4().hex[:8]}.jsonl"
    staging = segment.with_suffix(".writing")
    staging.write_text("".join(json.dumps(line) + "\n" for line in lines))
    staging.rename(segment)
    return segment


def test_records_spooled_by_the_previous_release_are_stored(
    make_server: Callable[..., KeyholeServer],
) -> None:
    server = make_server()
    owner = tenant(server, "spool")
    organization, principal = owner.keys.organization_id, owner.keys.user_id
    connection, copy, parent = (str(uuid.uuid4()) for _ in range(3))
    old_id, new_id = str(uuid.uuid4()), str(uuid.uuid4())
    at = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    segment = spool_segment(
        server.home,
        [
            # the previous release's 15 fields: no parent_connection_id after connection_id
            [
                old_id,
                organization,
                connection,
                principal,
                "polytomic",
                "GET",
                "/old",
                200,
                5,
                0,
                10,
                False,
                "ok",
                None,
                at,
            ],
            # this release's 16
            [
                new_id,
                organization,
                copy,
                parent,
                principal,
                "polytomic",
                "GET",
                "/new",
                404,
                6,
                0,
                11,
                False,
                "ok",
                None,
                at,
            ],
        ],
    )

    listed = {record["proxyCallId"]: record for record in wait_for(owner.client, [old_id, new_id])}
    old, new = listed[old_id], listed[new_id]
    assert (old["connectionId"], old["parentConnectionId"]) == (connection, None)
    assert (old["path"], old["status"], old["outcome"], old["principalId"]) == ("/old", 200, "ok", principal)
    assert (new["connectionId"], new["parentConnectionId"]) == (copy, parent)
    assert (new["path"], new["status"], new["latencyMs"], new["bytesOut"]) == ("/new", 404, 6, 11)
    assert not segment.exists()  # stored, then deleted

    # A connection filter matches the calls through a connection and through its copies.
    assert [r["proxyCallId"] for r in records(owner.client, {"connection_id": parent})] == [new_id]
    assert [r["proxyCallId"] for r in records(owner.client, {"connection_id": copy})] == [new_id]
    assert [r["proxyCallId"] for r in records(owner.client, {"connection_id": connection})] == [old_id]
    owner.client.close()
