"""Typed inputs and outputs of the connection service (wire shapes live in the dialects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keyhole.connections.catalog import ConnectionType

UNREADABLE = "unreadable"
"""The status a view shows for a connection whose secrets this process's master keys cannot open."""


@dataclass(frozen=True, slots=True)
class ConnectionCreate:
    name: str
    type_id: str
    configuration: dict[str, Any]
    healthcheck_interval: str | None = None
    policies: list[str] = field(default_factory=list)
    validate: bool = True


@dataclass(frozen=True, slots=True)
class ConnectionUpdate:
    name: str
    configuration: dict[str, Any]
    type_id: str | None = None
    healthcheck_interval: str | None = None
    policies: list[str] | None = None
    validate: bool = True
    # Secret pointers left unchanged (write-only fields left blank): each keeps its stored value
    # as a placeholder sent back would (``secrets.keep_unchanged``).
    unchanged_secrets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ConnectionTest:
    type_id: str
    configuration: dict[str, Any]
    connection_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionView:
    id: str
    organization_id: str
    name: str
    type: ConnectionType
    configuration: dict[str, Any]  # secrets replaced by the redaction placeholder
    status: str
    status_error: str | None
    proxy_enabled: bool
    healthcheck_interval: str | None
    policies: list[str]
    created_by: str | None
    updated_by: str | None
    created_at: datetime
    updated_at: datetime
    # A shared copy's parent: configuration, status and proxy_enabled above are the parent's.
    parent_connection_id: str | None = None


@dataclass(frozen=True, slots=True)
class ConnectionSummary:
    """What a list of connections shows, read without opening any secret; a shared copy shows
    its parent's status and proxy setting."""

    id: str
    name: str
    type: ConnectionType
    status: str
    status_error: str | None
    proxy_enabled: bool
    updated_at: datetime
    parent_connection_id: str | None


@dataclass(frozen=True, slots=True)
class ConnectionLabel:
    """A connection as a picker or a log names it."""

    id: str
    name: str
    type: ConnectionType


@dataclass(frozen=True, slots=True)
class ConnectionPage:
    """One page of an organization's connections, by name, and how many match in all."""

    connections: list[ConnectionSummary]
    total: int


@dataclass(frozen=True, slots=True)
class ParameterValue:
    label: str
    value: Any


@dataclass(frozen=True, slots=True)
class ParameterValues:
    allows_creation: bool
    values: list[ParameterValue]
