"""Runtime configuration from ``KEYHOLE_*`` environment variables, with embedded defaults."""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    FilePath,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_EGRESS_IN_FLIGHT = 100_000


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEYHOLE_", extra="ignore")

    home: Path = Field(default=Path(".keyhole"), description="SQLite database, blobs and generated key file.")
    database_url: str | None = Field(default=None, description="SQLAlchemy async URL; SQLite under home.")
    master_keys: str | None = Field(
        default=None,
        description="Comma-separated `kid:base64key` list; the first encrypts, all decrypt.",
    )
    egress_allow: Annotated[list[IPNetwork], NoDecode] = Field(
        default_factory=list, description="CIDRs reachable although not globally routable."
    )
    # Upstream calls at once per process (see docs/decisions.md, "Egress capacity"); the defaults
    # are keyhole.egress.capacity.EgressLimits' (not imported: it would load the HTTP client).
    egress_max_in_flight: int = Field(
        default=256, ge=1, le=MAX_EGRESS_IN_FLIGHT, description="Upstream calls in flight at once."
    )
    egress_max_in_flight_per_origin: int = Field(
        default=128,
        ge=1,
        le=MAX_EGRESS_IN_FLIGHT,
        description="Upstream calls in flight at once to one scheme, host and port.",
    )
    egress_max_in_flight_per_organization: int = Field(
        default=64,
        ge=1,
        le=MAX_EGRESS_IN_FLIGHT,
        description="Upstream calls in flight at once for one organization.",
    )
    public_url: str | None = Field(default=None, description="Absolute base URL used in links.")
    public_suffix_list: FilePath | None = Field(
        default=None,
        description="A newer public_suffix_list.dat replacing the bundled snapshot; never fetched.",
    )
    sql_file_root: Path | None = Field(default=None, description="Where sqlite/duckdb files may live.")
    redis_url: str | None = Field(default=None, description="Shared rate-limit counters when set.")
    org_rate_limit_per_minute: int = Field(
        default=600_000,
        ge=0,
        le=100_000_000,  # keyhole.ratelimit.MAX_LIMIT_PER_MINUTE (not imported: it would load redis)
        description="Proxy calls per organization per minute, across its connections; 0: no limit.",
    )
    cache_ttl_seconds: float = Field(default=1.0, ge=0)
    audit_flush_seconds: float = Field(default=1.0, gt=0)
    max_api_body_bytes: int = Field(default=1_048_576, ge=1024)
    # Jobs, blobs and idempotency (see docs/architecture.md, "Jobs and blobs").
    job_engine: Literal["embedded", "procrastinate"] = Field(
        default="embedded", description="embedded: in-process worker; procrastinate: `keyhole worker`s."
    )
    proxy_job_concurrency: int = Field(
        default=8, ge=1, le=256, description="Async proxy jobs run at once per worker (queue keyhole.proxy)."
    )
    query_job_concurrency: int = Field(
        default=4, ge=1, le=256, description="Queries run at once per worker (queue keyhole.queries)."
    )
    job_lease_seconds: float = Field(default=15.0, ge=1, description="A running job's lease.")
    job_sweep_seconds: float = Field(default=5.0, gt=0, description="How often expired leases are swept.")
    job_max_attempts: int = Field(default=3, ge=1, le=20)
    job_ttl_seconds: int = Field(default=86_400, ge=1, description="How long job results are kept.")
    purge_interval_seconds: float = Field(default=60.0, gt=0, description="Expiry sweep interval.")
    blob_url: str | None = Field(default=None, description="s3://bucket/prefix; local files when unset.")
    blob_url_ttl_seconds: int = Field(default=900, ge=1, description="Lifetime of download URLs.")
    idempotency_ttl_seconds: int = Field(default=86_400, ge=1)
    idempotency_lock_seconds: float = Field(default=360.0, gt=0)
    async_proxy_deadline_seconds: int = Field(default=3_600, ge=1)
    blob_upload_max_age_seconds: int | None = Field(
        default=None,
        ge=1,
        description="Incomplete blob uploads older than this are aborted; default: the async deadline + 1 h.",
    )
    # Query runner (see docs/decisions.md, "Query runner").
    query_result_ttl_seconds: int = Field(default=86_400, ge=1, description="How long results are kept.")
    query_expired_notice_seconds: int = Field(
        default=604_800, ge=0, description="How long an expired query still answers 410 (then 404)."
    )
    query_page_rows: int = Field(default=10_000, ge=1, le=1_000_000, description="Rows per result page.")
    query_page_bytes: int = Field(
        default=4_194_304, ge=1024, le=268_435_456, description="Bytes of row JSON per result page."
    )
    query_pool_size: int = Field(default=4, ge=1, le=100, description="Connections per database pool.")
    query_connect_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    query_columnar: bool = Field(
        default=True,
        description="Read PostgreSQL and DuckDB results as Arrow columns where the column types allow "
        "(same pages, less CPU); false keeps every query on the row path.",
    )
    query_cancel_poll_seconds: float = Field(
        default=1.0, gt=0, description="How often a running query looks for a cancel from another process."
    )
    # OAuth2 connections (see docs/decisions.md, "OAuth2 connections").
    oauth_refresh_margin_seconds: float = Field(
        default=60.0, ge=0, le=86_400, description="Refresh an access token this long before it expires."
    )
    oauth_lock_ttl_seconds: float = Field(
        default=30.0, gt=0, le=600, description="Lease of the cross-process refresh lock."
    )
    oauth_lock_wait_seconds: float = Field(
        default=20.0, gt=0, le=600, description="How long a call waits for another process's refresh."
    )
    heartbeat_seconds: float = Field(
        default=10.0, gt=0, le=3600, description="How often a process refreshes its row in the registry."
    )
    log_level: str = "INFO"
    access_log: bool = Field(default=False, description="One JSON log line per HTTP request.")
    console_idle_minutes: int = Field(
        default=30, ge=1, le=1440, description="A web console session ends after this long without a request."
    )
    console_session_hours: int = Field(
        default=8,
        ge=1,
        le=168,
        description="A web console session ends this long after sign-in, used or not.",
    )
    console_secure_cookies: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="Console cookies `Secure` and `__Host-` prefixed: over HTTPS (auto), always, or never.",
    )

    @field_validator("egress_allow", mode="before")
    @classmethod
    def _split_cidrs(cls, value: object) -> object:
        if isinstance(value, str):
            return [
                ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip()
            ]
        return value

    @field_validator(
        "egress_max_in_flight",
        "egress_max_in_flight_per_origin",
        "egress_max_in_flight_per_organization",
        mode="wrap",
    )
    @classmethod
    def _egress_limit(cls, value: object, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> int:
        try:
            limit: int = handler(value)
        except ValidationError:
            raise ValueError(
                f"KEYHOLE_{(info.field_name or '').upper()} must be a whole number from 1 to "
                f"{MAX_EGRESS_IN_FLIGHT:,}, not {str(value)[:32]!r}"
            ) from None
        return limit

    @field_validator("blob_url")
    @classmethod
    def _blob_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("s3://", "s3a://", "file:///")):
            raise ValueError("KEYHOLE_BLOB_URL must be s3://bucket/prefix or file:///absolute/directory")
        return value

    @model_validator(mode="after")
    def _uploads_outlive_writes(self) -> Settings:
        # The sweep goes by age alone: an upload still being written must never look abandoned.
        maximum = self.blob_upload_max_age_seconds
        if maximum is not None and maximum <= self.async_proxy_deadline_seconds:
            raise ValueError(
                f"KEYHOLE_BLOB_UPLOAD_MAX_AGE_SECONDS ({maximum}) must be longer than "
                f"KEYHOLE_ASYNC_PROXY_DEADLINE_SECONDS ({self.async_proxy_deadline_seconds}), the longest "
                "a blob write may take; otherwise the sweep would abort uploads still being written"
            )
        return self

    @model_validator(mode="after")
    def _procrastinate_needs_postgres(self) -> Settings:
        if self.job_engine == "procrastinate" and not (self.database_url or "").startswith("postgresql"):
            raise ValueError(
                "KEYHOLE_JOB_ENGINE=procrastinate needs a PostgreSQL KEYHOLE_DATABASE_URL "
                "(postgresql+asyncpg://user@host/db); leave KEYHOLE_JOB_ENGINE unset for the embedded worker"
            )
        return self

    @model_validator(mode="after")
    def _shared_store_needs_shared_keys(self) -> Settings:
        # A process that generated a key of its own would report ready, fail on every existing
        # row and encrypt new ones with a key no other replica has.
        if (self.database_url or "").startswith("postgresql") and not self.master_keys:
            raise ValueError(
                "KEYHOLE_MASTER_KEYS is required with a PostgreSQL KEYHOLE_DATABASE_URL: every server "
                "and worker sharing the store must hold the same master keys, and none is generated. "
                "Set it to the same kid:base64key list on every process (a new key: "
                "`keyhole keys new-master`; an existing master.keys file holds the current ones)"
            )
        return self

    @property
    def resolved_org_rate_limit_per_minute(self) -> int | None:
        """The organization limit, None when there is none (0)."""
        return self.org_rate_limit_per_minute or None

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.home / 'keyhole.db').resolve()}"

    @property
    def resolved_blob_upload_max_age_seconds(self) -> int:
        return self.blob_upload_max_age_seconds or self.async_proxy_deadline_seconds + 3_600

    @cached_property
    def resolved_sql_file_root(self) -> Path:
        return (self.sql_file_root or self.home / "sql").resolve()

    @property
    def key_file(self) -> Path:
        return self.home / "master.keys"

    @property
    def audit_spool(self) -> Path:
        return self.home / "audit-spool"
