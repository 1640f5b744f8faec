"""Fixtures of the idempotency suite: a counting upstream in its own process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jobs.support import Upstream, upstream


@pytest.fixture(scope="session")
def counting_upstream() -> Iterator[Upstream]:
    with upstream() as instance:
        yield instance
