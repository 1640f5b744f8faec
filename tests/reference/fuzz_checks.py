"""A check the fuzzer runs on every answer: no stored secret comes back, in any form.

Loaded by the schemathesis command line through ``SCHEMATHESIS_HOOKS``; the secrets the test
stored arrive in ``KEYHOLE_FUZZ_SECRETS`` (comma-separated).
"""

from __future__ import annotations

import base64
import os
import urllib.parse
from typing import Any

import schemathesis
from hypothesis.internal import lambda_sources


def _lambda_description(function: Any) -> str:
    """A lambda described without reading its module's source.

    Hypothesis parses a lambda's whole module to describe it in a strategy's repr, deep inside the
    coverage phase, and CPython 3.11 can fail to build a large module's tree that deep in a
    recursion ("AST constructor recursion depth mismatch"). The description is only ever shown."""
    return f"lambda at {function.__code__.co_filename}:{function.__code__.co_firstlineno}"


lambda_sources.lambda_description = _lambda_description

_SECRETS = [secret for secret in os.environ.get("KEYHOLE_FUZZ_SECRETS", "").split(",") if secret]


def _spellings(secret: str) -> set[bytes]:
    raw = secret.encode()
    return {raw, base64.b64encode(raw), urllib.parse.quote(secret).encode(), raw[::-1]}


_FORBIDDEN = [spelling for secret in _SECRETS for spelling in _spellings(secret)]


@schemathesis.check
def no_stored_secret(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> None:
    headers = "\n".join(f"{name}: {value}" for name, values in response.headers.items() for value in values)
    for spelling in _FORBIDDEN:
        if spelling in response.content or spelling in headers.encode():
            raise AssertionError(f"a stored secret came back from {case.method} {case.path}")
