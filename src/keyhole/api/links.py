"""Absolute links handed to callers (job URLs, download URLs)."""

from __future__ import annotations

from starlette.requests import Request

from keyhole.settings import Settings


def public_base_url(request: Request, settings: Settings) -> str:
    """``KEYHOLE_PUBLIC_URL`` when set (behind a proxy or load balancer), else this request's own."""
    return (settings.public_url or str(request.base_url)).rstrip("/")
