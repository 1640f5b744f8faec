"""Every domain's tables, imported once so the metadata is complete: the migration environment's
target. It sits above the domains, since each domain's models build on the store's base."""

from keyhole.audit.models import ProxyCall
from keyhole.authconfigs.models import AuthConfig
from keyhole.blobs.models import Blob
from keyhole.connections.models import Connection
from keyhole.deployment.models import ProcessRecord
from keyhole.idempotency.models import IdempotencyRecord
from keyhole.jobs.models import Job
from keyhole.oauth.models import OAuthFlow, OAuthTokens
from keyhole.queries.models import Query
from keyhole.store.base import Base
from keyhole.tenancy.models import ApiKey, Organization, User
from keyhole.toolrouter.models import ToolRouterSession
from keyhole.vault.models import MasterKeyCheck

metadata = Base.metadata

__all__ = [
    "ApiKey",
    "AuthConfig",
    "Blob",
    "Connection",
    "IdempotencyRecord",
    "Job",
    "MasterKeyCheck",
    "OAuthFlow",
    "OAuthTokens",
    "Organization",
    "ProcessRecord",
    "ProxyCall",
    "Query",
    "ToolRouterSession",
    "User",
    "metadata",
]
