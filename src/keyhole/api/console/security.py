"""What every console response carries, and the checks on a state-changing request.

The policy admits only the console's own files: no inline script or style, no frames, forms
posting only back here. Cookies are ``__Host-`` prefixed and ``Secure`` over HTTPS (or as
``KEYHOLE_CONSOLE_SECURE_COOKIES`` says), always HttpOnly and SameSite=Strict.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from keyhole.settings import Settings

POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}
SAFE_METHODS = frozenset({"GET", "HEAD"})
_SESSION = "keyhole_session"
_PRE_SESSION = "keyhole_sign_in"


def secured(response: Response, *, cacheable: bool = False) -> Response:
    for name, value in HEADERS.items():
        response.headers[name] = value
    if not cacheable:
        response.headers["Cache-Control"] = "no-store"
    return response


def _secure(request: Request, settings: Settings) -> bool:
    if settings.console_secure_cookies != "auto":
        return settings.console_secure_cookies == "always"
    base = settings.public_url or str(request.base_url)
    return urlsplit(base).scheme == "https"


def session_cookie_name(request: Request, settings: Settings) -> str:
    return f"__Host-{_SESSION}" if _secure(request, settings) else _SESSION


def pre_session_cookie_name(request: Request, settings: Settings) -> str:
    return f"__Host-{_PRE_SESSION}" if _secure(request, settings) else _PRE_SESSION


def set_cookie(
    response: Response, request: Request, settings: Settings, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        secure=_secure(request, settings),
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: Response, request: Request, settings: Settings, name: str) -> None:
    response.delete_cookie(
        name, path="/", secure=_secure(request, settings), httponly=True, samesite="strict"
    )


def from_this_origin(request: Request, settings: Settings) -> bool:
    """A state-changing request came from the console's own pages: Fetch Metadata says so, or,
    from a browser that sends none, its Origin (else Referer) is this server's."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True  # not a browser: no ambient cookie was sent by a third-party page
    return _origin(source) in {_origin(settings.public_url or ""), _origin(str(request.base_url))}


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def local_path(candidate: str | None, default: str) -> str:
    """A path to go back to after sign-in: only one of the console's own pages, never elsewhere."""
    if not candidate or not candidate.startswith("/console") or "//" in candidate or "\\" in candidate:
        return default
    if any(ord(character) < 0x21 for character in candidate):
        return default
    return candidate
