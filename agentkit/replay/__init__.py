"""Replay: run candidate bots over stored traffic, isolated, and report what they would do."""

from agentkit.replay.engine import Replay, ReplayError, ReplayScope, shadow_report
from agentkit.replay.readonly import ReadOnlyError, read_only_client
from agentkit.replay.recording import recorded_client
from agentkit.replay.report import ReplayReport

__all__ = [
    "ReadOnlyError",
    "Replay",
    "ReplayError",
    "ReplayReport",
    "ReplayScope",
    "read_only_client",
    "recorded_client",
    "shadow_report",
]
