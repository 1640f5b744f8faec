"""Every domain's models, imported once so the metadata is complete for migrations."""

from keyhole.audit.models import ProxyCall
from keyhole.connections.models import Connection
from keyhole.store.base import Base
from keyhole.tenancy.models import ApiKey, Organization, User

metadata = Base.metadata

__all__ = ["ApiKey", "Connection", "Organization", "ProxyCall", "User", "metadata"]
