"""The keys and users pages over HTTP: administrators list keys by prefix, mint one (its secret
in that answer only), revoke one, and add, re-role and remove users; members are refused."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import httpx
import pytest

from conftest import Keys

from .conftest import ConsoleServer
from .support import SAME_ORIGIN, ConsoleClient, sign_in

_SECRET = re.compile(r'<pre id="new-key">(kh_[uo]_[A-Za-z0-9_-]+)</pre>')


@pytest.fixture(scope="module")
def org(console_server: ConsoleServer) -> Keys:
    """An organization of this module's own: its keys and users change here."""
    return console_server.server.bootstrap(f"console-keys-{uuid.uuid4().hex[:8]}", "kim@keys.test")


@pytest.fixture
def admin(console_server: ConsoleServer, org: Keys) -> Iterator[ConsoleClient]:
    client = sign_in(console_server.url, org.user_api_key)
    yield client
    client.http.close()


@pytest.fixture
def rest(console_server: ConsoleServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=console_server.url, timeout=30) as client:
        yield client


def minted_secret(answer: httpx.Response) -> str:
    assert answer.status_code == 200, answer.text
    found = _SECRET.search(answer.text)
    assert found is not None, "the answer shows no new key"
    return found.group(1)


def shown(answer: httpx.Response) -> str:
    """The page's text as a person reads it (entities decoded)."""
    return html.unescape(answer.text)


def keys_of(rest: httpx.Client, org: Keys) -> list[dict[str, object]]:
    answer = rest.get("/api/organization/keys", headers=org.bearer)
    assert answer.status_code == 200, answer.text
    data: list[dict[str, object]] = answer.json()["data"]
    return data


def new_user(rest: httpx.Client, org: Keys, role: str = "member") -> tuple[str, str]:
    """A user added through the REST API and a key minted for it: (user id, key)."""
    email = f"{uuid.uuid4().hex[:10]}@keys.test"
    created = rest.post("/api/organization/users", json={"email": email, "role": role}, headers=org.bearer)
    assert created.status_code == 200, created.text
    user_id = created.json()["data"]["id"]
    minted = rest.post(f"/api/organizations/{org.organization_id}/users/{user_id}/keys", headers=org.bearer)
    assert minted.status_code == 200, minted.text
    return user_id, minted.json()["data"]["value"]


