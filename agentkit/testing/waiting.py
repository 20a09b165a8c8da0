"""Wait on a condition with a deadline, never for a fixed time."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def wait_until(
    condition: Callable[[], Any],
    *,
    timeout: float = 5.0,
    interval: float = 0.005,
    message: str = "condition",
) -> Any:
    """Return the first truthy value of ``condition()``; raise TimeoutError at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{message} was not met within {timeout} s")
        await asyncio.sleep(interval)
