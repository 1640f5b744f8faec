"""Not-found answers for organizations, users and keys: the same whether the row is missing,
belongs to another organization, or its id is not even a UUID (which never reaches the database)."""

from __future__ import annotations

import uuid

from keyhole.errors import NotFound


def is_uuid(value: str) -> bool:
    """In the canonical spelling ids are stored in (lower-case, hyphenated)."""
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


def organization_not_found(organization_id: str) -> NotFound:
    return NotFound("organization not found", key="not_found", metadata={"id": organization_id[:64]})


def user_not_found(user_id: str) -> NotFound:
    return NotFound("user not found", key="not_found", metadata={"id": user_id[:64]})


def key_not_found(key_id: str) -> NotFound:
    return NotFound("API key not found", key="not_found", metadata={"id": key_id[:64]})
