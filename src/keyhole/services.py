"""The service container: one instance of each core service, built from settings."""

from __future__ import annotations

from dataclasses import dataclass

from keyhole.audit.service import AuditLog
from keyhole.connections.catalog import Catalog, load_catalog
from keyhole.connections.service import ConnectionService
from keyhole.egress import EgressClient, EgressPolicy
from keyhole.proxy.service import ProxyService
from keyhole.ratelimit import RateLimiter, create_rate_limiter
from keyhole.settings import Settings
from keyhole.store.database import Database
from keyhole.tenancy.service import TenancyService
from keyhole.vault import KeyRing, Vault


@dataclass
class Services:
    settings: Settings
    database: Database
    vault: Vault
    catalog: Catalog
    egress: EgressClient
    tenancy: TenancyService
    connections: ConnectionService
    limiter: RateLimiter
    audit: AuditLog
    proxy: ProxyService

    @classmethod
    def build(cls, settings: Settings) -> Services:
        settings.home.mkdir(parents=True, exist_ok=True)
        settings.resolved_sql_file_root.mkdir(parents=True, exist_ok=True)
        database = Database(settings.resolved_database_url)
        vault = Vault(KeyRing.load(settings.master_keys, settings.key_file))
        catalog = load_catalog()
        egress = EgressClient(EgressPolicy(settings.egress_allow))
        connections = ConnectionService(
            database,
            vault,
            catalog,
            egress,
            file_root=settings.resolved_sql_file_root,
            cache_ttl_seconds=settings.cache_ttl_seconds,
        )
        limiter = create_rate_limiter(settings.redis_url)
        audit = AuditLog(database, flush_seconds=settings.audit_flush_seconds)
        return cls(
            settings=settings,
            database=database,
            vault=vault,
            catalog=catalog,
            egress=egress,
            tenancy=TenancyService(database, cache_ttl_seconds=settings.cache_ttl_seconds),
            connections=connections,
            limiter=limiter,
            audit=audit,
            proxy=ProxyService(
                connections,
                egress,
                limiter,
                audit,
                organization_rate_limit_per_minute=settings.org_rate_limit_per_minute,
            ),
        )

    def start(self) -> None:
        """Start background work (the audit flusher); call inside the running event loop."""
        self.audit.start()

    async def close(self) -> None:
        await self.audit.stop()
        await self.limiter.close()
        await self.egress.close()
        await self.database.dispose()
