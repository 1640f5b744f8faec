"""Two partner accounts on the shared server."""

from __future__ import annotations

import uuid

import pytest

from conftest import KeyholeServer

from .support import Partner, bootstrap_partner


@pytest.fixture
def partner(server: KeyholeServer) -> Partner:
    suffix = uuid.uuid4().hex[:8]
    return bootstrap_partner(server, f"partner-{suffix}", f"owner@{suffix}.test")


@pytest.fixture
def other_partner(server: KeyholeServer) -> Partner:
    suffix = uuid.uuid4().hex[:8]
    return bootstrap_partner(server, f"rival-{suffix}", f"owner@{suffix}.test")
