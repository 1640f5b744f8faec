"""OAuth domain errors (each dialect maps them through the status and key)."""

from __future__ import annotations

from typing import ClassVar

from keyhole.errors import Conflict, KeyholeError


class ReauthorizationRequired(Conflict):
    """The refresh token is dead (``invalid_grant``): no call reaches the upstream until the user
    reconnects."""

    default_key: ClassVar[str] = "reauthorization_required"


class RefreshLockUnavailable(KeyholeError):
    """The cross-process refresh lock cannot be reached or taken in time (fail closed: refreshing
    without it could race another process into ``invalid_grant``)."""

    status: ClassVar[int] = 503
    default_key: ClassVar[str] = "oauth_refresh_lock_unavailable"
