"""Only the principal who submitted a query reads or cancels it; everyone else gets 404."""

from __future__ import annotations

import httpx
import pytest
from polytomic import Polytomic
from polytomic.errors import NotFoundError

from conftest import KeyholeServer, Keys

from .conftest import mint_key
from .support import run, sdk


@pytest.fixture(scope="module")
def colleague(qserver: KeyholeServer, alice: Keys) -> Polytomic:
    """Another user of alice's organization, with a key minted by `keyhole keys create`."""
    other = qserver.bootstrap("query-org", "other@query.test")
    assert other.organization_id == alice.organization_id and other.user_id != alice.user_id
    return sdk(qserver, mint_key(qserver, alice.organization_id, other.user_id))


@pytest.fixture(scope="module")
def organization(qserver: KeyholeServer, alice: Keys) -> Polytomic:
    """Alice's organization itself (Basic org id:org key): principal ``org:<id>``."""
    return sdk(qserver, headers=alice.basic)


@pytest.fixture(scope="module")
def stranger(qserver: KeyholeServer) -> Keys:
    return qserver.bootstrap("another-org", "mallory@elsewhere.test")


def _denied(server: KeyholeServer, headers: dict[str, str], query_id: str) -> None:
    with httpx.Client(base_url=server.url, headers=headers) as http:
        for response in (http.get(f"/api/queries/{query_id}"), http.delete(f"/api/queries/{query_id}")):
            assert response.status_code == 404, response.text
            assert response.json()["key"] == "query_not_found"
            assert response.json()["message"] == "query not found"


def test_only_the_submitter_reads_or_cancels(
    qserver: KeyholeServer,
    alice: Keys,
    client: Polytomic,
    colleague: Polytomic,
    organization: Polytomic,
    stranger: Keys,
    sqlite_conn: str,
) -> None:
    mine = run(client, sqlite_conn, "SELECT name FROM items ORDER BY id")
    assert mine.data.status == "done"
    for other in (colleague, organization, sdk(qserver, stranger.user_api_key)):
        with pytest.raises(NotFoundError):
            other.query_runner.get_query(id=mine.data.id)
    for headers in (alice.basic, stranger.bearer, stranger.basic):
        _denied(qserver, headers, mine.data.id)
    # a missing query answers exactly the same
    _denied(qserver, alice.bearer, "00000000-0000-0000-0000-000000000000")
    assert client.query_runner.get_query(id=mine.data.id).data.count == 3


def test_an_organization_key_reads_only_its_own_queries(
    qserver: KeyholeServer, alice: Keys, client: Polytomic, organization: Polytomic, sqlite_conn: str
) -> None:
    submitted = organization.query_runner.run_query(connection_id=sqlite_conn, query="SELECT 1 AS one")
    result = run(organization, sqlite_conn, "SELECT 2 AS two")
    assert result.data.results == [{"two": 2}]
    with pytest.raises(NotFoundError):
        client.query_runner.get_query(id=submitted.data.id)  # the user of that organization: 404
    _denied(qserver, alice.bearer, result.data.id)


def test_a_foreign_connection_is_not_found(stranger: Keys, qserver: KeyholeServer, sqlite_conn: str) -> None:
    with pytest.raises(NotFoundError):
        sdk(qserver, stranger.user_api_key).query_runner.run_query(
            connection_id=sqlite_conn, query="SELECT 1"
        )
