"""Fixtures of the jobs suite: one upstream process, fresh PostgreSQL databases, and a
deployment per engine (reused by every test of a module)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conftest import Keys

from .support import AsyncApi, Databases, Deployment, Upstream, api, deploy, upstream

ENGINES = ["embedded", "procrastinate"]


@pytest.fixture(scope="session")
def slow_upstream() -> Iterator[Upstream]:
    with upstream() as instance:
        yield instance


@pytest.fixture(scope="session")
def databases() -> Iterator[Databases]:
    instance = Databases()
    yield instance
    instance.drop_all()


@pytest.fixture(scope="module", params=ENGINES)
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, databases: Databases
) -> Iterator[Deployment]:
    home = tmp_path_factory.mktemp(f"jobs-{request.param}")
    instance = deploy(home, request.param, databases, workers=1)
    yield instance
    instance.stop()


@pytest.fixture(scope="module")
def tenants(deployment: Deployment) -> tuple[Keys, Keys]:
    return deployment.server.bootstrap("jobs-a", "a@jobs.test"), deployment.server.bootstrap(
        "jobs-b", "b@jobs.test"
    )


@pytest.fixture(scope="module")
def client_a(deployment: Deployment, tenants: tuple[Keys, Keys]) -> Iterator[AsyncApi]:
    instance = api(deployment.server.url, tenants[0].bearer)
    yield instance
    instance.client.close()


@pytest.fixture(scope="module")
def client_b(deployment: Deployment, tenants: tuple[Keys, Keys]) -> Iterator[AsyncApi]:
    instance = api(deployment.server.url, tenants[1].bearer)
    yield instance
    instance.client.close()
