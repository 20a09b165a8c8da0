"""The simulated phone.systems REST API: the app, what every request passes, and its errors.

The routes themselves are in ``agentkit.sim.routes``, one blueprint per resource.
"""

from __future__ import annotations

import asyncio

from quart import Quart, Response, g, request
from werkzeug.exceptions import HTTPException

from agentkit.logs import get_logger
from agentkit.sim.gate import SimApiError
from agentkit.sim.routes import BLUEPRINTS, ApiHost, attach, error_response, host

log = get_logger("agentkit.sim.api")


def create_api_app(sim: ApiHost) -> Quart:
    """The API app of one simulator: every documented endpoint under /v1."""
    app = Quart("agentkit.sim")
    app.config["MAX_CONTENT_LENGTH"] = sim.config.max_body_bytes
    attach(app, sim)
    app.before_request(_admit)
    app.after_request(_finish)
    app.register_error_handler(SimApiError, _api_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _crash)
    for blueprint in BLUEPRINTS:
        app.register_blueprint(blueprint)
    return app


async def _admit() -> None:
    """Authenticate, rate-limit and maybe fail a ``/v1`` request before its route runs."""
    sim = host()
    gate = sim.gate
    g.request_id = sim.state.ids.new("req")
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
        raise SimApiError(g.fault.status, "internal_error", "Service unavailable (scripted fault).")
    if gate.roll(faults.error_rate):
        raise SimApiError(503, "internal_error", "Service temporarily unavailable (injected).")


async def _finish(response: Response) -> Response:
    """Lose or hold a successful answer when a fault says so; add the rate and id headers."""
    gate = host().gate
    if request.path.startswith("/v1/") and 200 <= response.status_code < 300:
        faults = gate.faults
        fault = getattr(g, "fault", None)
        if fault is not None and fault.kind == "lost_answer":
            response = error_response(fault.status, "internal_error", "Lost (scripted).")
        elif fault is not None and fault.kind == "timeout":
            await asyncio.sleep(fault.hold)
        elif gate.roll(faults.lost_answer_rate):
            response = error_response(502, "internal_error", "Bad gateway (injected).")
        elif gate.roll(faults.timeout_rate):
            await asyncio.sleep(faults.timeout_hold)
    rate_headers = getattr(g, "rate_headers", None) or gate.headers(g.client)
    for name, value in rate_headers.items():
        response.headers.setdefault(name, value)
    response.headers["X-Request-Id"] = g.request_id
    return response


async def _api_error(exc: SimApiError) -> Response:
    response = error_response(exc.status, exc.code, exc.message)
    for name, value in exc.headers.items():
        response.headers[name] = value
    return response


async def _http_error(exc: HTTPException) -> Response:
    """Quart's own 404, 405 and 413 (and any other), in the API's error body."""
    status = exc.code or 500
    codes = {404: "not_found", 405: "invalid_request", 413: "invalid_request"}
    messages = {
        404: f"No such endpoint: {request.method} {request.path}.",
        405: f"{request.method} is not allowed on {request.path}.",
        413: f"The request body exceeds {host().config.max_body_bytes} bytes.",
    }
    response = error_response(
        status,
        codes.get(status, "invalid_request" if status < 500 else "internal_error"),
        messages.get(status, exc.description or "Request failed."),
    )
    allowed = getattr(exc, "valid_methods", None)
    if status == 405 and allowed:
        response.headers["Allow"] = ", ".join(allowed)
    return response


async def _crash(exc: Exception) -> Response:
    log.exception("sim.request_failed", method=request.method, path=request.path)
    return error_response(500, "internal_error", "The simulator failed; see its log.")
