"""The receiver's server under a hostile network: header size, header deadline, keep-alive,
connection cap."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from agentkit.errors import ConfigError
from agentkit.ingress.receiver import WEBHOOK_PATH, create_receiver_app
from agentkit.metrics import Metrics
from agentkit.serving import MAX_HEADER_BYTES, EmbeddedServer
from agentkit.store.sqlite import SqliteStore
from agentkit.store.writer import EventWriter
from agentkit.testing import wait_until
from agentkit.testing.deliveries import envelope, signed

SECRET = "whsec_limits_test_0001"

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass
class Served:
    """A running server and the raw connections a test opened to it."""

    server: EmbeddedServer
    opened: list[asyncio.StreamWriter] = field(default_factory=list)

    async def connect(self) -> Connection:
        reader, writer = await asyncio.open_connection(self.server.host, self.server.port)
        self.opened.append(writer)
        return reader, writer


Serve = Callable[..., Awaitable[Served]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    """Start the real receiver app on a loopback port with the given server limits; close
    every raw connection the test opened."""
    store = SqliteStore(tmp_path / "agentkit.db")
    await store.open()
    writer = EventWriter(store)
    await writer.start()

    async def ready() -> str | None:
        return None

    app = create_receiver_app(secrets=[SECRET], writer=writer, metrics=Metrics(), ready=ready)
    started: list[Served] = []

    async def start(**limits: Any) -> Served:
        server = EmbeddedServer(app, **limits)
        await server.start()
        started.append(Served(server))
        return started[-1]

    yield start
    for served in started:
        for client in served.opened:
            client.close()
            with contextlib.suppress(ConnectionError):
                await client.wait_closed()
        await served.server.stop()
    await writer.stop()
    await store.close()


def delivery(extra: dict[str, str] | None = None) -> bytes:
    """A signed delivery as raw HTTP/1.1 bytes, with any extra headers."""
    body, headers = signed(envelope(), SECRET)
    lines = [f"POST {WEBHOOK_PATH} HTTP/1.1", "Host: 127.0.0.1",
             f"Content-Length: {len(body)}",
             *(f"{name}: {value}" for name, value in {**headers, **(extra or {})}.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def padded_delivery(head_bytes: int) -> bytes:
    """A signed delivery whose request line and headers take exactly ``head_bytes``."""
    bare = delivery({"X-Padding": ""})
    head = bare.index(b"\r\n\r\n") + 4
    return delivery({"X-Padding": "p" * (head_bytes - head)})


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
    assert length is not None, head
    return int(head.split(b" ", 2)[1]), await reader.readexactly(int(length[1]))


async def exchange(connection: Connection, request: bytes) -> int:
    reader, writer = connection
    writer.write(request)
    await writer.drain()
    return (await read_response(reader))[0]


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sent until it closed the connection."""
    received = b""
    with contextlib.suppress(ConnectionError):
        while chunk := await reader.read(65536):
            received += chunk
    return received


async def closed_after(reader: asyncio.StreamReader, timeout: float) -> float:
    """Seconds until the server closes the connection; TimeoutError if it stays open."""
    started = time.monotonic()
    closed = asyncio.create_task(until_closed(reader))
    try:
        await wait_until(closed.done, timeout=timeout, message="the server closing")
    finally:
        closed.cancel()
    return time.monotonic() - started


async def test_header_just_under_limit_served(serve: Serve) -> None:
    """A delivery whose request line and headers are one byte under the limit is stored."""
    served = await serve()
    request = padded_delivery(MAX_HEADER_BYTES - 1)
    assert await exchange(await served.connect(), request) == 200


async def test_header_just_over_limit_refused_with_431(serve: Serve) -> None:
    """Request line and headers one byte over the limit get a JSON 431 and a closed connection."""
    served = await serve()
    reader, writer = await served.connect()
    writer.write(padded_delivery(MAX_HEADER_BYTES + 1))
    await writer.drain()
    status, body = await read_response(reader)
    assert status == 431
    assert json.loads(body)["error"]["code"] == "headers_too_large"
    await closed_after(reader, timeout=5)


