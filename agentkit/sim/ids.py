"""Opaque, time-ordered ids in the API's style: ``usr_01J9Z3...``."""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class IdFactory:
    """Makes ULID-like ids that sort in creation order, even within one millisecond."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._last_random = 0

    def new(self, prefix: str) -> str:
        with self._lock:
            ms = int(time.time() * 1000)
            if ms <= self._last_ms:
                ms = self._last_ms
                self._last_random += 1
            else:
                self._last_ms = ms
                self._last_random = int.from_bytes(os.urandom(10), "big") >> 1
            value = (ms << 80) | (self._last_random & ((1 << 80) - 1))
        chars = []
        for _ in range(26):
            chars.append(_ALPHABET[value & 31])
            value >>= 5
        return f"{prefix}_{''.join(reversed(chars))}"
