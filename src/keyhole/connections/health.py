"""Health checks of a connection's target, through the egress layer.

An HTTP type is reachable when its health-check path answers at all; it is healthy when
that answer is below 400. A SQL type is healthy when ``SELECT 1`` succeeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from keyhole.connections.catalog import ConnectionType
from keyhole.connections.target import preview_target
from keyhole.databases.connectivity import probe_sql
from keyhole.egress import EgressClient, read_capped

HEALTHCHECK_TIMEOUT_MS = 10_000


@dataclass(frozen=True, slots=True)
class Health:
    status: str  # "healthy" | "unhealthy" (and, only in views, UNREADABLE)
    error: str | None = None


async def probe(
    connection_type: ConnectionType,
    configuration: Mapping[str, Any],
    *,
    egress: EgressClient,
    file_root: Path,
) -> Health:
    """Raise ``UpstreamUnreachable``/``UpstreamTimeout``/``EgressDenied`` when nothing answers."""
    if connection_type.sql is not None:
        await probe_sql(
            connection_type.sql.dialect, configuration, resolver=egress.resolver, file_root=file_root
        )
        return Health("healthy")
    target = preview_target(connection_type, configuration)
    http = connection_type.http
    path = configuration.get("healthcheck_path") or (http.healthcheck_path if http else None) or ""
    query = urlencode([*target.inherited_query, *target.credential_query.items()])
    url = target.url_for(quote(path, safe="/%"), query)
    headers = {**target.inherited_headers, **target.credential_headers}
    timeout = min(target.limits.timeout_ms, HEALTHCHECK_TIMEOUT_MS)
    async with egress.request("GET", url, headers=headers, data=None, timeout_ms=timeout) as response:
        await read_capped(response, 4096)
        if response.status >= 400:
            return Health("unhealthy", f"health check GET {path or '/'} answered {response.status}")
    return Health("healthy")
