import pytest

from agentkit.logs import configure_logging

pytest_plugins = ["agentkit.testing.fixtures", "tests.stores"]


@pytest.fixture(autouse=True, scope="session")
def _logging() -> None:
    """Readable log lines at info level; tests read logs with structlog's capture_logs()."""
    configure_logging(level="info", json=False)
