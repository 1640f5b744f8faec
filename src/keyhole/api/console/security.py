"""What every console response carries, and the checks on a state-changing request.

The policy admits only the console's own files: no inline script or style, no frames, forms
posting only back here. Cookies are ``__Host-`` prefixed and ``Secure`` over HTTPS (or as
``KEYHOLE_CONSOLE_SECURE_COOKIES`` says), always HttpOnly and SameSite=Strict.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

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
    allowed = {_origin(str(request.base_url))}
    if settings.public_url:  # unset, it must not admit the empty origin of "null" or junk
        allowed.add(_origin(settings.public_url))
    return _origin(source) in allowed


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def local_path(candidate: str | None, default: str) -> str:
    """A path to go back to after sign-in: only one of the console's own pages, never elsewhere.
    Browsers drop tabs and newlines from a URL, read ``\\`` as ``/`` and ``%2e`` as ``.``, so a
    path holding any of them, or ``//``, or a dot segment could resolve out of ``/console``."""
    if not candidate or "//" in candidate or "\\" in candidate:
        return default
    if any(ord(character) < 0x21 or ord(character) == 0x7F for character in candidate):
        return default
    path = candidate.split("?", 1)[0].split("#", 1)[0]
    if path != "/console" and not path.startswith("/console/"):
        return default
    if any(segment in (".", "..") for segment in unquote(path).split("/")):
        return default
    return candidate