def works(rest: httpx.Client, key: str) -> bool:
    return rest.get("/api/me", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_the_list_shows_prefixes_never_keys(admin: ConsoleClient, org: Keys) -> None:
    page = admin.get("/console/keys")
    assert page.status_code == 200
    assert org.user_api_key[:12] in page.text
    assert org.org_api_key[:12] in page.text
    assert org.user_api_key not in page.text and org.org_api_key not in page.text
    assert "kim@keys.test" in page.text
    assert page.headers["cache-control"] == "no-store"


def test_the_list_filters_by_prefix(admin: ConsoleClient, org: Keys) -> None:
    organization_keys = admin.get("/console/keys", params={"prefix": "kh_o_"})
    assert organization_keys.status_code == 200
    assert org.org_api_key[:12] in organization_keys.text
    assert org.user_api_key[:12] not in organization_keys.text
    nothing = admin.get("/console/keys", params={"prefix": "kh_zz"})
    assert nothing.status_code == 200
    assert "No key's prefix starts with that." in shown(nothing)


@pytest.mark.parametrize("bad", ["whole", "kh_u_bad!", "kh_u_ with space"])
def test_a_whole_key_or_junk_is_refused_as_a_filter_and_never_echoed(
    admin: ConsoleClient, org: Keys, bad: str
) -> None:
    value = org.user_api_key if bad == "whole" else bad
    page = admin.get("/console/keys", params={"prefix": value})
    assert page.status_code == 400
    assert "never send a whole key" in page.text
    assert value not in page.text
    assert org.org_api_key[:12] in page.text  # the unfiltered list is still there


def test_a_key_is_shown_once(admin: ConsoleClient, org: Keys, rest: httpx.Client) -> None:
    user_id, _ = new_user(rest, org)
    before = len(keys_of(rest, org))
    answer = admin.post("/console/keys", {"owner": user_id, "name": "deploys"})
    secret = minted_secret(answer)
    assert secret.startswith("kh_u_")
    assert answer.headers["cache-control"] == "no-store"
    assert 'data-copy="new-key"' in answer.text
    assert "location" not in answer.headers
    assert works(rest, secret)
    listed = keys_of(rest, org)
    assert len(listed) == before + 1
    expected = {"kind": "user", "user_id": user_id, "name": "deploys", "prefix": secret[:12]}
    assert expected.items() <= listed[-1].items()
    again = admin.get("/console/keys")
    assert secret[:12] in again.text and "deploys" in again.text
    assert secret not in again.text


@pytest.mark.parametrize(
    "form",
    [{"owner": "organization"}, {"owner": "organization", "name": "after removal"}, {"name": "nobody's"}],
    ids=["organization", "organization with a name", "no owner"],
)
def test_an_organization_key_is_never_minted_here(
    admin: ConsoleClient, org: Keys, rest: httpx.Client, form: dict[str, str]
) -> None:
    """As through the REST API, an administrator mints users' keys only: an organization key
    would keep an administrator's access after their user is removed."""
    before = keys_of(rest, org)
    answer = admin.post("/console/keys", form)
    assert answer.status_code == 400, answer.text
    assert "keyhole keys create" in shown(answer)
    assert _SECRET.search(answer.text) is None
    assert keys_of(rest, org) == before
    assert 'value="organization"' not in admin.get("/console/keys").text


def test_a_users_key_from_the_users_page(admin: ConsoleClient, org: Keys, rest: httpx.Client) -> None:
    user_id, _ = new_user(rest, org)
    answer = admin.post("/console/keys", {"owner": user_id, "name": "laptop"})
    secret = minted_secret(answer)
    assert secret.startswith("kh_u_")
    identity = rest.get("/api/me", headers={"Authorization": f"Bearer {secret}"}).json()["data"]
    assert identity["id"] == user_id


def test_replacing_a_users_keys_revokes_the_others(
    admin: ConsoleClient, org: Keys, rest: httpx.Client
) -> None:
    user_id, first = new_user(rest, org)
    second = minted_secret(admin.post("/console/keys", {"owner": user_id, "replace": "1"}))
    assert not works(rest, first)
    assert works(rest, second)


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "n" * 201}, "at most 200 characters"),
        ({"name": "bell\x07", "replace": "1"}, "without control characters"),
    ],
)
def test_a_refused_key_form_mints_nothing(
    admin: ConsoleClient, org: Keys, rest: httpx.Client, form: dict[str, str], message: str
) -> None:
    before = keys_of(rest, org)
    answer = admin.post("/console/keys", {"owner": org.user_id, **form})
    assert answer.status_code == 422
    assert message in shown(answer)
    assert _SECRET.search(answer.text) is None
    assert keys_of(rest, org) == before


def test_a_key_for_a_user_of_another_organization_is_not_found(
    admin: ConsoleClient, console_server: ConsoleServer, org: Keys, rest: httpx.Client
) -> None:
    before = keys_of(rest, org)
    answer = admin.post("/console/keys", {"owner": console_server.rival.user_id})
    assert answer.status_code == 404
    assert _SECRET.search(answer.text) is None
    assert keys_of(rest, org) == before


def test_revoking_asks_first_then_the_key_stops_working(
    admin: ConsoleClient, org: Keys, rest: httpx.Client
) -> None:
    _, key = new_user(rest, org)
    key_id = next(row["id"] for row in keys_of(rest, org) if row["prefix"] == key[:12])
    confirm = admin.get(f"/console/keys/{key_id}/revoke")
    assert confirm.status_code == 200
    assert "Revoke this key?" in confirm.text and key[:12] in confirm.text
    assert "ends this session" not in confirm.text
    assert works(rest, key)  # asking changed nothing
    done = admin.post(f"/console/keys/{key_id}/revoke")
    assert done.status_code == 303
    assert done.headers["location"] == "/console/keys?done=revoked"
    assert not works(rest, key)
    listing = admin.get(done.headers["location"])
    assert "The key is revoked" in listing.text
    assert f"/console/keys/{key_id}/revoke" not in listing.text


