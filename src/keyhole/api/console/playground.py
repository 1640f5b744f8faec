"""The proxy playground: one call through one of the organization's HTTP connections, from a
form. The call runs through the core exactly as the REST and MCP surfaces run it (contract,
rate limits, egress policy, echo scrubbing, audit as dialect ``console``); the page shows the
answer beside the connection's contract, and the same call for curl, the Python SDK and MCP.

The run answers with the result page itself rather than a redirect: the answer is what the
upstream said once, which no GET could show again without keeping upstream bodies on the server
or calling the upstream a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from keyhole.api.console.endpoint import Form, Viewer, console_page
from keyhole.api.console.playground_code import PlannedCall, equivalents
from keyhole.api.console.playground_view import answer_of, contract_of
from keyhole.api.console.readable import byte_size
from keyhole.api.console.templating import render
from keyhole.api.links import public_base_url
from keyhole.api.requests import parse_json
from keyhole.connections.schemas import ConnectionLabel
from keyhole.connections.target import HttpTarget
from keyhole.errors import InvalidRequest, KeyholeError
from keyhole.proxy import contract
from keyhole.proxy.binary import BlobSink
from keyhole.proxy.request import ProxyCall, encode_body
from keyhole.proxy.service import ProxyResult
from keyhole.proxy.spill import Spill
from keyhole.services import Services

DIALECT = "console"
DISPLAY_BYTES = 262_144  # a longer answer shows its start; the whole is a download
BODY_FORMATS = ("json", "text")
# The request form's fields (its button named ``action``: run, or show the code only).
FORM_FIELDS = ("connection", "method", "path", "query", "headers", "body_format", "body", "action")


def _invalid(message: str, field: str) -> InvalidRequest:
    return InvalidRequest(message, key="invalid_proxy_request", metadata={"field": field})


def _lines(text: str) -> list[tuple[int, str]]:
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


@dataclass(frozen=True, slots=True)
class Draft:
    """The form as typed: shown back as it was, whatever it holds."""

    connection: str
    method: str
    path: str
    query: str
    headers: str
    body: str
    body_format: str

    @classmethod
    def of(cls, form: Form) -> Draft:
        return cls(
            connection=form.get("connection"),
            method=form.get("method", "GET"),
            path=form.get("path"),
            query=form.get("query"),
            headers=form.get("headers"),
            body=form.get("body"),
            body_format=form.get("body_format", "json"),
        )

    @classmethod
    def blank(cls, connection: str) -> Draft:
        return cls(connection, "GET", "/", "", "", "", "json")

    def planned(self) -> PlannedCall:
        """The call the form asks for, or 400 naming the line that cannot be read. The method,
        path, names and values are the core contract's to judge."""
        return PlannedCall(
            method=self.method.upper(),
            path=self.path,
            query=self._query(),
            headers=self._headers(),
            body=self._body(),
        )

    def _query(self) -> list[tuple[str, str]]:
        pairs = []
        for number, line in _lines(self.query):
            name, _, value = line.partition("=")
            if not name:
                raise _invalid(f"query line {number} has no name: write one name=value a line", "query")
            pairs.append((name, value))
        return pairs

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        seen: set[str] = set()
        for number, line in _lines(self.headers):
            name, colon, value = line.partition(":")
            name = name.strip()
            if not colon or not name:
                raise _invalid(f"header line {number} is not 'Name: value'", "headers")
            if name.lower() in seen:
                raise _invalid(f"header {name[:64]} is given twice: join its values with ', '", "headers")
            seen.add(name.lower())
            headers[name] = value.strip()
        return headers

    def _body(self) -> Any:
        if self.body_format not in BODY_FORMATS:
            raise _invalid("the body format must be JSON or text", "body_format")
        if not self.body:
            return None
        if self.body_format == "text":
            return self.body
        return parse_json(self.body.encode())


def _proxy_call(planned: PlannedCall) -> ProxyCall:
    """The call as the core takes it: the body encoded as the Polytomic dialect encodes its
    envelope's ``body`` (an object or array as JSON, a string as text)."""
    body, content_type = encode_body(planned.body)
    return ProxyCall(
        method=planned.method,
        path=planned.path,
        headers=planned.headers,
        query=list(planned.query) or None,
        body=body,
        content_type=content_type,
        envelope_bytes=len(body or b""),
    )


async def _http_connections(services: Services, viewer: Viewer) -> list[ConnectionLabel]:
    return [
        label for label in await services.connections.labels(viewer.principal) if label.type.kind == "http"
    ]


async def _page(
    request: Request,
    services: Services,
    viewer: Viewer,
    target: HttpTarget,
    draft: Draft,
    *,
    result: ProxyResult | None = None,
    refusal: KeyholeError | None = None,
    status_code: int = 200,
) -> Response:
    base_url = public_base_url(request, services.settings)
    try:
        code = equivalents(base_url, target.connection_id, draft.planned())
    except KeyholeError:
        code = None  # the form itself cannot be read: the refusal says why
    context = {
        "connections": await _http_connections(services, viewer),
        "chosen": target.connection_id,
        "contract": contract_of(await services.proxy.info_for(target)),
        "draft": draft,
        "methods": contract.ALLOWED_METHODS,
        "answer": None if result is None else answer_of(result, target),
        "refusal": refusal,
        "refusal_call_id": None if refusal is None else refusal.metadata.get("proxyCallId"),
        "code": code,
        "display_bytes": DISPLAY_BYTES,
        "byte_size": byte_size,
    }
    return render(request, "playground/page.html", context, status_code=status_code)


@console_page()
async def playground(request: Request, services: Services, viewer: Viewer) -> Response:
    connection_id = request.query_params.get("connection")
    if not connection_id:
        connections = await _http_connections(services, viewer)
        if not connections:
            return render(request, "playground/none.html", {})
        connection_id = connections[0].id
    target = await services.proxy.target(viewer.principal, connection_id)
    return await _page(request, services, viewer, target, Draft.blank(target.connection_id))


@console_page()
async def run(request: Request, services: Services, viewer: Viewer) -> Response:
    form = viewer.form.only(*FORM_FIELDS)
    draft = Draft.of(form)
    target = await services.proxy.target(viewer.principal, draft.connection)
    if form.get("action") == "code":  # write the call out without sending it
        try:
            draft.planned()
        except KeyholeError as refusal:
            return await _page(request, services, viewer, target, draft, refusal=refusal, status_code=400)
        return await _page(request, services, viewer, target, draft)
    base_url = public_base_url(request, services.settings)
    sink = BlobSink(services.blobs, lambda: base_url, ttl_seconds=services.settings.blob_url_ttl_seconds)
    try:
        result = await services.proxy.execute(
            viewer.principal,
            target,
            lambda: _proxy_call(draft.planned()),  # a form that cannot be read is audited too
            dialect=DIALECT,
            binary_sink=sink,
            spill=Spill(DISPLAY_BYTES, sink),
        )
    except KeyholeError as refusal:
        page = await _page(
            request, services, viewer, target, draft, refusal=refusal, status_code=refusal.status
        )
        if refusal.retry_after is not None:
            page.headers["Retry-After"] = str(refusal.retry_after)
        return page
    return await _page(request, services, viewer, target, draft, result=result)


routes: list[BaseRoute] = [
    Route("/playground", playground, methods=["GET"]),
    Route("/playground", run, methods=["POST"]),
]
