"""The playground's call written for the other ways in: curl against the Polytomic proxy
endpoint, the Python ``polytomic`` SDK, and the MCP HTTP tools. Every one names the key as
``$KEYHOLE_API_KEY`` (an environment variable the reader sets), never a real key."""

from __future__ import annotations

import json
import pprint
import shlex
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keyhole.proxy import contract

KEY_VARIABLE = "KEYHOLE_API_KEY"
_SDK_WIDTH = 88


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """A call as the playground's form asked for it, in the proxy envelope's own terms."""

    method: str
    path: str
    query: Sequence[tuple[str, str]]
    headers: Mapping[str, str]
    body: Any  # what the envelope's ``body`` carries: a JSON object or array, a string; None: none

    def query_object(self) -> dict[str, str | list[str]]:
        """The query as the envelope's object: a name given more than once maps to a list."""
        grouped: dict[str, list[str]] = {}
        for name, value in self.query:
            grouped.setdefault(name, []).append(value)
        return {name: values[0] if len(values) == 1 else values for name, values in grouped.items()}

    def envelope_request(self) -> dict[str, Any]:
        request: dict[str, Any] = {"method": self.method, "path": self.path}
        if self.query:
            request["query"] = self.query_object()
        if self.headers:
            request["headers"] = dict(self.headers)
        if self.body is not None:
            request["body"] = self.body
        return request


@dataclass(frozen=True, slots=True)
class Equivalents:
    curl: str
    python: str
    mcp: str
    mcp_url: str


def equivalents(base_url: str, connection_id: str, call: PlannedCall) -> Equivalents:
    return Equivalents(
        curl=_curl(base_url, connection_id, call),
        python=_python(base_url, connection_id, call),
        mcp=json.dumps(mcp_call(connection_id, call), indent=2, ensure_ascii=False),
        mcp_url=f"{base_url}/mcp",
    )


def _curl(base_url: str, connection_id: str, call: PlannedCall) -> str:
    envelope = json.dumps({"request": call.envelope_request()}, indent=2, ensure_ascii=False)
    lines = [
        f"curl -sS {shlex.quote(f'{base_url}/api/connections/{connection_id}/proxy')}",
        f'-H "Authorization: Bearer ${KEY_VARIABLE}"',
        "-H 'Content-Type: application/json'",
        f"--data-raw {shlex.quote(envelope)}",
    ]
    return " \\\n  ".join(lines)


def _literal(value: Any, indent: int) -> str:
    """``value`` as Python source, its continuation lines indented to sit in a call."""
    text = pprint.pformat(value, width=_SDK_WIDTH - indent, sort_dicts=False)
    return textwrap.indent(text, " " * indent).lstrip()


def _python(base_url: str, connection_id: str, call: PlannedCall) -> str:
    arguments = [f"method={call.method!r}", f"path={call.path!r}"]
    if call.query:
        arguments.append(f"query={_literal(call.query_object(), 8)}")
    if call.headers:
        arguments.append(f"headers={_literal(dict(call.headers), 8)}")
    if call.body is not None:
        arguments.append(f"body={_literal(call.body, 8)}")
    request = "".join(f"        {argument},\n" for argument in arguments)
    return (
        "import os\n\n"
        "from polytomic import Polytomic\n"
        "from polytomic.types import ConnectionProxyCall\n\n"
        f"client = Polytomic(base_url={base_url!r}, token=os.environ[{KEY_VARIABLE!r}])\n"
        "reply = client.connections.proxy.execute_proxy(\n"
        f"    id={connection_id!r},\n"
        "    request=ConnectionProxyCall(\n"
        f"{request}"
        "    ),\n"
        ")\n"
        "print(reply.data.status, reply.data.body)\n"
    )


def mcp_call(connection_id: str, call: PlannedCall) -> dict[str, Any]:
    """The ``tools/call`` parameters: ``keyhole_http_get`` for a read without a body, else
    ``keyhole_http_request`` (a JSON object or array as ``body``, a string as ``body_text``)."""
    arguments: dict[str, Any] = {"connection": connection_id, "method": call.method, "path": call.path}
    if call.query:
        arguments["query"] = call.query_object()
    if call.headers:
        arguments["headers"] = dict(call.headers)
    if isinstance(call.body, str):
        arguments["body_text"] = call.body
    elif call.body is not None:
        arguments["body"] = call.body
    reads = call.method in contract.SAFE_METHODS and call.body is None
    return {"name": "keyhole_http_get" if reads else "keyhole_http_request", "arguments": arguments}
