"""Runtime configuration from ``KEYHOLE_*`` environment variables, with embedded defaults."""

from __future__ import annotations

import ipaddress
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    public_url: str | None = Field(default=None, description="Absolute base URL used in links.")
    sql_file_root: Path | None = Field(default=None, description="Where sqlite/duckdb files may live.")
    redis_url: str | None = Field(default=None, description="Shared rate-limit counters when set.")
    org_rate_limit_per_minute: int = Field(default=6000, ge=1)
    cache_ttl_seconds: float = Field(default=1.0, ge=0)
    audit_flush_seconds: float = Field(default=1.0, gt=0)
    max_api_body_bytes: int = Field(default=1_048_576, ge=1024)
    log_level: str = "INFO"

    @field_validator("egress_allow", mode="before")
    @classmethod
    def _split_cidrs(cls, value: object) -> object:
        if isinstance(value, str):
            return [
                ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip()
            ]
        return value

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.home / 'keyhole.db').resolve()}"

    @cached_property
    def resolved_sql_file_root(self) -> Path:
        return (self.sql_file_root or self.home / "sql").resolve()

    @property
    def key_file(self) -> Path:
        return self.home / "master.keys"
