"""What every route shares: the simulator it serves, scopes, inputs, answers and pages."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Iterable
from functools import wraps
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from pydantic import BaseModel, ValidationError
from quart import Quart, Response, current_app, g, request

from agentkit.odygy.models import Call, describe_errors, validate_request
from agentkit.sim.config import SimConfig
from agentkit.sim.gate import Gate, SimApiError
from agentkit.sim.state import SimState

M = TypeVar("M", bound=BaseModel)
P = ParamSpec("P")
View = Callable[P, Awaitable[Response]]

DEFAULT_PAGE = 50
MAX_PAGE = 100
_HOST = "agentkit.sim"


class OutboundCalls(Protocol):
    """Where a call created through the API starts its life."""

    def place_outbound(self, call: Call) -> None: ...


class ApiHost(Protocol):
    """What the API routes use of the simulator."""

    @property
    def config(self) -> SimConfig: ...
    @property
    def state(self) -> SimState: ...
    @property
    def gate(self) -> Gate: ...
    @property
    def engine(self) -> OutboundCalls: ...
    @property
    def recording_key(self) -> bytes: ...


def attach(app: Quart, sim: ApiHost) -> None:
    """Make ``sim`` the simulator that ``app``'s routes serve."""
    app.extensions[_HOST] = sim


def host() -> ApiHost:
    """The simulator of the app handling the current request."""
    return cast(ApiHost, current_app.extensions[_HOST])


def requires(scope: str) -> Callable[[View[P]], View[P]]:
    """Mark a view as needing ``scope``: a 403 for keys without it."""

    def wrap(view: View[P]) -> View[P]:
        @wraps(view)
        async def checked(*args: P.args, **kwargs: P.kwargs) -> Response:
            host().gate.require(g.key, scope)
            return await view(*args, **kwargs)

        return checked

    return wrap


# inputs


async def body(model: type[M]) -> M:
    """The request's JSON object, validated strictly as ``model``, or a 400."""
    if request.mimetype != "application/json":
        raise SimApiError(400, "invalid_request", "Send the body as application/json.")
    raw = await request.get_data(as_text=False)
    try:
        data = json.loads(raw)
    except RecursionError:
        raise SimApiError(400, "invalid_request", "The body nests too deeply.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        message = f"The body is not valid JSON: {exc}."
        raise SimApiError(400, "invalid_request", message) from None
    if not isinstance(data, dict):
        raise SimApiError(400, "invalid_request", "The body must be a JSON object.")
    try:
        return validate_request(model, data)
    except ValidationError as exc:
        raise SimApiError(400, "invalid_request", describe_errors(exc)) from None


def query(allowed: Iterable[str]) -> dict[str, str]:
    """The query parameters, each given once and each one of ``allowed``, or a 400."""
    allowed = set(allowed)
    args = request.args
    unknown = sorted(set(args) - allowed)
    if unknown:
        raise SimApiError(
            400,
            "invalid_request",
            f"Unknown query parameter(s): {', '.join(unknown)}. "
            f"Allowed: {', '.join(sorted(allowed))}.",
        )
    for name in args:
        if len(args.getlist(name)) > 1:
            raise SimApiError(400, "invalid_request", f"Query parameter '{name}' is repeated.")
    return dict(args)


def find(collection: dict[str, M], item_id: str, what: str) -> M:
    """The item with ``item_id``, or a 404 naming ``what`` was looked for."""
    item = collection.get(item_id)
    if item is None:
        raise SimApiError(404, "not_found", f"No {what} with id '{item_id}'.")
    return item


# answers


def json_response(payload: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(payload, separators=(",", ":")), status=status, mimetype="application/json"
    )


def no_content() -> Response:
    response = Response("", status=204)
    del response.headers["Content-Type"]
    return response


def dump(model: BaseModel) -> dict[str, Any]:
    """A model as the API writes it: by alias, with nulls."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=False)


def error_response(status: int, code: str, message: str) -> Response:
    """The API's error body, carrying the request's id."""
    return json_response(
        {"error": {"code": code, "message": message, "request_id": g.request_id}}, status
    )


# pages


def page(items: list[Any], params: dict[str, str], *, newest_first: bool = False) -> Response:
    """One page of ``items`` in id order, after ``params``' cursor, with the next cursor."""
    limit = _limit(params.get("limit"))
    ordered = sorted(items, key=lambda item: item.id, reverse=newest_first)
    cursor = params.get("cursor")
    if cursor is not None:
        after = _decode_cursor(cursor)
        ordered = [
            item for item in ordered if (item.id < after if newest_first else item.id > after)
        ]
    chunk = ordered[:limit]
    next_cursor = _encode_cursor(chunk[-1].id) if len(ordered) > limit else None
    return json_response({"data": [dump(item) for item in chunk], "next_cursor": next_cursor})


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PAGE
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PAGE:
        raise SimApiError(
            400, "invalid_request", f"'limit' must be a whole number from 1 to {MAX_PAGE}."
        )
    return int(raw)


def _encode_cursor(last_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": last_id}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after = value["after"]
        if not isinstance(after, str):
            raise TypeError
        return after
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise SimApiError(
            400, "invalid_request", "'cursor' is not a cursor this API issued."
        ) from None
