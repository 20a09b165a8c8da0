"""The simulated phone.systems REST API: a Quart app over the in-memory account."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from quart import Quart, Response, g, request
from werkzeug.exceptions import HTTPException

from agentkit.odygy.models import (
    E164,
    Call,
    CallCreate,
    CallFlow,
    CallFlowCreate,
    CallFlowUpdate,
    CallStatus,
    Direction,
    NumberAttach,
    NumberSearch,
    User,
    UserCreate,
    UserUpdate,
    WebhookCreate,
    WebhookEndpoint,
    describe_errors,
    flow_problems,
    validate_request,
)
from agentkit.sim.gate import SimApiError
from agentkit.sim.state import Endpoint, utcnow

if TYPE_CHECKING:
    from agentkit.sim.simulator import Simulator

M = TypeVar("M", bound=BaseModel)
Handler = Callable[..., Awaitable[Any]]

DEFAULT_PAGE = 50
MAX_PAGE = 100
_LOOPBACK_URL = re.compile(r"^http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]{1,5})?(/\S*)?\Z")
RECORDING_TTL = timedelta(minutes=15)


def _no_content() -> Response:
    response = Response("", status=204)
    del response.headers["Content-Type"]
    return response


def _json(payload: Any, status: int = 200) -> Response:
    return Response(
        json.dumps(payload, separators=(",", ":")), status=status, mimetype="application/json"
    )


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=False)


def create_api_app(sim: Simulator) -> Quart:
    """The API app of one simulator: every documented endpoint under /v1."""
    app = Quart("agentkit.sim")
    app.config["MAX_CONTENT_LENGTH"] = sim.config.max_body_bytes
    state = sim.state
    gate = sim.gate

    # request pipeline

    @app.before_serving
    async def _start() -> None:
        await sim.dispatcher.start()

    @app.after_serving
    async def _stop() -> None:
        await sim.engine.close()
        await sim.dispatcher.close()

    @app.before_request
    async def _admit() -> None:
        g.request_id = state.ids.new("req")
        g.client = f"anon:{request.remote_addr}"
        if not request.path.startswith("/v1/"):
            return
        g.key = gate.authenticate(request.headers.get("Authorization"))
        g.client = g.key
        g.rate_headers = gate.admit(g.key)
        faults = gate.faults
        if faults.latency:
            await asyncio.sleep(faults.latency)
        g.fault = faults.take(request.method, request.path)
        if g.fault is not None and g.fault.kind == "rate_limit":
            gate.stats.http_429 += 1
            raise SimApiError(
                429,
                "rate_limited",
                "Rate limit exceeded (scripted fault).",
                headers={"Retry-After": str(g.fault.retry_after)},
            )
        if g.fault is not None and g.fault.kind == "error":
            raise SimApiError(
                g.fault.status, "internal_error", "Service unavailable (scripted fault)."
            )
        if gate.roll(faults.error_rate):
            raise SimApiError(503, "internal_error", "Service temporarily unavailable (injected).")

    @app.after_request
    async def _finish(response: Response) -> Response:
        if request.path.startswith("/v1/") and 200 <= response.status_code < 300:
            faults = gate.faults
            fault = getattr(g, "fault", None)
            if fault is not None and fault.kind == "lost_answer":
                response = _error_response(fault.status, "internal_error", "Lost (scripted).")
            elif fault is not None and fault.kind == "timeout":
                await asyncio.sleep(fault.hold)
            elif gate.roll(faults.lost_answer_rate):
                response = _error_response(502, "internal_error", "Bad gateway (injected).")
            elif gate.roll(faults.timeout_rate):
                await asyncio.sleep(faults.timeout_hold)
        rate_headers = getattr(g, "rate_headers", None) or gate.headers(g.client)
        for name, value in rate_headers.items():
            response.headers.setdefault(name, value)
        response.headers["X-Request-Id"] = g.request_id
        return response

    def _error_response(status: int, code: str, message: str) -> Response:
        return _json(
            {"error": {"code": code, "message": message, "request_id": g.request_id}}, status
        )

    @app.errorhandler(SimApiError)
    async def _api_error(exc: SimApiError) -> Response:
        response = _error_response(exc.status, exc.code, exc.message)
        for name, value in exc.headers.items():
            response.headers[name] = value
        return response

    @app.errorhandler(HTTPException)
    async def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        codes = {404: "not_found", 405: "invalid_request", 413: "invalid_request"}
        messages = {
            404: f"No such endpoint: {request.method} {request.path}.",
            405: f"{request.method} is not allowed on {request.path}.",
            413: f"The request body exceeds {sim.config.max_body_bytes} bytes.",
        }
        response = _error_response(
            status,
            codes.get(status, "invalid_request" if status < 500 else "internal_error"),
            messages.get(status, exc.description or "Request failed."),
        )
        allowed = getattr(exc, "valid_methods", None)
        if status == 405 and allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response

    @app.errorhandler(Exception)
    async def _crash(exc: Exception) -> Response:
        app.logger.exception("simulator error")
        return _error_response(500, "internal_error", "The simulator failed; see its log.")

    def endpoint(scope: str) -> Callable[[Handler], Handler]:
        """Mark a view as needing ``scope``."""

        def wrap(view: Handler) -> Handler:
            @wraps(view)
            async def checked(*args: Any, **kwargs: Any) -> Any:
                gate.require(g.key, scope)
                return await view(*args, **kwargs)

            return checked

        return wrap

    # inputs

    async def body(model: type[M]) -> M:
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

    def page(items: list[Any], params: dict[str, str], *, newest_first: bool = False) -> Response:
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
        return _json({"data": [_dump(item) for item in chunk], "next_cursor": next_cursor})

    def find(collection: dict[str, M], item_id: str, what: str) -> M:
        item = collection.get(item_id)
        if item is None:
            raise SimApiError(404, "not_found", f"No {what} with id '{item_id}'.")
        return item

    # account

    @app.get("/v1/account")
    @endpoint("read:*")
    async def get_account() -> Response:
        query(())
        return _json(_dump(state.account))

    # users

    @app.get("/v1/users")
    @endpoint("read:*")
    async def list_users() -> Response:
        return page(list(state.users.values()), query(("limit", "cursor")))

    def check_unique_user(email: str | None, extension: str | None, skip: str | None) -> None:
        for user in state.users.values():
            if user.id == skip:
                continue
            if email and user.email.lower() == email.lower():
                raise SimApiError(409, "conflict", f"A user with email '{email}' already exists.")
            if extension and user.extension == extension:
                raise SimApiError(
                    409, "conflict", f"Extension '{extension}' already belongs to {user.id}."
                )

    @app.post("/v1/users")
    @endpoint("users:write")
    async def create_user() -> Response:
        query(())
        new = await body(UserCreate)
        check_unique_user(new.email, new.extension, None)
        user = User(id=state.ids.new("usr"), created_at=utcnow(), **new.model_dump())
        state.users[user.id] = user
        return _json(_dump(user), 201)

    @app.get("/v1/users/<user_id>")
    @endpoint("read:*")
    async def get_user(user_id: str) -> Response:
        query(())
        return _json(_dump(find(state.users, user_id, "user")))

    @app.patch("/v1/users/<user_id>")
    @endpoint("users:write")
    async def update_user(user_id: str) -> Response:
        query(())
        user = find(state.users, user_id, "user")
        change = await body(UserUpdate)
        fields = change.model_dump(exclude_unset=True)
        check_unique_user(fields.get("email"), fields.get("extension"), user_id)
        updated = user.model_copy(update=fields)
        state.users[user_id] = updated
        return _json(_dump(updated))

    @app.delete("/v1/users/<user_id>")
    @endpoint("users:write")
    async def delete_user(user_id: str) -> Response:
        query(())
        find(state.users, user_id, "user")
        del state.users[user_id]
        return _no_content()

    # numbers

    @app.get("/v1/numbers")
    @endpoint("read:*")
    async def list_numbers() -> Response:
        return page(list(state.numbers.values()), query(("limit", "cursor")))

    @app.post("/v1/numbers/search")
    @endpoint("read:*")
    async def search_numbers() -> Response:
        query(())
        search = await body(NumberSearch)
        offered = [n for n in state.catalogue if n.country == search.country]
        if not offered:
            raise SimApiError(
                400,
                "number_unavailable",
                f"No numbers are available in {search.country}. "
                f"Available countries: {', '.join(sorted({n.country for n in state.catalogue}))}.",
            )
        owned = {n.number for n in state.numbers.values()}
        matches = [
            n
            for n in offered
            if n.number not in owned
            and (search.type is None or n.type == search.type)
            and (search.prefix is None or n.number[1:].startswith(search.prefix))
            and set(search.features or ()) <= set(n.features)
        ]
        return _json({"data": [_dump(n) for n in matches[:DEFAULT_PAGE]]})

    @app.post("/v1/numbers/<number_id>/attach")
    @endpoint("numbers:write")
    async def attach_number(number_id: str) -> Response:
        query(())
        number = find(state.numbers, number_id, "number")
        attach = await body(NumberAttach)
        if attach.call_flow_id not in state.call_flows:
            raise SimApiError(
                400, "invalid_request", f"'call_flow_id': no call flow '{attach.call_flow_id}'."
            )
        number.call_flow_id = attach.call_flow_id
        return _json(_dump(number))

    # call flows

    def check_flow(entry: str, blocks: dict[str, Any]) -> None:
        problems = flow_problems(entry, blocks)
        if problems:
            raise SimApiError(400, "invalid_request", "; ".join(problems))

    @app.get("/v1/call_flows")
    @endpoint("read:*")
    async def list_flows() -> Response:
        return page(list(state.call_flows.values()), query(("limit", "cursor")))

    @app.post("/v1/call_flows")
    @endpoint("call_flows:write")
    async def create_flow() -> Response:
        query(())
        new = await body(CallFlowCreate)
        check_flow(new.entry, new.blocks)
        now = utcnow()
        flow = CallFlow(
            id=state.ids.new("cfl"),
            name=new.name,
            entry=new.entry,
            blocks=new.blocks,
            created_at=now,
            updated_at=now,
        )
        state.call_flows[flow.id] = flow
        return _json(_dump(flow), 201)

    @app.get("/v1/call_flows/<flow_id>")
    @endpoint("read:*")
    async def get_flow(flow_id: str) -> Response:
        query(())
        return _json(_dump(find(state.call_flows, flow_id, "call flow")))

    @app.patch("/v1/call_flows/<flow_id>")
    @endpoint("call_flows:write")
    async def update_flow(flow_id: str) -> Response:
        query(())
        flow = find(state.call_flows, flow_id, "call flow")
        change = await body(CallFlowUpdate)
        entry = change.entry or flow.entry
        blocks = change.blocks if change.blocks is not None else flow.blocks
        check_flow(entry, blocks)
        updated = flow.model_copy(
            update={
                "name": change.name or flow.name,
                "entry": entry,
                "blocks": blocks,
                "updated_at": utcnow(),
            }
        )
        state.call_flows[flow_id] = updated
        return _json(_dump(updated))

    @app.delete("/v1/call_flows/<flow_id>")
    @endpoint("call_flows:write")
    async def delete_flow(flow_id: str) -> Response:
        query(())
        find(state.call_flows, flow_id, "call flow")
        for number in state.numbers.values():
            if number.call_flow_id == flow_id:
                raise SimApiError(
                    409,
                    "conflict",
                    f"Call flow '{flow_id}' is attached to {number.number}; "
                    "attach another flow to that number first.",
                )
        del state.call_flows[flow_id]
        return _no_content()

    # calls

    @app.post("/v1/calls")
    @endpoint("calls:write")
    async def create_call() -> Response:
        query(())
        new = await body(CallCreate)
        if state.number_by_e164(new.from_) is None:
            raise SimApiError(
                400, "invalid_request", f"'from': {new.from_} is not a number this account owns."
            )
        if new.user_id is not None and new.user_id not in state.users:
            raise SimApiError(400, "invalid_request", f"'user_id': no user '{new.user_id}'.")
        gate.start_call_creation(g.key)
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
            gate.end_call_creation(g.key)
        return _json(_dump(call), 201)

    @app.get("/v1/calls")
    @endpoint("read:*")
    async def list_calls() -> Response:
        params = query(
            ("limit", "cursor", "from", "to", "direction", "status", "user_id",
             "started_after", "started_before")
        )
        calls: list[Call] = list(state.calls.values())
        filters = _call_filters(params)
        calls = [c for c in calls if all(test(c) for test in filters)]
        return page(calls, params, newest_first=True)

    @app.get("/v1/calls/<call_id>")
    @endpoint("read:*")
    async def get_call(call_id: str) -> Response:
        query(())
        return _json(_dump(find(state.calls, call_id, "call")))

    @app.get("/v1/calls/<call_id>/recording")
    @endpoint("recordings:read")
    async def get_recording(call_id: str) -> Response:
        query(())
        call = find(state.calls, call_id, "call")
        if call_id not in state.recordings:
            reason = "was not recorded" if not call.recording else "has no recording ready yet"
            raise SimApiError(404, "not_found", f"Call '{call_id}' {reason}.")
        expires = int((utcnow() + RECORDING_TTL).timestamp())
        token = _recording_token(sim.recording_key, call_id, expires)
        base = request.host_url.rstrip("/")
        url = f"{base}/recordings/{call_id}.mp3?expires={expires}&sig={token}"
        return _json({"url": url, "expires_at": _stamp_unix(expires)})

    @app.get("/recordings/<call_id>.mp3")
    async def download_recording(call_id: str) -> Response:
        expires = request.args.get("expires", "")
        token = request.args.get("sig", "")
        valid = expires.isdigit() and hmac.compare_digest(
            token, _recording_token(sim.recording_key, call_id, int(expires))
        )
        if not valid or int(expires) < utcnow().timestamp() or call_id not in state.recordings:
            raise SimApiError(403, "forbidden", "The recording link is invalid or has expired.")
        # A valid MPEG-1 Layer III frame header followed by silence.
        return Response(b"\xff\xfb\x90\x64" + bytes(413), mimetype="audio/mpeg")

    @app.get("/v1/calls/<call_id>/transcript")
    @endpoint("recordings:read")
    async def get_transcript(call_id: str) -> Response:
        query(())
        find(state.calls, call_id, "call")
        transcript = state.transcripts.get(call_id)
        if transcript is None:
            raise SimApiError(
                404, "not_found", f"The transcript of call '{call_id}' is not ready (or none)."
            )
        return _json(_dump(transcript))

    # webhooks

    @app.post("/v1/webhooks")
    @endpoint("webhooks:write")
    async def create_webhook() -> Response:
        query(())
        new = await body(WebhookCreate)
        if not new.url.startswith("https://") and not _is_loopback(new.url):
            raise SimApiError(
                400,
                "invalid_request",
                "'url': must be an https:// URL (http:// is accepted only for loopback hosts).",
            )
        secret = new.secret or f"whsec_{secrets.token_hex(24)}"
        info = WebhookEndpoint(
            id=state.ids.new("whk"),
            url=new.url,
            events=list(dict.fromkeys(new.events)),
            created_at=utcnow(),
        )
        state.endpoints[info.id] = Endpoint(info=info, secrets=[secret])
        return _json({**_dump(info), "secret": secret}, 201)

    return app


_DIRECTION: TypeAdapter[Direction] = TypeAdapter(Direction)
_STATUS: TypeAdapter[CallStatus] = TypeAdapter(CallStatus)
_PHONE: TypeAdapter[str] = TypeAdapter(E164)


def _call_filters(params: dict[str, str]) -> list[Callable[[Call], bool]]:
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


def _is_loopback(url: str) -> bool:
    return _LOOPBACK_URL.match(url) is not None


def _recording_token(key: bytes, call_id: str, expires: int) -> str:
    return hmac.new(key, f"{call_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def _stamp_unix(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
