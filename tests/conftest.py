from collections.abc import AsyncIterator

import pytest

from agentkit.logs import configure_logging
from tests.process import AgentkitProcess

# agentkit.testing.fixtures comes with agentkit's own pytest plugin (the pytest11 entry point).
pytest_plugins = ["tests.stores"]


@pytest.fixture(autouse=True, scope="session")
def _logging() -> None:
    """Readable log lines at info level; tests read logs with structlog's capture_logs()."""
    configure_logging(level="info", json=False)


@pytest.fixture
async def processes() -> AsyncIterator[list[AgentkitProcess]]:
    """``agentkit run`` processes a test starts (append them); killed after the test."""
    started: list[AgentkitProcess] = []
    yield started
    for process in started:
        await process.kill()
