"""The Composio dialect serves a shared copy as a connected account of the child organization:
``proxy_execute`` uses the parent's credential, and the copy's credential and status cannot be
patched there either."""

from __future__ import annotations

from typing import Any

import httpx

from composio.conftest import Composio, envelope

from .support import REDACTED, PartnerAccount, create_connection, share

TOKEN = "tok_Shared_Composio_4kW9"


def _echoed_authorization(cio: Composio, account_id: str) -> str:
    result: dict[str, Any] = cio.ok(
        {"endpoint": "/headers", "method": "GET", "connected_account_id": account_id}
    )
    assert result["status"] == 200 and TOKEN not in str(result)
    return str(result["data"]["headers"]["Authorization"])


def test_proxy_execute_through_a_shared_copy(
    http: httpx.Client, account: PartnerAccount, httpbin_url: str
) -> None:
    configuration = {"url": httpbin_url, "auth": {"type": "bearer", "token": TOKEN}}
    parent = create_connection(http, account.owner.bearer, "api", configuration)
    copy = share(http, account, parent, account.child_a)
    cio_a = Composio(
        httpx.Client(base_url=str(http.base_url), headers={"x-api-key": account.child_a.org_api_key})
    )
    cio_b = Composio(
        httpx.Client(base_url=str(http.base_url), headers={"x-api-key": account.child_b.org_api_key})
    )
    try:
        assert _echoed_authorization(cio_a, copy) == f"Bearer {REDACTED}"
        shown = cio_a.get(f"/connected_accounts/{copy}")
        assert shown.status_code == 200 and TOKEN not in shown.text
        assert shown.json()["state"]["val"]["token"] == REDACTED

        patched = cio_a.patch(
            f"/connected_accounts/{copy}",
            {"connection": {"state": {"authScheme": "BEARER_TOKEN", "val": {"token": "tok_mine"}}}},
        )
        envelope(patched, 403, "SharedConnectionReadOnly")
        envelope(
            cio_a.patch(f"/connected_accounts/{copy}/status", {"enabled": False}),
            403,
            "SharedConnectionReadOnly",
        )
        # Still the parent's credential (a stored "tok_mine" would echo unscrubbed), still enabled.
        assert _echoed_authorization(cio_a, copy) == f"Bearer {REDACTED}"
        assert cio_a.get(f"/connected_accounts/{copy}").json()["status"] == "ACTIVE"

        refused = cio_b.proxy({"endpoint": "/headers", "method": "GET", "connected_account_id": copy})
        envelope(refused, 404, "ConnectedAccount_NotFound")
    finally:
        cio_a.client.close()
        cio_b.client.close()
