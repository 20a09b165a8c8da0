"""agentkit: AI bots for the phone.systems cloud PBX.

What is promised is what this module exports; everything else is internal.
"""

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
    "CallOutcomeUnknownError",
    "ClientStats",
    "ConfigError",
    "ConflictError",
    "InternalServerError",
    "NotFoundError",
    "OdygyClient",
    "Paginator",
    "PermissionDeniedError",
    "RateLimitError",
    "RateLimits",
    "RequestValidationError",
    "RetryPolicy",
    "Settings",
    "__version__",
]
