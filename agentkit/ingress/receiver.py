"""The webhook receiver: verify, parse, store, answer. Nothing else happens in a request.

``POST /webhooks/odygy`` checks the Odygy-Signature over the raw body before it
parses anything, parses the envelope into a typed event, writes it durably and
only then answers 2xx. Bad input gets a 4xx with a JSON body and nothing is
stored; a store that cannot write answers 503, so that phone.systems retries.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import structlog
from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from agentkit.events import EnvelopeError, is_routable, parse_event
from agentkit.metrics import Metrics
from agentkit.odygy.signing import SIGNATURE_HEADER, SignatureError, verify
from agentkit.store.base import NewEvent, StoreError
from agentkit.store.writer import EventWriter

log = structlog.get_logger("agentkit.ingress")

MAX_BODY_BYTES = 1024 * 1024
WEBHOOK_PATH = "/webhooks/odygy"


def _answer(payload: dict[str, Any], status: int) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def _refuse(status: int, code: str, message: str) -> Response:
    return _answer({"error": {"code": code, "message": message}}, status)


def create_receiver_app(
    *,
    secrets: Sequence[str],
    writer: EventWriter | None,
    metrics: Metrics,
    ready: Callable[[], Awaitable[str | None]],
    queue_counts: Callable[[], Awaitable[dict[str, int]]] | None = None,
    tolerance: int = 300,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Quart:
    """The receiver's Quart app; without a ``writer``, only the health and metrics routes.

    ``ready()`` returns None when the process can take work, else the reason it
    cannot; ``queue_counts()`` feeds the queue-depth gauge on each scrape.
    """
    if not secrets:
        raise ValueError("the receiver needs at least one webhook secret")
    app = Quart(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    secrets = tuple(secrets)
    count = metrics.deliveries

    async def receive() -> Response:
        assert writer is not None
        length = request.content_length
        if length is not None and length > max_body_bytes:
            count.labels(outcome="too_large").inc()
            return _refuse(413, "too_large", f"The body exceeds {max_body_bytes} bytes.")
        if request.mimetype != "application/json":
            count.labels(outcome="unsupported_media_type").inc()
            return _refuse(415, "unsupported_media_type", "Send the event as application/json.")
        body = await request.get_data(as_text=False)
        assert isinstance(body, bytes)
        try:
            verify(body, request.headers.get(SIGNATURE_HEADER), secrets, tolerance=tolerance)
        except SignatureError as exc:
            count.labels(outcome="bad_signature").inc()
            log.warning("delivery.rejected", reason="signature", detail=str(exc))
            return _refuse(401, "invalid_signature", str(exc))
        try:
            event = parse_event(body)
        except EnvelopeError as exc:
            count.labels(outcome="bad_request").inc()
            log.warning("delivery.rejected", reason="envelope", detail=str(exc))
            return _refuse(400, "invalid_event", str(exc))
        try:
            fresh = await writer.write(
                NewEvent(
                    id=event.id,
                    type=event.type,
                    created_at=event.created_at,
                    call_id=event.call_id,
                    body=body,
                    routable=is_routable(event),
                )
            )
        except StoreError as exc:
            count.labels(outcome="store_unavailable").inc()
            log.error("delivery.not_stored", event_id=event.id, error=str(exc))
            return _refuse(503, "store_unavailable", "The event could not be stored; retry.")
        count.labels(outcome="stored" if fresh else "duplicate").inc()
        log.info("delivery.stored" if fresh else "delivery.duplicate", event_id=event.id,
                 event_type=event.type, call_id=event.call_id)
        if not is_routable(event):
            log.info("delivery.not_routed", event_id=event.id, event_type=event.type,
                     reason=getattr(event, "problem", "unknown event type"))
        return _answer({"id": event.id, "status": "stored" if fresh else "duplicate"}, 200)

    if writer is not None:
        app.add_url_rule(WEBHOOK_PATH, view_func=receive, methods=["POST"])

    @app.get("/healthz")
    async def healthz() -> Response:
        return _answer({"status": "alive"}, 200)

    @app.get("/readyz")
    async def readyz() -> Response:
        try:
            reason = await asyncio.wait_for(ready(), timeout=3)
        except TimeoutError:
            reason = "the store did not answer within 3 s"
        if reason:
            return _answer({"status": "unavailable", "reason": reason}, 503)
        return _answer({"status": "ready"}, 200)

    @app.get("/metrics")
    async def metrics_page() -> Response:
        if queue_counts is not None:
            try:
                metrics.set_queue_depth(await asyncio.wait_for(queue_counts(), timeout=3))
            except (StoreError, TimeoutError):
                pass  # a scrape shows the last depth rather than fail
        return Response(metrics.render(), status=200, content_type=metrics.content_type)

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        if status == 413:
            count.labels(outcome="too_large").inc()
            return _refuse(413, "too_large", f"The body exceeds {max_body_bytes} bytes.")
        if status == 404:
            return _refuse(404, "not_found", f"No such endpoint: {request.path}.")
        if status == 405:
            return _refuse(405, "method_not_allowed", f"{request.method} is not allowed here.")
        return _refuse(status, "bad_request", exc.description or "Bad request.")

    return app
