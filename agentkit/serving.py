"""Serve an ASGI app with uvicorn inside the running event loop.

agentkit owns its process's signals (to drain work on SIGTERM), so the embedded
server never installs signal handlers of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import Any

import uvicorn

from agentkit.errors import ConfigError


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
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
        graceful_timeout: int = 5,
    ) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            loop="none",
            http="httptools",
            lifespan="on",
            log_level=log_level,
            access_log=False,
            timeout_graceful_shutdown=graceful_timeout,
            # Keep-alive a little longer than clients' pools, so that the server
            # never closes a connection a client is about to reuse.
            timeout_keep_alive=30,
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
