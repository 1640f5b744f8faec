"""Database pools per connection: bounded, reused, and replaced or disposed when it changes.

A pool is keyed by connection id and remembers a fingerprint of the configuration it was
built from (held in memory only). A run with a different fingerprint (the connection was
updated, maybe by another process) retires the old pool; an update or delete through this
process retires it at once (``ConnectionService`` calls ``forget``). At most ``max_pools``
pools are kept; the least recently used one is retired first. Retiring disposes the idle
connections; a session still running keeps its connection until it ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from keyhole.egress import CheckingResolver
from keyhole.errors import InvalidRequest
from keyhole.queries.dialects import DatabasePool
from keyhole.queries.dialects.mysql import MySQLPool
from keyhole.queries.dialects.postgresql import APPLICATION_NAME, PostgresPool
from keyhole.queries.dialects.sqlite_duckdb import FilePool

logger = logging.getLogger(__name__)


@dataclass
class _Entry:
    fingerprint: str
    pool: DatabasePool
    last_used: float


def fingerprint(dialect: str, configuration: Mapping[str, Any]) -> str:
    material = orjson.dumps([dialect, configuration], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(material).hexdigest()


class QueryEngines:
    def __init__(
        self,
        resolver: CheckingResolver,
        file_root: Path,
        *,
        pool_size: int,
        connect_timeout: float,
        columnar: bool = True,
        max_pools: int = 64,
        idle_seconds: float = 900.0,
    ) -> None:
        self._resolver = resolver
        self._file_root = file_root
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._columnar = columnar
        self._max_pools = max_pools
        self._idle_seconds = idle_seconds
        self._pools: OrderedDict[str, _Entry] = OrderedDict()
        self._retiring: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._pools)

    def pool(self, connection_id: str, dialect: str, configuration: Mapping[str, Any]) -> DatabasePool:
        wanted = fingerprint(dialect, configuration)
        now = time.monotonic()
        entry = self._pools.get(connection_id)
        if entry is not None and entry.fingerprint == wanted:
            entry.last_used = now
            self._pools.move_to_end(connection_id)
            return entry.pool
        if entry is not None:
            self._retire(self._pools.pop(connection_id))
        pool = self._build(connection_id, dialect, configuration)
        self._pools[connection_id] = _Entry(wanted, pool, now)
        while len(self._pools) > self._max_pools:
            _, oldest = self._pools.popitem(last=False)
            self._retire(oldest)
        return pool

    def forget(self, organization_id: str, connection_id: str) -> None:
        """The connection changed or was deleted: drop its pool (a ``ConnectionService`` listener)."""
        entry = self._pools.pop(connection_id, None)
        if entry is not None:
            self._retire(entry)

    def retire_idle(self) -> int:
        """Dispose pools unused for ``idle_seconds``; returns how many."""
        cutoff = time.monotonic() - self._idle_seconds
        idle = [key for key, entry in self._pools.items() if entry.last_used < cutoff]
        for key in idle:
            self._retire(self._pools.pop(key))
        return len(idle)

    async def close(self) -> None:
        entries = list(self._pools.values())
        self._pools.clear()
        for entry in entries:
            self._retire(entry)
        if self._retiring:
            await asyncio.gather(*self._retiring, return_exceptions=True)

    def _build(self, connection_id: str, dialect: str, configuration: Mapping[str, Any]) -> DatabasePool:
        if dialect == "postgresql":
            return PostgresPool(
                configuration,
                self._resolver,
                pool_size=self._pool_size,
                connect_timeout=self._connect_timeout,
                application_name=f"{APPLICATION_NAME}:{connection_id}",
                columnar=self._columnar,
            )
        if dialect == "mysql":
            return MySQLPool(
                configuration,
                self._resolver,
                pool_size=self._pool_size,
                connect_timeout=self._connect_timeout,
            )
        if dialect in {"sqlite", "duckdb"}:
            return FilePool(
                dialect, configuration, self._file_root, max_sessions=self._pool_size, columnar=self._columnar
            )
        raise InvalidRequest(
            f"the query runner does not support {dialect} connections", key="query_not_supported"
        )

    def _retire(self, entry: _Entry) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop (a CLI command): nothing was ever connected
        task = loop.create_task(self._dispose(entry.pool), name="query-pool-dispose")
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    @staticmethod
    async def _dispose(pool: DatabasePool) -> None:
        try:
            await pool.dispose()
        except Exception:
            logger.warning("disposing a query pool failed", exc_info=True)
