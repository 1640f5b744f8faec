"""``/openapi.json`` (everything), ``/api/openapi.json`` (Polytomic dialect and Keyhole's own
routes), ``/api/v3/openapi.json`` (Composio dialect), and ``/docs``: an interactive reference
served from assets inside the package, so that it works on a host with no network."""

from __future__ import annotations

from functools import cache
from importlib import resources

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from keyhole.api.errors import error_response
from keyhole.api.openapi import Answer, describe
from keyhole.api.reference.documents import Documents, OpenAPIDocument
from keyhole.errors import NotFound

_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "docs.js": "text/javascript; charset=utf-8",
}
# The page loads only its own assets and documents; the browser refuses anything else.
_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
_CACHE = "public, max-age=300"


async def _document(request: Request, path: str) -> Response:
    reference: Documents = request.app.state.reference
    # Built on its first request (a fraction of a second, once per process): off the event loop.
    body = await run_in_threadpool(reference.rendered, path)
    return Response(body, media_type="application/json", headers={"Cache-Control": _CACHE})


_document_answer = {200: Answer(OpenAPIDocument, description="An OpenAPI 3.1 document")}


@describe(
    summary="The OpenAPI document of every route", tag="Reference", public=True, answers=_document_answer
)
async def combined(request: Request) -> Response:
    return await _document(request, "/openapi.json")


@describe(
    summary="The OpenAPI document of the Polytomic dialect and Keyhole's own routes",
    tag="Reference",
    public=True,
    answers=_document_answer,
)
async def polytomic(request: Request) -> Response:
    return await _document(request, "/api/openapi.json")


@describe(
    summary="The OpenAPI document of the Composio dialect",
    tag="Reference",
    public=True,
    answers=_document_answer,
)
async def composio(request: Request) -> Response:
    return await _document(request, "/api/v3/openapi.json")


@cache
def _page() -> str:
    options = "".join(f'<option value="{path}">{label}</option>' for path, label in Documents.LABELS.items())
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>Keyhole API reference</title>"
        '<link rel="icon" href="data:,">'
        '<link rel="stylesheet" href="/docs/assets/swagger-ui.css">'
        "<style>body{margin:0;font-family:sans-serif}"
        "header{display:flex;flex-wrap:wrap;gap:1em;align-items:center;padding:.75em 1.25em;"
        "background:#1b1f24;color:#fff}header h1{font-size:1.1em;margin:0}"
        "header label{display:flex;gap:.5em;align-items:center}</style>"
        "</head><body>"
        "<header><h1>Keyhole API reference</h1>"
        f'<label for="document">Document</label><select id="document">{options}</select></header>'
        '<main id="reference"></main>'
        '<script src="/docs/assets/swagger-ui-bundle.js"></script>'
        '<script src="/docs/assets/docs.js"></script>'
        "</body></html>"
    )


@describe(
    summary="The interactive API reference",
    tag="Reference",
    public=True,
    answers={200: Answer(description="An HTML page", media_type="text/html")},
)
async def page(request: Request) -> Response:
    return HTMLResponse(
        _page(),
        headers={
            "Content-Security-Policy": _PAGE_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )


@cache
def _asset(name: str) -> bytes:
    return resources.files(__package__).joinpath("assets", name).read_bytes()


@describe(
    summary="A file of the interactive reference",
    tag="Reference",
    public=True,
    path={"name": {"type": "string", "enum": sorted(_ASSETS)}},
    answers={200: Answer(description="The file", media_type=("text/javascript", "text/css"))},
    errors=(404,),
)
async def asset(request: Request) -> Response:
    name = request.path_params["name"]
    media_type = _ASSETS.get(name)
    if media_type is None:
        return error_response(NotFound(f"no reference asset named {name[:64]!r}"))
    return Response(
        _asset(name),
        media_type=media_type,
        headers={"Cache-Control": _CACHE, "X-Content-Type-Options": "nosniff"},
    )