async def test_huge_header_refused_before_it_is_read(serve: Serve) -> None:
    """A 1 MiB header is refused before the client has sent it all, and never held in memory."""
    served = await serve()
    size, piece = 1024 * 1024, 16 * 1024
    reader, writer = await served.connect()
    writer.write(f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\nX-Filler: ".encode())
    answer = asyncio.create_task(until_closed(reader))
    tracemalloc.start()
    try:
        sent = 0
        with contextlib.suppress(ConnectionError):
            while sent < size and not answer.done():
                writer.write(b"f" * piece)
                await writer.drain()
                sent += piece
                await asyncio.sleep(0)  # let the server, on this loop, read what was sent
        received = await asyncio.wait_for(answer, timeout=5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == b"" or received.startswith(b"HTTP/1.1 431 ")
    assert sent < size // 4
    assert peak < size // 2


async def test_stalled_request_line_closed_after_header_timeout(serve: Serve) -> None:
    """A connection that sends half a request line and stalls is closed at the header timeout."""
    served = await serve(header_timeout=0.5)
    # The deadline runs from the connection's start: time it from before connecting.
    started = time.monotonic()
    reader, writer = await served.connect()
    writer.write(b"POST /webhooks/od")
    await closed_after(reader, timeout=10)
    assert time.monotonic() - started >= 0.45


async def test_stalled_second_request_closed_after_header_timeout(serve: Serve) -> None:
    """Headers of a later request on a kept-alive connection have the same deadline."""
    served = await serve(header_timeout=0.5)
    connection = await served.connect()
    assert await exchange(connection, delivery()) == 200
    connection[1].write(b"POST /webhooks/odygy HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-")
    # The server, on this loop, starts the deadline only when it reads what was just written.
    assert await closed_after(connection[0], timeout=10) >= 0.45


async def test_stalled_connections_closed_while_others_served(serve: Serve) -> None:
    """Fifty stalled connections are all closed, and a fresh client is answered meanwhile."""
    # Long enough that a slow machine answers the fresh client before any deadline passes.
    served = await serve(header_timeout=4)
    stalled = [await served.connect() for _ in range(50)]
    for _, writer in stalled:
        writer.write(b"POST /webhooks/odygy HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    async with httpx.AsyncClient(timeout=5) as http:
        body, headers = signed(envelope(), SECRET)
        response = await http.post(served.server.url + WEBHOOK_PATH, content=body, headers=headers)
    assert response.status_code == 200
    assert not any(reader.at_eof() for reader, _ in stalled)
    await asyncio.gather(*(closed_after(reader, timeout=20) for reader, _ in stalled))


async def test_connection_over_limit_closed_and_others_served(serve: Serve) -> None:
    """With max_connections=5 a sixth connection is closed unanswered while the five serve on."""
    served = await serve(max_connections=5)
    first = [await served.connect() for _ in range(5)]
    for connection in first:
        assert await exchange(connection, delivery()) == 200
    reader, writer = await served.connect()
    with contextlib.suppress(ConnectionError):
        writer.write(delivery())
    assert await asyncio.wait_for(until_closed(reader), timeout=5) == b""
    for connection in first:
        assert await exchange(connection, delivery()) == 200


async def test_connection_slot_freed_on_close(serve: Serve) -> None:
    """Once a connection at the limit closes, a new one is served."""
    served = await serve(max_connections=2)
    first = [await served.connect() for _ in range(2)]
    for connection in first:
        assert await exchange(connection, delivery()) == 200
    first[0][1].close()
    await first[0][1].wait_closed()

    async def answered() -> bool:
        connection = await served.connect()
        try:
            return await exchange(connection, delivery()) == 200
        except (ConnectionError, asyncio.IncompleteReadError):
            return False
        finally:
            connection[1].close()
            with contextlib.suppress(ConnectionError):
                await connection[1].wait_closed()

    assert await wait_until(answered, timeout=5, message="a new connection served")


async def test_idle_keep_alive_closed_after_keep_alive_timeout(serve: Serve) -> None:
    """An idle kept-alive connection is closed at the keep-alive timeout, not the header one."""
    served = await serve(keep_alive_timeout=1, header_timeout=0.2)
    connection = await served.connect()
    assert await exchange(connection, delivery()) == 200
    # Timed from after the answer was read, so a little under 1 s; the header deadline
    # would have closed it by 0.2 s.
    assert await closed_after(connection[0], timeout=10) >= 0.6


def test_max_connections_below_one_is_a_config_error() -> None:
    """max_connections=0 is refused when the server is built, with the option to fix."""
    with pytest.raises(ConfigError, match="--max-connections"):
        EmbeddedServer(object(), max_connections=0)
