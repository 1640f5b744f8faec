"""The OpenAPI documents: valid, complete (every served route and only those), split by dialect."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from importlib import resources
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate
from starlette.applications import Starlette
from starlette.routing import BaseRoute

from conftest import KeyholeServer
from keyhole.api.openapi import description_of, documented_routes
from keyhole.api.reference.documents import Documents
from keyhole.app import create_app
from keyhole.settings import Settings

DOCUMENTS = ("/openapi.json", "/api/openapi.json", "/api/v3/openapi.json")
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def _framework_routes() -> tuple[list[BaseRoute], Documents]:
    framework = create_app(Settings(), fast_routes=False).app
    assert isinstance(framework, Starlette)
    return list(framework.routes), framework.state.reference


ROUTES, REFERENCE = _framework_routes()
SERVED = documented_routes(ROUTES)


@pytest.mark.parametrize(("method", "path", "endpoint"), SERVED, ids=[f"{m} {p}" for m, p, _ in SERVED])
def test_every_served_route_is_described(method: str, path: str, endpoint: Any) -> None:
    assert description_of(endpoint) is not None, f"{method} {path} has no OpenAPI description"


@pytest.mark.parametrize("path", DOCUMENTS)
def test_documents_are_valid_openapi_3_1(path: str) -> None:
    document = REFERENCE.document(path)
    validate(document)
    assert document["openapi"] == "3.1.0"


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


def test_the_combined_document_holds_exactly_the_served_routes() -> None:
    served = {(method, path) for method, path, _ in SERVED}
    assert _operations(REFERENCE.document("/openapi.json")) == served


def test_each_dialect_document_holds_its_own_routes() -> None:
    composio = _operations(REFERENCE.document("/api/v3/openapi.json"))
    polytomic = _operations(REFERENCE.document("/api/openapi.json"))
    assert composio and all(path.startswith(("/api/v3/", "/api/v3.1/")) for _, path in composio)
    assert not composio & polytomic
    assert composio | polytomic == _operations(REFERENCE.document("/openapi.json"))


def test_operation_ids_are_unique() -> None:
    document = REFERENCE.document("/openapi.json")
    ids = [
        operation["operationId"]
        for item in document["paths"].values()
        for method, operation in item.items()
        if method in METHODS
    ]
    assert len(ids) == len(set(ids))


def test_every_authenticated_operation_names_its_credentials_and_errors() -> None:
    document = REFERENCE.document("/openapi.json")
    schemes = set(document["components"]["securitySchemes"])
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in METHODS or not operation["security"]:
                continue
            for requirement in operation["security"]:
                assert set(requirement) <= schemes, (method, path)
            assert {"400", "401", "403"} <= set(operation["responses"]), (method, path)


def test_the_server_serves_each_document(server: KeyholeServer) -> None:
    for path in DOCUMENTS:
        response = httpx.get(server.url + path, timeout=30)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        assert response.json() == json.loads(json.dumps(REFERENCE.document(path)))


def test_vendored_reference_assets_are_the_published_ones() -> None:
    assets = resources.files("keyhole.api.reference").joinpath("assets")
    record = json.loads(assets.joinpath("VENDOR.json").read_text())
    for name, digest in record["files"].items():
        assert hashlib.sha256(assets.joinpath(name).read_bytes()).hexdigest() == digest, name


@pytest.mark.parametrize(
    "name",
    ["VENDOR.json", "..%2F..%2Fpyproject.toml", "%2e%2e%2fdocuments.py", "swagger-ui.LICENSE", "x" * 4096],
)
def test_the_asset_route_serves_only_its_files(server: KeyholeServer, name: str) -> None:
    response = httpx.get(f"{server.url}/docs/assets/{name}", timeout=30)
    assert response.status_code == 404, response.text
    assert response.json()["key"] == "not_found"
    assert len(response.json()["message"]) < 200


def test_the_asset_route_serves_its_files(server: KeyholeServer) -> None:
    vendored = json.loads((resources.files("keyhole.api.reference") / "assets" / "VENDOR.json").read_text())
    names = [name for name in vendored["files"] if name.endswith((".css", ".js"))]
    assert names
    for name in names:
        response = httpx.get(f"{server.url}/docs/assets/{name}", timeout=30)
        assert response.status_code == 200, name
        assert hashlib.sha256(response.content).hexdigest() == vendored["files"][name], name


def test_the_page_admits_only_its_own_origin(server: KeyholeServer) -> None:
    response = httpx.get(server.url + "/docs", timeout=30)
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy and "script-src 'self'" in policy
    assert "http" not in policy and "unsafe-eval" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            yield from _references(item)


@pytest.mark.parametrize("path", DOCUMENTS)
def test_every_reference_resolves(path: str) -> None:
    document = REFERENCE.document(path)
    references = list(_references(document))
    assert references, "no reference to check: the document inlines everything"
    for reference in references:
        kind, _, name = reference.removeprefix("#/components/").partition("/")
        assert name in document["components"][kind], reference
