"""Idempotency-Key handling shared by every dialect (see ``keyhole.api.idempotency`` for HTTP)."""

from keyhole.idempotency.service import (
    Claim,
    IdempotencyService,
    Replay,
    StoredResponse,
    check_key,
    fingerprint,
)

__all__ = ["Claim", "IdempotencyService", "Replay", "StoredResponse", "check_key", "fingerprint"]
