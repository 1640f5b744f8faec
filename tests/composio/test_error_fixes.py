"""The Composio envelope's suggested fix follows the error, not only its status: two 503s with
different causes give different advice."""

from __future__ import annotations

from keyhole.api.composio.errors import envelope
from keyhole.blobs import BlobStoreUnavailable
from keyhole.errors import EgressSaturated, SecretsUnreadable


def test_each_503_gets_its_own_advice() -> None:
    unreadable = envelope(SecretsUnreadable("a stored secret cannot be opened"), "r1")[1]["error"]
    saturated = envelope(EgressSaturated("busy", key="egress_saturated"), "r2")[1]["error"]
    blobs = envelope(BlobStoreUnavailable("the blob store could not be read"), "r3")[1]["error"]
    assert unreadable["status"] == 503 and "KEYHOLE_MASTER_KEYS" in unreadable["suggested_fix"]
    assert saturated["status"] == 503 and "KEYHOLE_MASTER_KEYS" not in saturated["suggested_fix"]
    assert blobs["status"] == 503 and "KEYHOLE_MASTER_KEYS" not in blobs["suggested_fix"]
