"""Who is calling: a user (Bearer user key), an organization (organization key, Bearer or Basic
org id + key) or a partner account (partner key, acting for its owner organization or, with
Basic, for one of the organizations it manages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from keyhole.tenancy.keys import KeyKind

Role = Literal["admin", "member"]
ROLES: tuple[Role, ...] = ("admin", "member")


@dataclass(frozen=True, slots=True)
class Principal:
    organization_id: str  # the organization the caller acts for
    key_id: str
    kind: KeyKind
    user_id: str | None
    role: Role | None = None  # a user's; None for organization and partner keys
    partner_id: str | None = None  # a partner key's owner organization

    @property
    def id(self) -> str:
        """The identity that owns what this principal creates (queries, jobs)."""
        if self.kind == "partner":
            return f"partner:{self.partner_id}"
        return self.user_id or f"org:{self.organization_id}"
