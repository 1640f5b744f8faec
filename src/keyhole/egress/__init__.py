"""Outbound HTTP: every upstream request goes through an address policy, a deadline and no redirects."""

from keyhole.egress.capacity import EgressLimits
from keyhole.egress.capped_body import read_capped
from keyhole.egress.client import EgressClient, UpstreamResponse
from keyhole.egress.policy import EgressPolicy
from keyhole.egress.resolver import CheckingResolver

__all__ = [
    "CheckingResolver",
    "EgressClient",
    "EgressLimits",
    "EgressPolicy",
    "UpstreamResponse",
    "read_capped",
]
