"""Who is calling: a user (Bearer user key) or an organization (Basic org id + org key)."""

from __future__ import annotations

from dataclasses import dataclass

from keyhole.tenancy.keys import KeyKind


@dataclass(frozen=True, slots=True)
class Principal:
    organization_id: str
    key_id: str
    kind: KeyKind
    user_id: str | None

    @property
    def id(self) -> str:
        """The identity that owns what this principal creates (queries, jobs)."""
        return self.user_id or f"org:{self.organization_id}"
