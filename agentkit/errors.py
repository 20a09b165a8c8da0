"""The error tree: every error agentkit raises derives from AgentkitError."""

from __future__ import annotations


class AgentkitError(Exception):
    """Root of every error agentkit raises."""


class ConfigError(AgentkitError):
    """The configuration is missing or wrong; raised at start-up, before any work."""


class RequestValidationError(AgentkitError, ValueError):
    """A request was refused before sending because one of its values is invalid."""


class ApiError(AgentkitError):
    """A phone.systems API request failed.

    ``status`` is the HTTP status (None when no answer came back), ``code`` the
    API's machine-readable error code, ``request_id`` the id to quote to support.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.request_id = request_id
        self.method = method
        self.path = path

    def __str__(self) -> str:
        parts = [self.message]
        where = " ".join(p for p in (self.method, self.path) if p)
        if where:
            parts.append(f"({where})")
        if self.status is not None:
            parts.append(f"[status {self.status}, code {self.code or 'unknown'}]")
        if self.request_id:
            parts.append(f"request_id={self.request_id}")
        return " ".join(parts)


class ApiConnectionError(ApiError):
    """No answer came back: the connection failed or broke.

    ``request_sent`` is False when the request certainly never reached the
    server (the connection did not open), so it cannot have taken effect.
    """

    def __init__(
        self, message: str, *, request_sent: bool = True, method: str | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message, method=method, path=path)
        self.request_sent = request_sent


class ApiTimeoutError(ApiConnectionError):
    """No answer came back in time."""


class CallOutcomeUnknownError(ApiError):
    """A call creation failed in a way that leaves unknown whether the call exists.

    The client retries only after it has checked that no call was created; when
    that check itself fails, it raises this rather than risk a duplicate call.
    """


class ApiStatusError(ApiError):
    """The API answered with an error status."""


class BadRequestError(ApiStatusError):
    """400: the request was malformed or failed validation."""


class AuthenticationError(ApiStatusError):
    """401: the API key is missing or invalid."""


class PermissionDeniedError(ApiStatusError):
    """403: the API key lacks the scope this request needs."""


class NotFoundError(ApiStatusError):
    """404: the resource does not exist or was deleted."""


class ConflictError(ApiStatusError):
    """409: the request conflicts with the current state."""


class RateLimitError(ApiStatusError):
    """429: the rate limit was exceeded; ``retry_after`` says for how many seconds."""

    retry_after: float | None = None


class InternalServerError(ApiStatusError):
    """5xx: phone.systems failed; the request may or may not have taken effect."""


STATUS_ERRORS: dict[int, type[ApiStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    429: RateLimitError,
}


def error_for_status(status: int) -> type[ApiStatusError]:
    """The exception class for an HTTP error status."""
    if status >= 500:
        return InternalServerError
    return STATUS_ERRORS.get(status, ApiStatusError)
