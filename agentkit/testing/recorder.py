"""An HTTP endpoint on loopback that records what is posted to it.

Stands in for a webhook receiver, a Slack or Teams incoming webhook, or any
sink a test wants to inspect; it can be told to fail the next few requests.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from quart import Quart, Response, request

from agentkit.serving import EmbeddedServer
from agentkit.testing.waiting import wait_until


@dataclass(frozen=True)
class Recorded:
    """One request as it arrived: method, path, headers (lower-case names) and raw body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    def json(self) -> Any:
        return json.loads(self.body)


class LoopbackApp:
    """A Quart app (``self._app``) served on a free loopback port while in ``async with``."""

    _app: Quart
    _server: EmbeddedServer | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not serving: use it with 'async with'")
        return self._server.url

    async def __aenter__(self) -> Self:
        self._server = EmbeddedServer(self._app)
        await self._server.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None


@dataclass
class HttpRecorder(LoopbackApp):
    """Serves ``POST /<anything>``, records each request and answers 200 (or as scripted)."""

    requests: list[Recorded] = field(default_factory=list)
    _statuses: deque[int] = field(default_factory=deque)

    def __post_init__(self) -> None:
        app = Quart("agentkit.testing.recorder")

        @app.route("/", defaults={"path": ""}, methods=["POST", "PUT"])
        @app.route("/<path:path>", methods=["POST", "PUT"])
        async def record(path: str) -> Response:
            status = self._statuses.popleft() if self._statuses else 200
            body = await request.get_data(as_text=False)
            assert isinstance(body, bytes)
            self.requests.append(
                Recorded(
                    method=request.method,
                    path="/" + path,
                    headers={k.lower(): v for k, v in request.headers.items()},
                    body=body,
                    answered=status,
                )
            )
            return Response("{}" if status < 400 else '{"error":"scripted"}', status=status,
                            mimetype="application/json")

        self._app = app

    def fail_next(self, times: int, status: int = 500) -> None:
        """Answer the next ``times`` requests with ``status``."""
        self._statuses.extend([status] * times)

    def accepted(self) -> list[Recorded]:
        """The requests answered with a 2xx."""
        return [r for r in self.requests if 200 <= r.answered < 300]

    async def wait_for(self, count: int, *, timeout: float = 5.0) -> list[Recorded]:
        """Wait until ``count`` requests were accepted; return them."""
        await wait_until(lambda: len(self.accepted()) >= count, timeout=timeout,
                         message=f"{count} accepted requests")
        return self.accepted()
