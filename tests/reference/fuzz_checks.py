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
    recursion ("AST constructor recursion depth mismatch"). The description is only shown, in the
    repr of a filtered or mapped strategy."""
    return f"lambda at {function.__code__.co_filename}:{function.__code__.co_firstlineno}"


# ``reflection`` reads the function from its module at each call, and that call is the one a
# strategy's repr makes; a release that moves it fails loudly here rather than in the run.
assert hasattr(lambda_sources, "lambda_description")
lambda_sources.lambda_description = _lambda_description

_SECRETS = [secret for secret in os.environ.get("KEYHOLE_FUZZ_SECRETS", "").split(",") if secret]


def _spellings(secret: str) -> set[bytes]:
    raw = secret.encode()
    return {raw, urllib.parse.quote(secret).encode(), raw[::-1], *_base64_cores(raw)}


def _base64_cores(raw: bytes) -> set[bytes]:
    """What base64 of any text holding ``raw`` contains, at each of the three alignments (inside
    ``user:secret`` of a Basic header, for one): the characters no neighbouring byte touches."""
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw)
        start = 4 if offset else 0  # the group shared with the bytes before
        end = len(encoded) - 4  # the last group may take bytes after, or padding
        cores.add(encoded[start:end])
    return cores


_FORBIDDEN = [spelling for secret in _SECRETS for spelling in _spellings(secret)]


@schemathesis.check
def no_stored_secret(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case[Any]
) -> None:
    headers = "\n".join(f"{name}: {value}" for name, values in response.headers.items() for value in values)
    for spelling in _FORBIDDEN:
        if spelling in response.content or spelling in headers.encode():
            raise AssertionError(f"a stored secret came back from {case.method} {case.path}")
