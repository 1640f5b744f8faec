"""Every domain's models, imported once so the metadata is complete for migrations."""

from keyhole.audit.models import ProxyCall
from keyhole.authconfigs.models import AuthConfig
from keyhole.connections.models import Connection
from keyhole.store.base import Base
from keyhole.tenancy.models import ApiKey, Organization, User
from keyhole.toolrouter.models import ToolRouterSession

metadata = Base.metadata

__all__ = [
    "ApiKey",
    "AuthConfig",
    "Connection",
    "Organization",
    "ProxyCall",
    "ToolRouterSession",
    "User",
    "metadata",
]
