"""Test helpers for bot authors and for agentkit: a bot harness, a fake model, waits.

``BotHarness`` runs bots end to end on loopback (docs/bots.md, "Testing a bot").
Installed with agentkit, its pytest plugin provides the fixtures ``sim``,
``odygy``, ``fake_llm`` and ``recorder`` and runs ``async def`` tests with no
configuration.
"""

from agentkit.testing.clock import ManualClock
from agentkit.testing.fake_llm import FakeLlm
from agentkit.testing.fixtures import fast_sim_config
from agentkit.testing.harness import BotHarness
from agentkit.testing.recorder import HttpRecorder, Recorded
from agentkit.testing.waiting import wait_until

__all__ = [
    "BotHarness", "FakeLlm", "HttpRecorder", "ManualClock", "Recorded", "fast_sim_config",
    "wait_until",
]
