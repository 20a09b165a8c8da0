"""What every resource shares: the transport, and safe path segments for ids."""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import BaseModel, ValidationError

from agentkit.errors import RequestValidationError
from agentkit.odygy.models import describe_errors, request_body, validate_request
from agentkit.odygy.transport import Transport

M = TypeVar("M", bound=BaseModel)


class NotGiven:
    """Marks an argument left out, where None means "clear this field"."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN = NotGiven()


class Resource:
    def __init__(self, transport: Transport) -> None:
        self._transport = transport


def segment(resource_id: str, what: str = "id") -> str:
    """An id as one URL path segment; ids are opaque, so quote everything."""
    if not isinstance(resource_id, str) or not resource_id:
        raise RequestValidationError(f"{what} must be a non-empty string, not {resource_id!r}")
    return quote(resource_id, safe="")


def checked(model: type[M], fields: dict[str, Any]) -> M:
    """A request model from the fields given (NOT_GIVEN ones left out), validated strictly."""
    given = {k: v for k, v in fields.items() if not isinstance(v, NotGiven)}
    try:
        return validate_request(model, given)
    except ValidationError as exc:
        raise RequestValidationError(
            f"{model.__name__} refused before sending: {describe_errors(exc)}"
        ) from None


def build(model: type[M], fields: dict[str, Any]) -> dict[str, Any]:
    """The JSON body for ``checked(model, fields)``."""
    return request_body(checked(model, fields))
