"""``/v1/calls``: placing calls, listing them, and their transcripts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from quart import Blueprint, Response, g

from agentkit.odygy.models import E164, Call, CallCreate, CallStatus, Direction
from agentkit.sim.gate import SimApiError
from agentkit.sim.routes._base import (
    body,
    dump,
    find,
    host,
    json_response,
    page,
    query,
    requires,
)
from agentkit.sim.state import utcnow

blueprint = Blueprint("calls", __name__, url_prefix="/v1")

_LIST_PARAMS = (
    "limit", "cursor", "from", "to", "direction", "status", "user_id",
    "started_after", "started_before",
)
_DIRECTION: TypeAdapter[Direction] = TypeAdapter(Direction)
_STATUS: TypeAdapter[CallStatus] = TypeAdapter(CallStatus)
_PHONE: TypeAdapter[str] = TypeAdapter(E164)


@blueprint.post("/calls")
@requires("calls:write")
async def create_call() -> Response:
    query(())
    new = await body(CallCreate)
    sim = host()
    state = sim.state
    if state.number_by_e164(new.from_) is None:
        raise SimApiError(
            400, "invalid_request", f"'from': {new.from_} is not a number this account owns."
        )
    if new.user_id is not None and new.user_id not in state.users:
        raise SimApiError(400, "invalid_request", f"'user_id': no user '{new.user_id}'.")
    sim.gate.start_call_creation(g.key)
    try:
        if sim.config.timings.call_creation:
            await asyncio.sleep(sim.config.timings.call_creation)
        call = Call.model_validate(
            {
                "id": state.ids.new("cal"),
                "direction": "outbound",
                "from": new.from_,
                "to": new.to,
                "user_id": new.user_id,
                "call_flow_id": None,
                "status": "ringing",
                "started_at": utcnow(),
                "recording": bool(new.recording),
                "ai_features": new.ai_features or [],
            }
        )
        state.calls[call.id] = call
        sim.engine.place_outbound(call)
    finally:
        sim.gate.end_call_creation(g.key)
    return json_response(dump(call), 201)


@blueprint.get("/calls")
@requires("read:*")
async def list_calls() -> Response:
    params = query(_LIST_PARAMS)
    filters = _filters(params)
    calls = [c for c in host().state.calls.values() if all(test(c) for test in filters)]
    return page(calls, params, newest_first=True)


@blueprint.get("/calls/<call_id>")
@requires("read:*")
async def get_call(call_id: str) -> Response:
    query(())
    return json_response(dump(find(host().state.calls, call_id, "call")))


@blueprint.get("/calls/<call_id>/transcript")
@requires("recordings:read")
async def get_transcript(call_id: str) -> Response:
    query(())
    state = host().state
    find(state.calls, call_id, "call")
    transcript = state.transcripts.get(call_id)
    if transcript is None:
        raise SimApiError(
            404, "not_found", f"The transcript of call '{call_id}' is not ready (or none)."
        )
    return json_response(dump(transcript))


def _filters(params: dict[str, str]) -> list[Callable[[Call], bool]]:
    """One test per filter in ``params``; a 400 naming a filter whose value is wrong."""
    tests: list[Callable[[Call], bool]] = []

    def checked(name: str, adapter: TypeAdapter[Any]) -> Any:
        try:
            return adapter.validate_python(params[name])
        except ValidationError as exc:
            raise SimApiError(
                400, "invalid_request", f"'{name}': {exc.errors()[0]['msg']}"
            ) from None

    if "from" in params:
        caller = checked("from", _PHONE)
        tests.append(lambda c: c.from_ == caller)
    if "to" in params:
        callee = checked("to", _PHONE)
        tests.append(lambda c: c.to == callee)
    if "direction" in params:
        direction = checked("direction", _DIRECTION)
        tests.append(lambda c: c.direction == direction)
    if "status" in params:
        status = checked("status", _STATUS)
        tests.append(lambda c: c.status == status)
    if "user_id" in params:
        user_id = params["user_id"]
        tests.append(lambda c: c.user_id == user_id)
    if "started_after" in params:
        after = _iso_moment(params["started_after"], "started_after")
        tests.append(lambda c: c.started_at >= after)
    if "started_before" in params:
        before = _iso_moment(params["started_before"], "started_before")
        tests.append(lambda c: c.started_at < before)
    return tests


def _iso_moment(raw: str, name: str) -> datetime:
    """An ISO 8601 date-time with a zone; unix seconds and bare dates are refused."""
    try:
        if "T" not in raw:
            raise ValueError
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise SimApiError(
            400,
            "invalid_request",
            f"'{name}': give an ISO 8601 date-time, e.g. 2026-04-23T10:12:45Z.",
        ) from None
    if moment.tzinfo is None:
        raise SimApiError(400, "invalid_request", f"'{name}': give a time zone, e.g. Z.")
    return moment
