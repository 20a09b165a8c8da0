"""A fresh PostgreSQL database for each reliability test that needs one."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.reliability.support import fresh_database, postgres_missing


@pytest.fixture
async def database() -> AsyncIterator[str]:
    reason = await postgres_missing()
    if reason:
        pytest.skip(f"needs PostgreSQL: {reason}")
    async with fresh_database() as url:
        yield url
