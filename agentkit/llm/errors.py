"""The errors of the model layer, split by who has to act on them."""

from __future__ import annotations

from agentkit.errors import AgentkitError


class LlmError(AgentkitError):
    """A model task failed."""


class LlmUnavailable(LlmError):
    """No model is configured, or the model failed after its retries; fall back or retry later.

    ``status`` is the server's HTTP status, None when no answer came back.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LlmRequestError(LlmError):
    """The model server refused the request itself (400, 413, 422): retrying will not help."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LlmInvalidAnswer(LlmError):
    """The model's answer did not fit the task's schema, even after one re-ask.

    ``problem`` says what was wrong with the last answer (never the answer itself).
    """

    def __init__(self, message: str, *, task: str, problem: str) -> None:
        super().__init__(message)
        self.task = task
        self.problem = problem


class LlmUsageError(LlmError, ValueError):
    """A task was called wrongly (no labels, a reserved variable name); fix the calling code."""


class PromptError(AgentkitError):
    """A prompt template is missing, broken, or needs a variable that was not given."""
