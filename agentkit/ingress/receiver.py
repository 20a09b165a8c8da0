"""The webhook receiver: verify, parse, store, answer. Nothing else happens in a request.

``POST /webhooks/odygy`` checks the Odygy-Signature over the raw body before it
parses anything, parses the envelope into a typed event, writes it durably and
only then answers 2xx. Bad input gets a 4xx with a JSON body and nothing is
stored; a store that cannot write answers 503, so that phone.systems retries.

The webhook route is answered on ASGI directly, in front of Quart: Quart's
request machinery costs about 400 µs a request, more than verifying, parsing
and storing a delivery together (docs/benchmarks.md). The health, readiness and
metrics routes, and every error page, stay with Quart.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from agentkit.events import (
    INTERNAL_ID_PREFIXES,
    EnvelopeError,
    call_parties,
    is_internal_id,
    is_routable,
    parse_event,
)
from agentkit.logs import get_logger
from agentkit.metrics import Metrics
from agentkit.odygy.signing import SIGNATURE_HEADER, SignatureError, verify
from agentkit.store.base import NewEvent, StoreError
from agentkit.store.writer import EventWriter

log = get_logger("agentkit.ingress")

MAX_BODY_BYTES = 1024 * 1024
WEBHOOK_PATH = "/webhooks/odygy"

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Answer = tuple[int, dict[str, Any]]

_SIGNATURE = SIGNATURE_HEADER.lower().encode()


def _answer(payload: dict[str, Any], status: int) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def _refuse(status: int, code: str, message: str) -> Response:
    return _answer(_error(code, message), status)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    """The client went away before the whole body arrived: nothing to verify or answer."""


class DeliveryEndpoint:
    """``POST /webhooks/odygy`` as a plain ASGI handler."""

    def __init__(self, *, secrets: tuple[str, ...], writer: EventWriter, metrics: Metrics,
                 tolerance: int, max_body_bytes: int) -> None:
        self._secrets = secrets
        self._writer = writer
        self._count = metrics.deliveries
        self._tolerance = tolerance
        self._max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            status, payload = 405, _error("method_not_allowed",
                                          f"{scope['method']} is not allowed here.")
            await _send_json(send, status, payload, extra=[(b"allow", b"POST")])
            return
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            headers[name.lower()] = value
        try:
            status, payload = await self._handle(headers, receive)
        except _Disconnected:
            self._count.labels(outcome="disconnected").inc()
            return
        await _send_json(send, status, payload)

    async def _handle(self, headers: dict[bytes, bytes], receive: Receive) -> Answer:
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self._max_body_bytes:
            return self._too_large()
        mimetype = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if mimetype != b"application/json":
            self._count.labels(outcome="unsupported_media_type").inc()
            return 415, _error("unsupported_media_type", "Send the event as application/json.")
        try:
            body = await self._read(receive)
        except _TooLarge:
            return self._too_large()
        signature = headers.get(_SIGNATURE)
        try:
            verify(body, signature.decode("latin-1") if signature is not None else None,
                   self._secrets, tolerance=self._tolerance)
        except SignatureError as exc:
            self._count.labels(outcome="bad_signature").inc()
            log.warning("delivery.rejected", reason="signature", detail=str(exc))
            return 401, _error("invalid_signature", str(exc))
        try:
            event = parse_event(body)
        except EnvelopeError as exc:
            self._count.labels(outcome="bad_request").inc()
            log.warning("delivery.rejected", reason="envelope", detail=str(exc))
            return 400, _error("invalid_event", str(exc))
        if is_internal_id(event.id):
            self._count.labels(outcome="bad_request").inc()
            log.warning("delivery.rejected", reason="reserved_id", event_id=event.id)
            return 400, _error(
                "invalid_event",
                f"Event ids starting with {' or '.join(INTERNAL_ID_PREFIXES)} are agentkit's "
                "own; phone.systems never sends them.",
            )
        routable = is_routable(event)
        from_number, to_number, direction = call_parties(event)
        try:
            fresh = await self._writer.write(NewEvent(
                id=event.id, type=event.type, created_at=event.created_at,
                call_id=event.call_id, body=body, routable=routable,
                from_number=from_number, to_number=to_number, direction=direction,
            ))
        except StoreError as exc:
            self._count.labels(outcome="store_unavailable").inc()
            log.error("delivery.not_stored", event_id=event.id, error=str(exc))
            return 503, _error("store_unavailable", "The event could not be stored; retry.")
        outcome = "stored" if fresh else "duplicate"
        self._count.labels(outcome=outcome).inc()
        log.info("delivery.stored" if fresh else "delivery.duplicate", event_type=event.type,
                 call_id=event.call_id, event_id=event.id)
        if not routable:
            log.info("delivery.not_routed", event_id=event.id, event_type=event.type,
                     reason=getattr(event, "problem", "unknown event type"))
        return 200, {"id": event.id, "status": outcome}

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                # A body cut short is not the delivery that was signed and sent: never store it.
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    def _too_large(self) -> Answer:
        self._count.labels(outcome="too_large").inc()
        return 413, _error("too_large", f"The body exceeds {self._max_body_bytes} bytes.")


async def _send_json(send: Send, status: int, payload: dict[str, Any],
                     extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps(payload).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()), *extra],
    })
    await send({"type": "http.response.body", "body": body})


class ReceiverApp:
    """The receiver as one ASGI app: deliveries answered directly, the rest by Quart."""

    def __init__(self, quart: Quart, deliveries: DeliveryEndpoint | None) -> None:
        self.quart = quart
        self._deliveries = deliveries
        # Quart types ASGI messages with hypercorn's TypedDicts; ours are plain dicts.
        self._forward: Callable[[Scope, Receive, Send], Awaitable[None]] = cast(Any, quart)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (self._deliveries is not None and scope["type"] == "http"
                and scope["path"] == WEBHOOK_PATH):
            await self._deliveries(scope, receive, send)
            return
        await self._forward(scope, receive, send)


def create_receiver_app(
    *,
    secrets: Sequence[str],
    writer: EventWriter | None,
    metrics: Metrics,
    ready: Callable[[], Awaitable[str | None]],
    queue_counts: Callable[[], Awaitable[dict[str, int]]] | None = None,
    on_scrape: Callable[[], Awaitable[None]] | None = None,
    tolerance: int = 300,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> ReceiverApp:
    """The receiver's ASGI app; without a ``writer``, only the health and metrics routes.

    ``ready()`` returns None when the process can take work, else the reason it
    cannot; ``queue_counts()`` feeds the queue-depth gauge on each scrape, and
    ``on_scrape()`` sets whatever else a scrape reads from the store.
    """
    if not secrets:
        raise ValueError("the receiver needs at least one webhook secret")
    app = Quart(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    count = metrics.deliveries
    deliveries = None
    if writer is not None:
        deliveries = DeliveryEndpoint(secrets=tuple(secrets), writer=writer, metrics=metrics,
                                      tolerance=tolerance, max_body_bytes=max_body_bytes)

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
        if on_scrape is not None:
            try:
                await asyncio.wait_for(on_scrape(), timeout=3)
            except (StoreError, TimeoutError):
                pass
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

    return ReceiverApp(app, deliveries)
