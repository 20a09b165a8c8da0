"""A hostile network against agentkit run: oversized headers, stalled and surplus connections."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from agentkit.testing import wait_until
from tests.outside.support import deployment


async def _open(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return await asyncio.open_connection(parts.hostname, parts.port)


async def _closed(reader: asyncio.StreamReader) -> bool:
    """Whether the server closed the connection (EOF or reset) without more to say."""
    try:
        return await reader.read(65536) == b""
    except ConnectionError:
        return True


async def test_a_one_mebibyte_header_gets_431_or_a_closed_connection(tmp_path: Path) -> None:
    """A 1 MiB header is answered 431 or cut off, never served; the receiver goes on serving."""
    async with deployment(tmp_path) as d:
        agentkit = await d.start()
        reader, writer = await _open(agentkit.url)
        request = (b"POST /webhooks/odygy HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1024 * 1024
                   + b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")

        async def send() -> None:
            for start in range(0, len(request), 16384):
                writer.write(request[start:start + 16384])
                await writer.drain()

        sending = asyncio.create_task(send())
        try:
            answer = await asyncio.wait_for(reader.read(4096), 15)
        except ConnectionError:
            answer = b""
        finally:
            sending.cancel()
            await asyncio.gather(sending, return_exceptions=True)
            writer.close()
        assert answer == b"" or answer.startswith(b"HTTP/1.1 431"), answer[:80]
        async with httpx.AsyncClient() as http:
            assert (await http.get(agentkit.url + "/healthz")).status_code == 200


async def test_stalled_connections_are_closed(tmp_path: Path) -> None:
    """Twenty connections that never finish their headers are all closed (10 s), while the
    receiver still answers others."""
    async with deployment(tmp_path) as d:
        agentkit = await d.start()
        stalled = [await _open(agentkit.url) for _ in range(20)]
        for _, writer in stalled:
            writer.write(b"POST /webhooks/odygy HTTP/1.1\r\nHost: x\r\nX-Slow: a")
            await writer.drain()
        started = time.monotonic()
        async with httpx.AsyncClient() as http:
            assert (await http.get(agentkit.url + "/healthz")).status_code == 200
        closed = await asyncio.wait_for(
            asyncio.gather(*(_closed(reader) for reader, _ in stalled)), 30
        )
        waited = time.monotonic() - started
        for _, writer in stalled:
            writer.close()
    assert all(closed)
    # Held until the header deadline, not closed at once for some other reason.
    assert waited >= 5


async def test_connections_beyond_the_limit_are_closed(tmp_path: Path) -> None:
    """With --max-connections 5, a sixth connection is closed while the five stay usable."""
    async with deployment(tmp_path) as d:
        agentkit = await d.start("--max-connections", "5")
        held = [await _open(agentkit.url) for _ in range(5)]

        async def sixth_closed() -> bool:
            reader, writer = await _open(agentkit.url)
            try:
                return await asyncio.wait_for(_closed(reader), 2)
            except TimeoutError:
                return False
            finally:
                writer.close()

        assert await wait_until(sixth_closed, timeout=10, message="the sixth to be closed")
        reader, writer = held[0]
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        assert (await asyncio.wait_for(reader.read(4096), 5)).startswith(b"HTTP/1.1 200")
        for _, other in held:
            other.close()
