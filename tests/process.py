"""Start real ``agentkit`` processes for tests, and read what they log."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from agentkit.ingress.receiver import WEBHOOK_PATH
from agentkit.testing import wait_until
from agentkit.testing.deliveries import signed

AGENTKIT = str(Path(sys.executable).with_name("agentkit"))
FIXTURE_BOTS = str(Path(__file__).parent / "fixtures" / "bots")
API_KEY = "ps_live_processtest_key_0123456789"
SECRET = "whsec_processtest_secret_0123456789"


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback port that refuses connections for the block, taken by no other test.

    Bound and never listened on: a port merely found free could be taken meanwhile
    by a server another test (another pytest worker) starts.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@dataclass
class AgentkitProcess:
    """One ``agentkit run`` process; its stdout lines are kept as parsed JSON."""

    args: list[str]
    env: dict[str, str]
    cwd: str | None = None
    process: asyncio.subprocess.Process | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)
    raw: list[str] = field(default_factory=list)
    url: str = ""
    _reader: asyncio.Task[None] | None = None

    async def start(self, *, ready: bool = True) -> AgentkitProcess:
        self.process = await asyncio.create_subprocess_exec(
            AGENTKIT, "run", *self.args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, **self.env}, cwd=self.cwd,
        )
        self._reader = asyncio.create_task(self._read())
        if ready:
            started = await wait_until(lambda: self.logged("agentkit.started"), timeout=30,
                                       message="agentkit to start")
            self.url = started[0]["url"]
        return self

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            text = line.decode(errors="replace").rstrip()
            self.raw.append(text)
            try:
                self.lines.append(json.loads(text))
            except ValueError:
                pass

    def logged(self, event: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == event]

    async def deliver(self, event: dict[str, Any], secret: str = SECRET) -> httpx.Response:
        body, headers = signed(event, secret)
        async with httpx.AsyncClient(timeout=10) as http:
            return await http.post(self.url + WEBHOOK_PATH, content=body, headers=headers)

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    async def wait(self, timeout: float = 30) -> int:
        assert self.process is not None
        code = await asyncio.wait_for(self.process.wait(), timeout)
        if self._reader is not None:
            await asyncio.wait_for(self._reader, timeout)
        return code

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await self.wait()

    def output(self) -> str:
        return "\n".join(self.raw)


def run_env(tmp: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a test process: keys, a store of its own, the probe's folder."""
    probe = tmp / "probe"
    probe.mkdir(exist_ok=True)
    return {
        "ODYGY_API_KEY": API_KEY,
        "ODYGY_WEBHOOK_SECRET": SECRET,
        "ODYGY_BASE_URL": "http://127.0.0.1:9/v1",
        "AGENTKIT_DATABASE_URL": database_url or f"sqlite:///{tmp / 'agentkit.db'}",
        "PROBE_DIR": str(probe),
        **extra,
    }
