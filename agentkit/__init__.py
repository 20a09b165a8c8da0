"""agentkit: AI bots for the phone.systems cloud PBX.

What is promised is what this module exports; everything else is internal.
"""

from agentkit.actions.callbacks import CallbackResult
from agentkit.actions.hours import BusinessHours
from agentkit.actions.notify import ChatMessage
from agentkit.actions.policy import DialPolicy, PolicyDecision, to_e164
from agentkit.actions.toolkit import Actions
from agentkit.actions.window import CallbackWindow, WindowReading, read_window
from agentkit.bot import (
    Approvals,
    Bot,
    BotDefinitionError,
    CallbackPolicy,
    Escalation,
    Team,
    Urgency,
)
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
    CallbackEnded,
    CallbackOutcome,
    CallCompleted,
    CallEvent,
    CallInitiated,
    Event,
    NumberPorted,
    RecordingReady,
    Requested,
    ScheduleChanged,
    TranscriptReady,
    UnknownEvent,
    UnreadableEvent,
    VoicemailReceived,
)
from agentkit.history import History
from agentkit.llm import (
    Classification,
    Decision,
    LlmError,
    LlmInvalidAnswer,
    LlmTasks,
    LlmUnavailable,
    PromptError,
    Usage,
)
from agentkit.odygy import NOT_GIVEN, ClientStats, OdygyClient, Paginator, RateLimits, RetryPolicy
from agentkit.odygy.models import Call, CallFlow, Number, Transcript, TranscriptSegment, User
from agentkit.redact import mask_payment_data, mask_segments
from agentkit.replay import ReadOnlyError, Replay, ReplayReport, ReplayScope
from agentkit.reporting import CallbackFigures, DayReport, Reports
from agentkit.settings import Settings
from agentkit.store.base import ActionRecord

__version__ = "0.1.0"

__all__ = [
    "NOT_GIVEN",
    "ActionRecord",
    "Actions",
    "AgentkitError",
    "ApiConnectionError",
    "ApiError",
    "ApiStatusError",
    "ApiTimeoutError",
    "Approvals",
    "AuthenticationError",
    "BadRequestError",
    "Bot",
    "BotDefinitionError",
    "BusinessHours",
    "Call",
    "CallAnswered",
    "CallCompleted",
    "CallEvent",
    "CallFlow",
    "CallInitiated",
    "CallOutcomeUnknownError",
    "CallbackEnded",
    "CallbackFigures",
    "CallbackOutcome",
    "CallbackPolicy",
    "CallbackResult",
    "CallbackWindow",
    "ChatMessage",
    "Classification",
    "ClientStats",
    "ConfigError",
    "ConflictError",
    "Context",
    "DayReport",
    "Decision",
    "DialPolicy",
    "Escalation",
    "Event",
    "History",
    "InternalServerError",
    "LlmError",
    "LlmInvalidAnswer",
    "LlmTasks",
    "LlmUnavailable",
    "NotFoundError",
    "Number",
    "NumberPorted",
    "OdygyClient",
    "Paginator",
    "PermissionDeniedError",
    "PolicyDecision",
    "PromptError",
    "RateLimitError",
    "RateLimits",
    "ReadOnlyError",
    "RecordingReady",
    "Replay",
    "ReplayReport",
    "ReplayScope",
    "Reports",
    "RequestValidationError",
    "Requested",
    "RetryPolicy",
    "ScheduleChanged",
    "Settings",
    "Team",
    "Transcript",
    "TranscriptReady",
    "TranscriptSegment",
    "UnknownEvent",
    "UnreadableEvent",
    "Urgency",
    "Usage",
    "User",
    "VoicemailReceived",
    "WindowReading",
    "__version__",
    "mask_payment_data",
    "mask_segments",
    "read_window",
    "to_e164",
]
