"""The service container: one instance of each core service, built from settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from keyhole.accounts.service import AccountService
from keyhole.audit.service import AuditLog
from keyhole.audit.spool import AuditSpool
from keyhole.authconfigs.service import AuthConfigService
from keyhole.blobs import BlobStore, DownloadSigner, open_backend
from keyhole.connections.catalog import Catalog
from keyhole.connections.service import ConnectionService
from keyhole.connections.sharing import SharingService
from keyhole.connections.type_files import load_catalog
from keyhole.deployment.service import ProcessRegistry
from keyhole.egress import EgressClient, EgressLimits, EgressPolicy
from keyhole.home import prepare_home
from keyhole.idempotency import IdempotencyService
from keyhole.jobs.queues import ALL_QUEUES, PROXY_QUEUE
from keyhole.jobs.runner import new_worker_id
from keyhole.jobs.service import JobService
from keyhole.oauth.service import OAuthServices
from keyhole.proxy.async_calls import CONNECTION_PROXY, AsyncProxy
from keyhole.proxy.origin import use_public_suffix_list
from keyhole.proxy.service import ProxyService
from keyhole.queries import QueryService
from keyhole.ratelimit import RateLimiter, create_rate_limiter
from keyhole.settings import Settings
from keyhole.store.database import Database
from keyhole.tenancy.browser_sessions import BrowserSessions
from keyhole.tenancy.organizations import OrganizationService
from keyhole.tenancy.repository import TenancyRepository
from keyhole.tenancy.service import TenancyService
from keyhole.tenancy.users import UserService
from keyhole.toolrouter.service import SessionService
from keyhole.vault import KeyRing, Vault
from keyhole.vault.checks import verify_key_ring


@dataclass
class Services:
    settings: Settings
    database: Database
    vault: Vault
    catalog: Catalog
    egress: EgressClient
    tenancy: TenancyService
    browser_sessions: BrowserSessions
    organizations: OrganizationService
    users: UserService
    connections: ConnectionService
    sharing: SharingService
    limiter: RateLimiter
    audit: AuditLog
    proxy: ProxyService
    auth_configs: AuthConfigService
    accounts: AccountService
    sessions: SessionService
    blobs: BlobStore
    jobs: JobService
    idempotency: IdempotencyService
    async_proxy: AsyncProxy
    queries: QueryService
    oauth: OAuthServices
    processes: ProcessRegistry

    @classmethod
    def build(cls, settings: Settings) -> Services:
        prepare_home(settings)
        use_public_suffix_list(settings.public_suffix_list)
        database = Database(settings.resolved_database_url)
        vault = Vault(KeyRing.load(settings.master_keys, settings.key_file))
        catalog = load_catalog()
        egress = EgressClient(
            EgressPolicy(settings.egress_allow),
            limits=EgressLimits(
                in_flight=settings.egress_max_in_flight,
                per_origin=settings.egress_max_in_flight_per_origin,
                per_organization=settings.egress_max_in_flight_per_organization,
            ),
        )
        connections = ConnectionService(
            database,
            vault,
            catalog,
            egress,
            file_root=settings.resolved_sql_file_root,
            cache_ttl_seconds=settings.cache_ttl_seconds,
        )
        limiter = create_rate_limiter(settings.redis_url)
        audit = AuditLog(
            database,
            flush_seconds=settings.audit_flush_seconds,
            spool=AuditSpool(settings.audit_spool),
        )
        auth_configs = AuthConfigService(database, vault, catalog)
        accounts = AccountService(
            database, connections, catalog, auth_configs, cache_ttl_seconds=settings.cache_ttl_seconds
        )
        oauth = OAuthServices.build(settings, database, vault, connections, egress, auth_configs)
        proxy = ProxyService(
            connections,
            egress,
            limiter,
            audit,
            organization_rate_limit_per_minute=settings.resolved_org_rate_limit_per_minute,
            oauth=oauth.broker,
        )
        blobs = BlobStore(
            database,
            open_backend(settings.blob_url, settings.home),
            DownloadSigner(vault.keyring),
            url_ttl_seconds=settings.blob_url_ttl_seconds,
            upload_max_age_seconds=settings.resolved_blob_upload_max_age_seconds,
        )
        idempotency = IdempotencyService(
            database,
            vault,
            ttl_seconds=settings.idempotency_ttl_seconds,
            lock_seconds=settings.idempotency_lock_seconds,
        )
        process_id = new_worker_id()
        jobs = JobService.build(settings, database, vault, worker_id=process_id)
        async_proxy = AsyncProxy(
            proxy, connections, blobs, jobs, deadline_seconds=settings.async_proxy_deadline_seconds
        )
        jobs.registry.register(CONNECTION_PROXY, async_proxy, queue=PROXY_QUEUE)
        jobs.maintenance.add_purger("blobs", blobs.purge_expired)
        jobs.maintenance.add_purger("blob_uploads", blobs.abort_stale_uploads)
        jobs.maintenance.add_purger("idempotency", idempotency.purge_expired)
        processes = ProcessRegistry(database, process_id, heartbeat_seconds=settings.heartbeat_seconds)
        jobs.maintenance.add_purger("processes", processes.purge_stale)
        jobs.maintenance.add_purger("oauth_flows", oauth.flows.purge_expired)
        queries = QueryService.build(settings, database, connections, egress, vault, jobs=jobs, blobs=blobs)
        organizations = OrganizationService(database, vault)
        tenancy = TenancyService(database, organizations, cache_ttl_seconds=settings.cache_ttl_seconds)
        browser_sessions = BrowserSessions(
            tenancy,
            TenancyRepository(database),
            idle_seconds=settings.console_idle_minutes * 60,
            lifetime_seconds=settings.console_session_hours * 3600,
        )
        jobs.maintenance.add_purger("browser_sessions", browser_sessions.purge_expired)
        organizations.before_delete(blobs.purge_organization)
        organizations.on_delete(tenancy.forget_organization)
        organizations.on_delete(connections.forget_organization)
        return cls(
            settings=settings,
            database=database,
            vault=vault,
            catalog=catalog,
            egress=egress,
            tenancy=tenancy,
            browser_sessions=browser_sessions,
            organizations=organizations,
            users=UserService(database, organizations, tenancy),
            connections=connections,
            sharing=SharingService(database, connections),
            limiter=limiter,
            audit=audit,
            proxy=proxy,
            auth_configs=auth_configs,
            accounts=accounts,
            sessions=SessionService(database, accounts, auth_configs, catalog),
            blobs=blobs,
            jobs=jobs,
            idempotency=idempotency,
            async_proxy=async_proxy,
            queries=queries,
            oauth=oauth,
            processes=processes,
        )

    async def prepare(self) -> None:
        """One-time set-up after migrations: refuse master keys that cannot read the store, then
        the job engine's queue schema."""
        await verify_key_ring(self.database, self.vault)
        await self.jobs.prepare()

    def start(self, role: str, queues: Sequence[str] = ALL_QUEUES) -> None:
        """Start background work (the audit flusher, the embedded job worker, the process
        heartbeat) for a ``"serve"`` process or a ``"worker"`` taking jobs from ``queues``; call
        inside the running event loop."""
        self.audit.start()
        self.jobs.start()
        runs_jobs = role == "worker" or self.settings.job_engine == "embedded"
        self.processes.start(role, queues if runs_jobs else ())

    async def close(self) -> None:
        await self.processes.close()
        await self.jobs.close()
        await self.queries.close()
        await self.audit.stop()
        await self.limiter.close()
        await self.oauth.close()
        await self.egress.close()
        await self.database.dispose()
