"""Test helpers for agentkit and for bot authors: a running simulator, waits, fixtures.

Use the fixtures with ``pytest_plugins = ["agentkit.testing.fixtures"]`` in a conftest.
"""

from agentkit.testing.fake_llm import FakeLlm
from agentkit.testing.fixtures import fast_sim_config
from agentkit.testing.recorder import HttpRecorder, Recorded
from agentkit.testing.waiting import wait_until

__all__ = ["FakeLlm", "HttpRecorder", "Recorded", "fast_sim_config", "wait_until"]
