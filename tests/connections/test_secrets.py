from __future__ import annotations

from typing import Any

import pytest

from keyhole.connections.secrets import (
    format_pointer,
    join_secrets,
    keep_redacted,
    parse_pointer,
    redact,
    split_secrets,
)
from keyhole.errors import Unprocessable
from keyhole.vault.scrub import REDACTED

API_POINTERS = ["/auth/token", "/auth/password", "/auth/value"]

ROUNDTRIPS: list[tuple[dict[str, Any], list[str], dict[str, Any]]] = [
    (
        {"url": "https://x", "auth": {"type": "bearer", "token": "t0k"}},
        API_POINTERS,
        {"/auth/token": "t0k"},
    ),
    (
        {"url": "https://x", "auth": {"type": "basic", "username": "u", "password": ""}},
        API_POINTERS,
        {"/auth/password": ""},
    ),
    ({"url": "https://x", "auth": {"type": "none"}}, API_POINTERS, {}),
    ({"url": "https://x"}, API_POINTERS, {}),
    ({"hostname": "h", "password": "pw", "port": 5432}, ["/password"], {"/password": "pw"}),
    ({"path": "/db"}, [], {}),
    ({"a/b": {"c~d": "s"}, "e": 1}, ["/a~1b/c~0d"], {"/a~1b/c~0d": "s"}),
    ({"": {"": "s"}}, ["//"], {"//": "s"}),
    ({"n": {"deep": {"x": [1, {"y": 2}]}}}, ["/n/deep"], {"/n/deep": {"x": [1, {"y": 2}]}}),
    ({"auth": "not-an-object"}, ["/auth/token"], {}),
    ({"token": None}, ["/token"], {"/token": None}),
]


@pytest.mark.parametrize(("configuration", "pointers", "expected_secrets"), ROUNDTRIPS)
def test_split_join_roundtrip(
    configuration: dict[str, Any], pointers: list[str], expected_secrets: dict[str, Any]
) -> None:
    snapshot = repr(configuration)
    public, secrets = split_secrets(configuration, pointers)
    assert secrets == expected_secrets
    for pointer in secrets:
        tokens = parse_pointer(pointer)
        node: Any = public
        for token in tokens[:-1]:
            node = node[token]
        assert tokens[-1] not in node
    assert join_secrets(public, secrets) == configuration
    assert repr(configuration) == snapshot, "inputs must not be modified"


def test_split_is_a_deep_copy() -> None:
    configuration = {"auth": {"type": "bearer", "token": "t"}, "headers": {"A": "1"}}
    public, _ = split_secrets(configuration, API_POINTERS)
    public["headers"]["A"] = "2"
    public["auth"]["type"] = "none"
    assert configuration == {"auth": {"type": "bearer", "token": "t"}, "headers": {"A": "1"}}


def test_split_removes_only_the_secret() -> None:
    public, secrets = split_secrets({"url": "u", "auth": {"type": "bearer", "token": "t"}}, API_POINTERS)
    assert public == {"url": "u", "auth": {"type": "bearer"}}
    assert secrets == {"/auth/token": "t"}


def test_join_creates_missing_parents_and_copies() -> None:
    stored = {"/auth/token": {"nested": "t"}}
    joined = join_secrets({"url": "u"}, stored)
    assert joined == {"url": "u", "auth": {"token": {"nested": "t"}}}
    joined["auth"]["token"]["nested"] = "changed"
    assert stored == {"/auth/token": {"nested": "t"}}


def test_join_refuses_to_overwrite_a_non_object() -> None:
    with pytest.raises(ValueError, match="not an object"):
        join_secrets({"auth": "x"}, {"/auth/token": "t"})


def test_redact() -> None:
    public = {"url": "u", "auth": {"type": "bearer"}}
    assert redact(public, {"/auth/token": "t"}) == {"url": "u", "auth": {"type": "bearer", "token": REDACTED}}
    assert public == {"url": "u", "auth": {"type": "bearer"}}
    assert redact({"hostname": "h"}, {}) == {"hostname": "h"}
    assert redact({"a/b": {}}, {"/a~1b/c~0d": "s"}) == {"a/b": {"c~d": REDACTED}}
    assert REDACTED == "[REDACTED]"


def test_redact_never_shows_the_value() -> None:
    public, secrets = split_secrets({"password": "hunter2", "hostname": "h"}, ["/password"])
    assert "hunter2" not in repr(redact(public, secrets))


def test_keep_redacted_restores_stored_secret() -> None:
    stored = {"/auth/token": "old-token"}
    new: dict[str, Any] = {"url": "https://new", "auth": {"type": "bearer", "token": REDACTED}}
    result = keep_redacted(new, stored, API_POINTERS)
    assert result == {"url": "https://new", "auth": {"type": "bearer", "token": "old-token"}}
    assert new["auth"]["token"] == REDACTED, "input must not be modified"


def test_keep_redacted_accepts_new_secret_and_absent_pointers() -> None:
    stored = {"/auth/token": "old"}
    new = {"url": "u", "auth": {"type": "bearer", "token": "new"}}
    assert keep_redacted(new, stored, API_POINTERS) == new
    assert keep_redacted({"url": "u"}, stored, API_POINTERS) == {"url": "u"}


def test_keep_redacted_only_at_secret_pointers() -> None:
    new = {"url": "u", "note": REDACTED}
    assert keep_redacted(new, {"/note": "x"}, API_POINTERS) == new


def test_keep_redacted_placeholder_without_stored_secret() -> None:
    stored = {"/auth/token": "stored-t0k3n"}
    new = {"url": "u", "auth": {"type": "basic", "username": "me", "password": REDACTED}}
    with pytest.raises(Unprocessable) as caught:
        keep_redacted(new, stored, API_POINTERS)
    assert caught.value.key == "invalid_configuration"
    assert caught.value.status == 422
    assert caught.value.metadata == {
        "errors": [{"field": "/auth/password", "message": "'[REDACTED]' is a placeholder; send the secret"}]
    }
    assert "stored-t0k3n" not in caught.value.message


def test_keep_redacted_with_escaped_pointer() -> None:
    pointer = "/a~1b/c~0d"
    new = {"a/b": {"c~d": REDACTED}}
    assert keep_redacted(new, {pointer: "s"}, [pointer]) == {"a/b": {"c~d": "s"}}


@pytest.mark.parametrize(
    ("pointer", "tokens"),
    [
        ("/a", ("a",)),
        ("/a/b", ("a", "b")),
        ("/a~1b", ("a/b",)),
        ("/m~0n", ("m~n",)),
        ("/~01", ("~1",)),
        ("/~10", ("/0",)),
        ("/", ("",)),
        ("//", ("", "")),
    ],
)
def test_pointer_escapes(pointer: str, tokens: tuple[str, ...]) -> None:
    assert parse_pointer(pointer) == tokens
    assert format_pointer(tokens) == pointer


@pytest.mark.parametrize("pointer", ["", "a", "a/b", "/~", "/a~2", "/~~01"])
def test_invalid_pointers(pointer: str) -> None:
    with pytest.raises(ValueError):
        parse_pointer(pointer)
    with pytest.raises(ValueError):
        split_secrets({"a": 1}, [pointer])


def test_format_pointer_root() -> None:
    assert format_pointer(()) == ""
    assert format_pointer(["headers", 0]) == "/headers/0"
