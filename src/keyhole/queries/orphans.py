"""Orphaned statements: what a query attempt leaves on the database when its worker dies.

A worker killed mid-statement (``kill -9``, a lost machine) leaves its statement running: a
database server does not notice a vanished client while it computes or waits on a lock. So
every attempt is tagged where other connections can see it, and the statement of an attempt
whose worker is presumed dead is cancelled with the connection's own credentials and target:

* **Tag**: ``keyhole/q/<query id>/<attempt>``, the attempt being the *job* attempt
  (``RunningJob.attempt``): a lease belongs to it, so the sweep knows which attempt lost its
  lease and a retry knows which attempts came before it. PostgreSQL shows the tag as the
  transaction's ``application_name`` (``pg_stat_activity``); MySQL and MariaDB as the leading
  comment of the statement (``information_schema.PROCESSLIST.INFO``).
* **When**: the lease sweep, as soon as it finds a query job's lease expired (the job being
  retried or failed), and every retry before its own statement starts (the sweep may run in
  another process, or not be done yet). Both cancel the attempts *up to* a given one, never a
  later one: a slow sweep cannot hit the retry it made possible.
* **How**: ask each statement to stop (``pg_cancel_backend``, ``KILL QUERY``), then close the
  connections still tagged after ``CANCEL_GRACE_SECONDS`` (``pg_terminate_backend``, ``KILL``).
* **SQLite and DuckDB** run inside the Keyhole process: their statements end with it, so there
  is never anything to find.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time

from keyhole.queries.dialects import DatabasePool, TaggedStatements

logger = logging.getLogger(__name__)

TAG_PREFIX = "keyhole/q/"
MAX_TAG_LENGTH = 63  # PostgreSQL keeps the first 63 bytes of application_name
CANCEL_GRACE_SECONDS = 2.0  # a cancelled statement's connection normally goes within milliseconds
TERMINATE_WAIT_SECONDS = 5.0
POLL_SECONDS = 0.1

# Tags are written into SQL text (a MySQL comment): nothing but these characters may reach it.
_QUERY_ID = re.compile(r"^[0-9A-Za-z-]{1,40}$")


def attempt_tag(query_id: str, attempt: int) -> str:
    """The tag of one attempt of a query, as the database shows it to other connections."""
    if not _QUERY_ID.match(query_id) or attempt < 1:
        raise ValueError("a query attempt tag needs a query id and an attempt number from 1")
    tag = f"{TAG_PREFIX}{query_id}/{attempt}"
    if len(tag) > MAX_TAG_LENGTH:
        raise ValueError(f"a query attempt tag is at most {MAX_TAG_LENGTH} characters")
    return tag


async def cancel_orphans(pool: DatabasePool, query_id: str, *, through_attempt: int) -> int:
    """Stop every statement of attempts 1…``through_attempt`` of the query still running on the
    database; returns how many were found. Failures are logged, never raised: the caller goes on
    (a retry whose database cannot be reached will fail on its own)."""
    if through_attempt < 1:
        return 0
    tags = [attempt_tag(query_id, attempt) for attempt in range(1, through_attempt + 1)]
    try:
        async with pool.tagged() as statements:
            found = await statements.cancel(tags)
            if found and not await _gone(statements, tags, CANCEL_GRACE_SECONDS):
                await statements.terminate(tags)
                if not await _gone(statements, tags, TERMINATE_WAIT_SECONDS):
                    logger.warning("an orphaned statement of query %s is still on the database", query_id)
    except Exception as error:
        logger.warning(
            "could not cancel the orphaned statements of query %s: %s", query_id, type(error).__name__
        )
        return 0
    if found:
        logger.warning("cancelled %d orphaned statement(s) of query %s", found, query_id)
    return found


async def _gone(statements: TaggedStatements, tags: list[str], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while await statements.count(tags):
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(POLL_SECONDS)
    return True