def test_keys_of_another_organization_cannot_be_revoked(
    admin: ConsoleClient, console_server: ConsoleServer, rest: httpx.Client
) -> None:
    rival = console_server.rival
    rival_key_id = str(keys_of(rest, rival)[0]["id"])
    assert admin.get(f"/console/keys/{rival_key_id}/revoke").status_code == 404
    assert admin.post(f"/console/keys/{rival_key_id}/revoke").status_code == 404
    for missing in ("not-a-key", str(uuid.uuid4()), rival_key_id.upper()):
        assert admin.get(f"/console/keys/{missing}/revoke").status_code == 404
        assert admin.post(f"/console/keys/{missing}/revoke").status_code == 404
    assert works(rest, rival.user_api_key)


def test_revoking_the_key_of_this_session_signs_out(
    console_server: ConsoleServer, org: Keys, rest: httpx.Client
) -> None:
    _, key = new_user(rest, org, role="admin")
    client = sign_in(console_server.url, key)
    key_id = next(row["id"] for row in keys_of(rest, org) if row["prefix"] == key[:12])
    assert "this session" in client.get("/console/keys").text
    confirm = client.get(f"/console/keys/{key_id}/revoke")
    assert "revoking it ends this session" in confirm.text
    token = client.http.cookies["keyhole_session"]
    ended = client.post(f"/console/keys/{key_id}/revoke")
    assert ended.status_code == 200
    assert "Key revoked, session ended" in ended.text
    assert 'action="/console/sign-out"' not in ended.text  # no signed-in header on the page
    assert "keyhole_session=" in ended.headers["set-cookie"] and "Max-Age=0" in ended.headers["set-cookie"]
    after = rest.get("/console/keys", headers={"Cookie": f"keyhole_session={token}"})
    assert after.status_code == 303  # the session is gone from the store, not only from the browser
    assert after.headers["location"].startswith("/console/sign-in?next=")


def test_replacing_the_keys_of_this_sessions_user_signs_out(
    console_server: ConsoleServer, org: Keys, rest: httpx.Client
) -> None:
    user_id, key = new_user(rest, org, role="admin")
    client = sign_in(console_server.url, key)
    answer = client.post("/console/keys", {"owner": user_id, "replace": "1"})
    secret = minted_secret(answer)
    assert "this session has ended" in answer.text
    assert 'action="/console/sign-out"' not in answer.text
    assert client.get("/console/keys").status_code == 303
    assert not works(rest, key)
    assert sign_in(console_server.url, secret).get("/console/keys").status_code == 200


def test_users_are_added_with_a_role(admin: ConsoleClient, org: Keys, rest: httpx.Client) -> None:
    email = f"{uuid.uuid4().hex[:8]}@keys.test"
    added = admin.post("/console/users", {"email": f"  {email.upper()} ", "role": "admin"})
    assert added.status_code == 303
    assert added.headers["location"] == "/console/users?done=added"
    page = admin.get(added.headers["location"])
    assert email in page.text and "The user is added" in page.text
    users = rest.get("/api/organization/users", headers=org.bearer).json()["data"]
    assert {"email": email, "role": "admin"}.items() <= next(u for u in users if u["email"] == email).items()


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({"email": "not-an-address", "role": "member"}, 422, "email must look like"),
        ({"email": "kim@keys.test", "role": "member"}, 409, "already has this email"),
        ({"email": "x@keys.test", "role": "owner"}, 422, "unknown role"),
    ],
)
def test_a_refused_user_form_adds_nobody(
    admin: ConsoleClient, org: Keys, rest: httpx.Client, form: dict[str, str], status: int, message: str
) -> None:
    before = rest.get("/api/organization/users", headers=org.bearer).json()["data"]
    answer = admin.post("/console/users", form)
    assert answer.status_code == status
    assert message in shown(answer)
    assert f'value="{form["email"]}"' in answer.text  # what was typed is kept
    assert rest.get("/api/organization/users", headers=org.bearer).json()["data"] == before


