"""Which failures are worth another attempt.

A job that failed because something outside was down, slow or busy (the
store, the API, the model server, a chat webhook, the network) may work on a
later attempt. One that failed on something that will fail the same way again
(a missing or broken prompt, a bug in a handler, a request the API refused as
invalid) is dead-lettered at once, with its reason, instead of being retried.
"""

from __future__ import annotations

import httpx

from agentkit.actions.notify import NotifyError
from agentkit.approvals.slack import SlackError
from agentkit.errors import (
    ApiConnectionError,
    ApiStatusError,
    CallOutcomeUnknownError,
    ConflictError,
    InternalServerError,
    RateLimitError,
)
from agentkit.llm.errors import LlmUnavailable
from agentkit.runtime.dispatch import UnknownJobError
from agentkit.store.base import StoreError

_TRANSIENT: tuple[type[BaseException], ...] = (
    StoreError,
    ApiConnectionError,
    CallOutcomeUnknownError,
    InternalServerError,
    RateLimitError,
    ConflictError,
    LlmUnavailable,
    httpx.TransportError,
    OSError,
    TimeoutError,
    # A job for a bot that only a newer deployment has: another worker may have it.
    UnknownJobError,
)


def is_transient(exc: BaseException) -> bool:
    """Whether a later attempt may succeed where this one failed with ``exc``."""
    if isinstance(exc, (NotifyError, SlackError)):
        return exc.retryable
    if isinstance(exc, ApiStatusError) and exc.status in (408, 425):
        return True
    if isinstance(exc, _TRANSIENT):
        return True
    # Only an explicit ``raise ... from``: an error raised while handling another is its own.
    return isinstance(exc.__cause__, _TRANSIENT)
