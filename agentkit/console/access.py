"""Who may use the console: a file of people with roles and hashed tokens, and a login limit.

``AGENTKIT_CONSOLE_USERS`` names a JSON file of people, each with a name, a
role (viewer, operator or approver) and a scrypt hash of their token; the
token itself is shown once, when ``agentkit console add-user`` makes it, and
is kept nowhere. Logins are limited per address over a sliding window, and a
refused attempt counts before anything else is checked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

from agentkit.errors import ConfigError

Role = Literal["viewer", "operator", "approver"]
ROLES: tuple[str, ...] = get_args(Role)
# scrypt's cost: about 50 ms and 16 MiB per check on a small server, so that a stolen
# file does not give up its tokens to a cheap guess.
_N, _R, _P, _LENGTH = 2**14, 8, 1, 32
_NAME_LIMIT = 64


class AccessError(ConfigError):
    """The console's users file, or a change to it, is wrong; the message says how."""


@dataclass(frozen=True)
class ConsoleUser:
    """One person who may sign in to the console."""

    name: str
    role: Role
    token_hash: str


def hash_token(token: str, *, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$hash``, base64 without padding."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(token.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_LENGTH)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_token(token: str, stored: str) -> bool:
    """Whether ``token`` is the one ``stored`` was made from (compared in constant time)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        if len(expected) != _LENGTH:
            return False
        found = hashlib.scrypt(token.encode(), salt=_unb64(salt), n=int(n), r=int(r),
                               p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, expected)


class UsersFile:
    """The console's people, kept in a JSON file only its owner may read."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def users(self) -> list[ConsoleUser]:
        """Everyone in the file; none when it does not exist yet."""
        if not self.path.exists():
            return []
        try:
            raw = json.loads(self.path.read_text())
            people = raw["users"]
            users = [ConsoleUser(str(p["name"]), p["role"], str(p["token_hash"]))
                     for p in people]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise AccessError(
                f"the console users file {self.path} cannot be read ({exc}): fix it, or "
                "remove it and add the users again with agentkit console add-user"
            ) from None
        for user in users:
            if user.role not in ROLES:
                raise AccessError(f"{self.path}: user {user.name!r} has role {user.role!r}; "
                                  f"use one of {', '.join(ROLES)}")
        return users

    def add(self, name: str, role: str) -> str:
        """Add a person and return their new token, which is shown once and kept nowhere."""
        name = name.strip()
        if not name or len(name) > _NAME_LIMIT or any(not c.isprintable() for c in name):
            raise AccessError(f"a console user's name must be 1 to {_NAME_LIMIT} printable "
                              f"characters, not {name!r}")
        if role not in ROLES:
            raise AccessError(f"role {role!r} is not one of {', '.join(ROLES)}")
        users = self.users()
        if any(user.name == name for user in users):
            raise AccessError(f"the console already has a user named {name!r}: choose another "
                              "name, or remove that one from the file first")
        token = secrets.token_urlsafe(32)
        users.append(ConsoleUser(name, role, hash_token(token)))  # type: ignore[arg-type]
        self._write(users)
        return token

    def authenticate(self, token: str) -> ConsoleUser | None:
        """The person whose token this is, or None."""
        found = None
        for user in self.users():
            # Every hash is checked, so the time taken does not tell where a match is.
            if verify_token(token, user.token_hash) and found is None:
                found = user
        return found

    def _write(self, users: list[ConsoleUser]) -> None:
        body = json.dumps({"users": [
            {"name": u.name, "role": u.role, "token_hash": u.token_hash} for u in users
        ]}, indent=2) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".tmp")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, self.path)


class LoginLimiter:
    """At most ``limit`` login attempts per address in any ``window`` seconds.

    Every attempt counts, refused or not, and is counted before the token is
    checked; there is no lockout beyond the window.
    """

    def __init__(self, limit: int = 5, window: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._attempts: dict[str, deque[float]] = {}

    def attempt(self, address: str) -> bool:
        """Count an attempt from ``address``; False when it is over the limit."""
        now = self._clock()
        recent = self._attempts.setdefault(address, deque())
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        recent.append(now)
        if len(self._attempts) > 10_000:
            self._forget(now)
        return len(recent) <= self.limit

    def _forget(self, now: float) -> None:
        """Drop addresses with no attempt in the window, so that memory stays bounded."""
        for address in [a for a, times in self._attempts.items()
                        if not times or times[-1] <= now - self.window]:
            del self._attempts[address]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
