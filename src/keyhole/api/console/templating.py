"""The console's templates (autoescaped Jinja2, loaded from the package) and its static files,
addressed by a hash of their content so browsers may keep them forever."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from keyhole.api.console.security import secured
from keyhole.timestamps import timestamp

STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    media_type: str
    digest: str


@cache
def static_files() -> dict[str, StaticFile]:
    """Every file of ``static/`` whose type the console serves, read once."""
    found: dict[str, StaticFile] = {}
    for entry in resources.files(__package__).joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in STATIC_TYPES:
            body = entry.read_bytes()
            found[entry.name] = StaticFile(body, STATIC_TYPES[suffix], hashlib.sha256(body).hexdigest()[:16])
    return found


def static_url(name: str) -> str:
    return f"/console/static/{static_files()[name].digest}/{name}"


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("keyhole.api.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static_url"] = static_url
    env.filters["timestamp"] = lambda value: "" if value is None else timestamp(value)
    return env


def render(
    request: Request, template: str, context: Mapping[str, Any], *, status_code: int = 200
) -> Response:
    """A page: the template with the request's console context (``viewer``, ``csrf_token``,
    ``path``), sent with the console's headers and never cached."""
    values = {**request.state.console_context, **context} if _has_context(request) else dict(context)
    values.setdefault("path", request.url.path)
    body = environment().get_template(template).render(values)
    return secured(HTMLResponse(body, status_code=status_code))


def _has_context(request: Request) -> bool:
    return hasattr(request.state, "console_context")
