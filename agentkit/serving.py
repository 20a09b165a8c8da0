"""Serve an ASGI app with uvicorn inside the running event loop.

agentkit owns its process's signals (to drain work on SIGTERM), so the embedded
server never installs signal handlers of its own.

The server is meant to face a hostile network. uvicorn's httptools protocol has
no limit on the size of request headers and no deadline for them, so
``_GuardedProtocol`` adds both, and caps the connections held at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from agentkit.errors import ConfigError

MAX_CONNECTIONS = 1000
HEADER_TIMEOUT = 10.0
MAX_HEADER_BYTES = 16 * 1024
# A little longer than clients' pools, so that the server never closes a
# connection a client is about to reuse.
KEEP_ALIVE_TIMEOUT = 30


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (uvicorn[standard] brings it), else asyncio's own loop.

    For ``asyncio.Runner(loop_factory=...)``: the embedded server runs on the
    loop it is started in, so the process picks the loop, not uvicorn.
    """
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


class _Limits:
    """One server's connection limits, shared by its connections."""

    def __init__(self, max_connections: int, header_timeout: float,
                 max_header_bytes: int) -> None:
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.max_header_bytes = max_header_bytes
        self.refused = 0
        self.warned_at = -math.inf


class _GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header size limit, a header deadline and a
    connection cap.

    Bytes are counted as they arrive, before httptools buffers them: httptools
    keeps a header's value whole until it ends, so a 32 MiB header would
    otherwise sit in memory. The deadline runs from the connection's start, and
    for later requests from the first chunk that leaves their headers
    incomplete; between requests uvicorn's keep-alive timeout applies.
    """

    limits: _Limits

    # Set per connection in connection_made; None while a request's body is read
    # and answered, when headers are not being received.
    _header_room: int | None = None
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            # Uncounted at once: uvicorn answers 503 to requests while it counts too many.
            self.connections.discard(self)
            transport.close()
            self._note_refused()
            return
        self._header_room = self.limits.max_header_bytes
        self._header_timer = self.loop.call_later(self.limits.header_timeout,
                                                  self._header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        room = self._header_room
        if room is None:
            super().data_received(data)
            return
        if len(data) > room:
            self._past_header_room(data, room)
            return
        self._header_room = room - len(data)
        super().data_received(data)
        # Room left but less than all of it: the headers begun in this chunk are unfinished.
        left = self._header_room
        if (left is not None and left < self.limits.max_header_bytes
                and self._header_timer is None and not self.transport.is_closing()):
            self._header_timer = self.loop.call_later(self.limits.header_timeout,
                                                      self._header_timeout)

    def _past_header_room(self, data: bytes, room: int) -> None:
        # Parse only what fits: the headers may end inside it, and the rest be a body.
        self._header_room = 0
        if room:
            super().data_received(data[:room])
        if self.transport.is_closing():
            return
        if self._header_room == 0:
            self._refuse_headers()
        else:
            self.data_received(data[room:])

    def on_headers_complete(self) -> None:
        self._header_room = None
        self._stop_header_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._header_room = self.limits.max_header_bytes
        super().on_message_complete()

    def _header_timeout(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _refuse_headers(self) -> None:
        self._stop_header_timer()
        # A pipelined request still being answered owns the stream: just close.
        if self.cycle is None or self.cycle.response_complete:
            limit = self.limits.max_header_bytes
            body = json.dumps({"error": {
                "code": "headers_too_large",
                "message": f"The request line and headers exceed {limit} bytes.",
            }}).encode()
            head = [STATUS_LINE[431]]
            for name, value in self.server_state.default_headers:
                head += [name, b": ", value, b"\r\n"]
            head += [b"content-type: application/json\r\n",
                     b"content-length: ", str(len(body)).encode(), b"\r\n",
                     b"connection: close\r\n\r\n", body]
            self.transport.write(b"".join(head))
        self.transport.close()

    def _note_refused(self) -> None:
        # One line a minute at most: a flood of refusals must not become a flood of logs.
        limits = self.limits
        limits.refused += 1
        now = time.monotonic()
        if now - limits.warned_at >= 60:
            self.logger.warning(
                "Connection refused: %d open already, the most allowed (--max-connections); "
                "%d refused since the last warning.", limits.max_connections, limits.refused)
            limits.refused = 0
            limits.warned_at = now


def _guarded_protocol(limits: _Limits) -> type[HttpToolsProtocol]:
    class GuardedProtocol(_GuardedProtocol):
        pass

    GuardedProtocol.limits = limits
    return GuardedProtocol


class _EmbeddedServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.wake = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        # uvicorn polls should_exit every 0.1 s; waking on an event stops at once.
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), 0.1)


class EmbeddedServer:
    """A uvicorn server run as a task of the current event loop.

    ``await start()`` returns once the socket is listening; ``port`` is then the
    bound port (useful with port 0). ``await stop()`` closes it gracefully.

    Limits: at most ``max_connections`` open at once (one more is closed as soon
    as it is accepted); request line and headers within ``max_header_bytes``
    (else 431 and the connection closed) and sent within ``header_timeout``
    seconds (else the connection is closed); an idle connection is closed after
    ``keep_alive_timeout`` seconds. The client's address and scheme come from
    ``X-Forwarded-For`` and ``X-Forwarded-Proto`` only when the connection is from
    one of ``forwarded_allow_ips`` (a reverse proxy).
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        graceful_timeout: int = 5,
        max_connections: int = MAX_CONNECTIONS,
        header_timeout: float = HEADER_TIMEOUT,
        max_header_bytes: int = MAX_HEADER_BYTES,
        keep_alive_timeout: int = KEEP_ALIVE_TIMEOUT,
        forwarded_allow_ips: str = "127.0.0.1",
    ) -> None:
        if max_connections < 1:
            raise ConfigError(f"--max-connections must be at least 1, not {max_connections}")
        if header_timeout <= 0 or max_header_bytes < 1 or keep_alive_timeout < 1:
            raise ConfigError("header_timeout, max_header_bytes and keep_alive_timeout must be "
                              "positive")
        limits = _Limits(max_connections, header_timeout, max_header_bytes)
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            loop="none",
            http=_guarded_protocol(limits),
            lifespan="on",
            log_level=log_level,
            # uvicorn's own handlers would print plain text to stderr; its records go to
            # whatever the process set up (agentkit run: logs.configure_logging).
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=graceful_timeout,
            timeout_keep_alive=keep_alive_timeout,
            # uvicorn answers 503 once this many connections or requests are open
            # (">="). Connections never pass max_connections, so this caps requests
            # still running for clients that hung up.
            limit_concurrency=max_connections + 1,
            proxy_headers=True,
            forwarded_allow_ips=forwarded_allow_ips,
        )
        self._server = _EmbeddedServer(config)
        self._task: asyncio.Task[None] | None = None
        self.host = host
        self._port = port
    @property
    def port(self) -> int:
        sockets = [s for srv in self._server.servers for s in (srv.sockets or [])]
        if not sockets:
            raise RuntimeError("the server is not listening yet: await start() first")
        return int(sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        """Bind and serve; ConfigError when the address cannot be bound."""
        sock = _bind(self.host, self._port)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="uvicorn")
        while not self._server.started:
            if self._task.done():
                # Startup failed (port taken, lifespan error): surface its exception.
                await self._task
                raise RuntimeError("the HTTP server exited during start-up")
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        self._server.wake.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def wait(self) -> None:
        """Wait until the server stops."""
        if self._task is not None:
            await self._task


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror}): choose another --host or --port"
        ) from None
    return sock
