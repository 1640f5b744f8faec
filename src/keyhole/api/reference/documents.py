"""The three OpenAPI documents, built once from the routes the application serves."""

from __future__ import annotations

import copy
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from starlette.routing import BaseRoute
from typing_extensions import TypedDict

from keyhole.api.errors import ErrorEnvelope
from keyhole.api.openapi import Info, Section, build_document
from keyhole.api.responses import render_json


class OpenAPIDocument(TypedDict):
    openapi: str
    info: dict[str, Any]
    tags: list[dict[str, Any]]
    paths: dict[str, Any]
    components: dict[str, Any]


_INTRODUCTION = (
    "Keyhole holds third-party credentials and lets applications and agents use them without "
    "seeing them. Authenticate with `Authorization: Bearer <key>` (a user key `kh_u_…` or an "
    "organization key `kh_o_…`), `x-api-key: <key>`, or Basic `organization_id:key`; partner keys "
    "(`kh_p_…`) reach only the partner routes. Every error answers in its dialect's envelope."
)


def service_section(routes: list[BaseRoute]) -> Section:
    """Keyhole's own routes outside the dialects: health, metrics, downloads, OAuth, the reference."""
    return Section(
        routes=routes,
        error_shape=ErrorEnvelope,
        common_errors=(),
        tag_descriptions={
            "Operations": "Health, readiness and metrics for the operator.",
            "Downloads": "Short-lived signed URLs: the token in the path is the capability.",
            "Reference": "These documents and the interactive reference.",
            "Console": "The web console: HTML pages for browsers under /console, signed in with an API key.",
        },
    )


def _package_version() -> str:
    try:
        return version("keyhole")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


class Documents:
    LABELS = {
        "/openapi.json": "Everything Keyhole serves",
        "/api/openapi.json": "Polytomic dialect and Keyhole's own routes",
        "/api/v3/openapi.json": "Composio dialect",
    }

    def __init__(self, polytomic: Section, composio: Section, service: Section, mcp: Section) -> None:
        self._sections = {
            "/openapi.json": (polytomic, composio, service, mcp),
            "/api/openapi.json": (polytomic, service, mcp),
            "/api/v3/openapi.json": (composio,),
        }
        self._titles = {
            "/openapi.json": "Keyhole",
            "/api/openapi.json": "Keyhole — Polytomic dialect",
            "/api/v3/openapi.json": "Keyhole — Composio dialect",
        }

    def document(self, path: str) -> dict[str, Any]:
        """A copy of the document, the caller's to change."""
        return copy.deepcopy(self._built(path))

    @cache  # noqa: B019 -- one Documents per application, alive as long as it
    def _built(self, path: str) -> dict[str, Any]:
        info = Info(self._titles[path], _package_version(), _INTRODUCTION)
        return build_document(info, self._sections[path])

    @cache  # noqa: B019 -- as above
    def rendered(self, path: str) -> bytes:
        return render_json(self._built(path))
