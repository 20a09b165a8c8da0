"""agentkit: AI bots for the phone.systems cloud PBX.

What is promised is what this module exports; everything else is internal.
"""

from agentkit.bot import Bot, BotDefinitionError
from agentkit.context import Context
from agentkit.errors import (
    AgentkitError,
    ApiConnectionError,
    ApiError,
    ApiStatusError,
    ApiTimeoutError,
    AuthenticationError,
    BadRequestError,
    CallOutcomeUnknownError,
    ConfigError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
)
from agentkit.events import (
    CallAnswered,
    CallCompleted,
    CallEvent,
    CallInitiated,
    Event,
    NumberPorted,
    RecordingReady,
    TranscriptReady,
    UnknownEvent,
    UnreadableEvent,
    VoicemailReceived,
)
from agentkit.odygy import NOT_GIVEN, ClientStats, OdygyClient, Paginator, RateLimits, RetryPolicy
from agentkit.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "NOT_GIVEN",
    "AgentkitError",
    "ApiConnectionError",
    "ApiError",
    "ApiStatusError",
    "ApiTimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "Bot",
    "BotDefinitionError",
    "CallAnswered",
    "CallCompleted",
    "CallEvent",
    "CallInitiated",
    "CallOutcomeUnknownError",
    "ClientStats",
    "ConfigError",
    "ConflictError",
    "Context",
    "Event",
    "InternalServerError",
    "NotFoundError",
    "NumberPorted",
    "OdygyClient",
    "Paginator",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimits",
    "RecordingReady",
    "RequestValidationError",
    "RetryPolicy",
    "Settings",
    "TranscriptReady",
    "UnknownEvent",
    "UnreadableEvent",
    "VoicemailReceived",
    "__version__",
]