def test_a_role_is_changed(admin: ConsoleClient, org: Keys, rest: httpx.Client) -> None:
    user_id, key = new_user(rest, org)
    changed = admin.post(f"/console/users/{user_id}/role", {"role": "admin"})
    assert changed.status_code == 303
    assert changed.headers["location"] == "/console/users?done=role"
    assert rest.get("/api/me", headers={"Authorization": f"Bearer {key}"}).json()["data"]["role"] == "admin"
    refused = admin.post(f"/console/users/{user_id}/role", {"role": "root"})
    assert refused.status_code == 422
    missing = admin.post(f"/console/users/{uuid.uuid4()}/role", {"role": "member"})
    assert missing.status_code == 404


def test_demoting_oneself_leaves_the_admin_pages(
    console_server: ConsoleServer, org: Keys, rest: httpx.Client
) -> None:
    user_id, key = new_user(rest, org, role="admin")
    client = sign_in(console_server.url, key)
    demoted = client.post(f"/console/users/{user_id}/role", {"role": "member"})
    assert demoted.status_code == 303
    assert demoted.headers["location"] == "/console/connections"
    assert client.get("/console/users").status_code == 403


def test_removing_asks_first_then_the_user_and_keys_go(
    admin: ConsoleClient, org: Keys, rest: httpx.Client
) -> None:
    user_id, key = new_user(rest, org)
    email = rest.get(f"/api/organization/users/{user_id}", headers=org.bearer).json()["data"]["email"]
    confirm = admin.get(f"/console/users/{user_id}/remove")
    assert confirm.status_code == 200
    assert f"Remove {email}?" in confirm.text
    assert works(rest, key)
    removed = admin.post(f"/console/users/{user_id}/remove")
    assert removed.status_code == 303
    assert removed.headers["location"] == "/console/users?done=removed"
    assert not works(rest, key)
    assert email not in admin.get("/console/users").text
    assert admin.get(f"/console/users/{user_id}/remove").status_code == 404


def test_a_key_cannot_remove_its_own_user(admin: ConsoleClient, org: Keys, rest: httpx.Client) -> None:
    confirm = admin.get(f"/console/users/{org.user_id}/remove")
    assert confirm.status_code == 200
    assert "a key cannot remove its own user" in confirm.text
    assert f'action="/console/users/{org.user_id}/remove"' not in confirm.text
    refused = admin.post(f"/console/users/{org.user_id}/remove")
    assert refused.status_code == 409
    assert works(rest, org.user_api_key)


def test_an_organization_key_manages_users_too(
    console_server: ConsoleServer, org: Keys, rest: httpx.Client
) -> None:
    client = sign_in(console_server.url, org.org_api_key)
    user_id, key = new_user(rest, org)
    assert client.get("/console/users").status_code == 200
    assert client.post(f"/console/users/{user_id}/remove").status_code == 303
    assert not works(rest, key)


def test_a_member_gets_403_and_no_link(console_server: ConsoleServer, org: Keys, rest: httpx.Client) -> None:
    user_id, key = new_user(rest, org)
    member = sign_in(console_server.url, key)
    home = member.get("/console/connections")
    assert 'href="/console/keys"' not in home.text
    key_id = keys_of(rest, org)[0]["id"]
    before_keys, before_users = (
        keys_of(rest, org),
        rest.get("/api/organization/users", headers=org.bearer).json(),
    )
    for path in (
        "/console/keys",
        "/console/users",
        f"/console/keys/{key_id}/revoke",
        f"/console/users/{user_id}/remove",
    ):
        answer = member.get(path)
        assert answer.status_code == 403, path
        assert "admin role" in answer.text
    posts = [
        ("/console/keys", {"owner": user_id}),
        (f"/console/keys/{key_id}/revoke", {}),
        ("/console/users", {"email": "sneaky@keys.test", "role": "admin"}),
        (f"/console/users/{user_id}/role", {"role": "admin"}),
        (f"/console/users/{org.user_id}/remove", {}),
    ]
    for path, form in posts:
        answer = member.post(path, form)
        assert answer.status_code == 403, path
        assert _SECRET.search(answer.text) is None
    assert keys_of(rest, org) == before_keys
    assert rest.get("/api/organization/users", headers=org.bearer).json() == before_users


