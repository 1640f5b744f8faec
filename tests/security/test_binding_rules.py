"""The target-binding rule as pure functions, over generated spellings and mutations."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keyhole.connections.binding import (
    binding_digest,
    check_shared_target,
    kept_secrets,
    require_secrets_for_new_target,
    target_identity,
)
from keyhole.connections.catalog import CatalogError
from keyhole.connections.target import preview_target
from keyhole.connections.type_files import load_catalog
from keyhole.errors import Unprocessable
from keyhole.oauth.flows import _sealed, _unsealed
from keyhole.oauth.refresh import _bound
from keyhole.oauth.store import StoredTokens
from keyhole.oauth.token_endpoint import TokenSet

CATALOG = load_catalog()
API = CATALOG.get("api")
TYPES_DIR = Path(__file__).resolve().parents[2] / "src" / "keyhole" / "connections" / "types"
REDACTED = "[REDACTED]"

labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=12)
hosts = st.lists(labels, min_size=2, max_size=4).map(".".join)
paths = st.lists(labels, max_size=3).map(lambda parts: "".join("/" + part for part in parts))
ports = st.sampled_from([None, 80, 443, 8080, 8443])


def _url(scheme: str, host: str, port: int | None, path: str) -> str:
    return f"{scheme}://{host}{'' if port is None else f':{port}'}{path}"


def _api(url: str, **auth: Any) -> dict[str, Any]:
    return {"url": url, "auth": {"type": "bearer", "token": "t", **auth}}


@settings(max_examples=300)
@given(scheme=st.sampled_from(["http", "https"]), host=hosts, port=ports, path=paths, data=st.data())
def test_spellings_of_one_target_have_one_identity(
    scheme: str, host: str, port: int | None, path: str, data: st.DataObject
) -> None:
    default = 80 if scheme == "http" else 443
    spelled_port = data.draw(st.sampled_from([port] if port not in (None, default) else [None, default]))
    variant = _url(
        data.draw(st.sampled_from([scheme, scheme.upper()])),
        data.draw(st.sampled_from([host, host.upper(), host + "."])),
        spelled_port,
        path + data.draw(st.sampled_from(["", "/"])),
    )
    original = _url(scheme, host, port, path)
    assert target_identity(API, _api(original)) == target_identity(API, _api(variant))
    assert binding_digest(API, _api(original)) == binding_digest(API, _api(variant))


@settings(max_examples=300)
@given(
    scheme=st.sampled_from(["http", "https"]),
    host=hosts,
    port=ports,
    path=paths,
    change=st.sampled_from(["scheme", "host", "port", "path", "path-case", "sibling"]),
    other=labels,
)
def test_another_target_never_shares_an_identity(
    scheme: str, host: str, port: int | None, path: str, change: str, other: str
) -> None:
    original = _url(scheme, host, port, path)
    match change:
        case "scheme":
            moved = _url("https" if scheme == "http" else "http", host, port, path)
        case "host":
            moved = _url(scheme, other + "-" + host, port, path)
        case "port":
            moved = _url(scheme, host, 9999, path)
        case "path":
            moved = _url(scheme, host, port, path + "/" + other)
        case "path-case":
            if path.upper() == path:
                return
            moved = _url(scheme, host, port, path.upper())
        case _:
            moved = _url(scheme, host.split(".", 1)[0] + other + "." + host.split(".", 1)[1], port, path)
    stored = _api(original)
    assert target_identity(API, stored) != target_identity(API, _api(moved))
    assert binding_digest(API, stored) != binding_digest(API, _api(moved))
    with pytest.raises(Unprocessable) as refused:
        require_secrets_for_new_target(API, stored, _api(moved), ["/auth/token"])
    assert refused.value.key == "secret_required_for_new_target"
    assert refused.value.metadata == {"fields": ["/url"], "secrets": ["/auth/token"]}
    require_secrets_for_new_target(API, stored, _api(moved), [])  # a secret sent again may move


DATABASE_STORED = {
    "hostname": "db.internal.example",
    "port": 5432,
    "database": "app",
    "username": "reader",
    "password": "pw",
    "ssl_mode": "verify-full",
}


@given(
    field=st.sampled_from(["hostname", "port", "database", "username", "ssl_mode"]),
    value=st.one_of(labels, st.integers(1, 65535)),
    type_id=st.sampled_from(["postgresql", "mysql"]),
)
def test_every_database_target_field_binds_the_password(field: str, value: Any, type_id: str) -> None:
    connection_type = CATALOG.get(type_id)
    moved = {**DATABASE_STORED, field: value}
    if target_identity(connection_type, moved) == target_identity(connection_type, DATABASE_STORED):
        assert str(value).lower().rstrip(".") == str(DATABASE_STORED[field]).lower()
        return
    with pytest.raises(Unprocessable):
        require_secrets_for_new_target(connection_type, DATABASE_STORED, moved, ["/password"])


def test_database_hosts_compare_without_case_or_trailing_dot() -> None:
    postgresql = CATALOG.get("postgresql")
    for spelling in ("DB.Internal.Example", "db.internal.example.", "[db.internal.example]"):
        moved = {**DATABASE_STORED, "hostname": spelling}
        require_secrets_for_new_target(postgresql, DATABASE_STORED, moved, ["/password"])
    require_secrets_for_new_target(
        postgresql, DATABASE_STORED, {**DATABASE_STORED, "port": "5432"}, ["/password"]
    )


@pytest.mark.parametrize(
    ("sent", "merged", "kept"),
    [
        ({"auth": {"type": "bearer", "token": REDACTED}}, False, ["/auth/token"]),
        ({"auth": {"type": "bearer", "token": "new"}}, False, []),
        ({"url": "https://x.example"}, False, []),  # a full replacement without the token drops it
        ({"url": "https://x.example"}, True, ["/auth/token"]),  # merged over the stored auth
        ({"url": "https://x.example", "auth": {"type": "basic", "username": "u"}}, True, []),
        (None, True, ["/auth/token"]),
    ],
)
def test_kept_secrets(sent: dict[str, Any] | None, merged: bool, kept: list[str]) -> None:
    assert kept_secrets(sent, ["/auth/token"], merged_over_stored=merged) == kept


PUBLIC = frozenset({"client_id", "base_url", "scopes", "api_key_header", "api_key_query"})


@pytest.mark.parametrize(
    ("stored", "sent", "named", "refused"),
    [
        ({"api_key": "k", "base_url": "https://a.example"}, {"base_url": "https://b.example"}, True, True),
        ({"api_key": "k", "base_url": "https://a.example"}, {"base_url": "HTTPS://A.example/"}, True, False),
        ({"api_key": "k", "base_url": "https://a.example"}, {"base_url": None}, False, True),
        ({"api_key": "k"}, {"base_url": "https://b.example"}, True, True),
        ({"api_key": "k"}, {}, True, True),
        ({"api_key": "k"}, {"base_url": "https://b.example", "api_key": "mine"}, True, False),
        ({"api_key": "k"}, {"base_url": "https://b.example", "api_key": REDACTED}, True, True),
        (
            {"client_secret": "s", "token_url": "https://a.example/t"},
            {"token_url": "https://b.example/t"},
            True,
            True,
        ),
        (
            {"client_secret": "s", "token_url": "https://a.example/t"},
            {"base_url": "https://b.example"},
            True,
            False,
        ),
        ({"client_secret": "s"}, {"token_url": "https://b.example/t"}, True, True),
        ({"client_id": "public"}, {"token_url": "https://b.example/t"}, True, False),
    ],
)
def test_shared_credentials_stay_with_their_endpoints(
    stored: dict[str, Any], sent: dict[str, Any], named: bool, refused: bool
) -> None:
    def check() -> None:
        check_shared_target(stored, sent, public_keys=PUBLIC, fixed_base_url=False, require_named=named)

    if refused:
        with pytest.raises(Unprocessable) as error:
            check()
        assert error.value.key == "secret_required_for_new_target"
        assert "k" not in error.value.metadata["fields"]
    else:
        check()


def test_a_preset_base_url_is_fixed_so_its_key_may_be_shared() -> None:
    check_shared_target({"api_key": "k"}, {}, public_keys=PUBLIC, fixed_base_url=True, require_named=True)


def test_an_unused_stored_secret_does_not_bind() -> None:
    check_shared_target(
        {"client_secret": "s"},
        {"base_url": "https://b.example", "api_key": "mine"},
        public_keys=PUBLIC,
        fixed_base_url=False,
        require_named=True,
        used={"api_key"},
    )


def test_oauth_tokens_are_used_only_for_the_target_they_were_granted_for() -> None:
    target = type("Target", (), {"binding": "b1"})()
    tokens = TokenSet(access_token="at", refresh_token="rt", expires_at=None)
    assert _bound(StoredTokens(1, "active", None, tokens, "b1"), target) is tokens
    assert _bound(StoredTokens(1, "active", None, tokens, None), target) is tokens
    assert _bound(StoredTokens(1, "active", None, tokens, "b2"), target) is None


def test_a_connect_flow_remembers_its_target() -> None:
    assert _unsealed(_sealed("verifier-1", "b1")) == ("verifier-1", "b1")
    assert _unsealed(b"legacy-verifier") == ("legacy-verifier", None)


def _type_file(type_id: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((TYPES_DIR / f"{type_id}.json").read_text())
    return document


@pytest.mark.parametrize(
    ("type_id", "target_fields", "problem"),
    [
        ("postgresql", ["/hostname", "/port", "/database", "/username"], "/ssl_mode"),
        ("api", ["/url"], "/auth/authorization_url"),
        ("api", ["/url", "/auth/token_url", "/auth/authorization_url", "/auth/token"], "secret field"),
        ("mysql", [*_type_file("mysql")["target_fields"], "/nope"], "not a property"),
    ],
)
def test_a_type_file_must_name_every_target_field(
    tmp_path: Path, type_id: str, target_fields: list[str], problem: str
) -> None:
    document = copy.deepcopy(_type_file(type_id))
    document["target_fields"] = target_fields
    (tmp_path / f"{type_id}.json").write_text(json.dumps(document))
    with pytest.raises(CatalogError, match="target_fields") as error:
        load_catalog(tmp_path)
    assert problem in str(error.value)


@pytest.mark.parametrize(
    "auth",
    [
        {"type": "bearer", "token": "Repr_Secret_Value_1"},
        {"type": "query", "name": "k", "value": "Repr_Secret_Value_1"},
        {"type": "header", "name": "X-Key", "value": "Repr_Secret_Value_1"},
        {"type": "basic", "username": "u", "password": "Repr_Secret_Value_1"},
    ],
)
def test_a_target_never_prints_its_secret(auth: dict[str, Any]) -> None:
    """A target in a log line or a traceback's locals shows no credential in any form."""
    target = preview_target(
        API,
        {"url": "https://api.example", "auth": auth},
    )
    shown = repr(target) + str(target)
    assert "Repr_Secret_Value_1" not in shown
    assert "UmVwcl9TZWNyZXRfVmFsdWVfMQ" not in shown  # base64 of the secret