def test_only_live_keys_are_counted_for_a_user(admin: ConsoleClient, org: Keys, rest: httpx.Client) -> None:
    user_id, first = new_user(rest, org)
    again = rest.post(f"/api/organizations/{org.organization_id}/users/{user_id}/keys", headers=org.bearer)
    assert again.status_code == 200, again.text
    first_id = next(row["id"] for row in keys_of(rest, org) if row["prefix"] == first[:12])
    assert rest.delete(f"/api/organization/keys/{first_id}", headers=org.bearer).status_code == 200
    confirm = admin.get(f"/console/users/{user_id}/remove")
    assert "<dt>Active keys</dt><dd>1</dd>" in confirm.text
    listing = admin.get("/console/users")
    row = next(row for row in listing.text.split("<tr>") if f"/console/users/{user_id}/role" in row)
    assert '<td class="num">1</td>' in row


def test_without_users_there_is_no_key_to_mint(console_server: ConsoleServer, rest: httpx.Client) -> None:
    lone = console_server.server.bootstrap(f"console-lone-{uuid.uuid4().hex[:8]}", "lou@lone.test")
    client = sign_in(console_server.url, lone.org_api_key)
    assert client.post(f"/console/users/{lone.user_id}/remove").status_code == 303
    page = client.get("/console/keys")
    assert page.status_code == 200
    assert "Add a user first" in shown(page)
    assert 'action="/console/keys"' not in page.text.replace('method="get" action="/console/keys"', "")


# -- forms carry exactly the fields their page generated -----------------------------------------

_FORMS = [
    ("/console/keys", [("owner", "{user}"), ("name", "n"), ("replace", "1")]),
    ("/console/keys/{key}/revoke", []),
    ("/console/users", [("email", "added@keys.test"), ("role", "admin")]),
    ("/console/users/{user}/role", [("role", "admin")]),
    ("/console/users/{user}/remove", []),
    ("/console/sign-out", []),
]
_TAMPERED = [
    pytest.param(path, fields, how, id=f"{path} with {how}")
    for path, fields in _FORMS
    for how in ("a field the page lacks", "a field twice")
    if fields or how == "a field the page lacks"
]


@pytest.mark.parametrize(("path", "fields", "how"), _TAMPERED)
def test_a_form_with_a_field_it_did_not_generate_changes_nothing(
    admin: ConsoleClient,
    org: Keys,
    rest: httpx.Client,
    path: str,
    fields: list[tuple[str, str]],
    how: str,
) -> None:
    user_id, key = new_user(rest, org)
    key_id = next(row["id"] for row in keys_of(rest, org) if row["prefix"] == key[:12])
    sent = [(name, value.format(user=user_id)) for name, value in fields]
    sent += [("force", "1")] if how == "a field the page lacks" else [sent[0]]
    users_before, keys_before = (
        rest.get("/api/organization/users", headers=org.bearer).json(),
        keys_of(rest, org),
    )

    answer = admin.http.post(
        path.format(user=user_id, key=key_id),
        content=urlencode([*sent, ("csrf_token", admin.csrf)]),
        headers={**SAME_ORIGIN, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 400, answer.text
    assert ("unexpected_field" if how == "a field the page lacks" else "repeated_field") in answer.text
    assert _SECRET.search(answer.text) is None
    assert rest.get("/api/organization/users", headers=org.bearer).json() == users_before
    assert keys_of(rest, org) == keys_before
    assert works(rest, key)
    assert admin.get("/console/keys").status_code == 200  # the session is still signed in
