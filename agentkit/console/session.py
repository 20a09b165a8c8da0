"""Console sign-in: who a token belongs to, and the signed session cookie that follows.

A session is a signed cookie (itsdangerous, as Flask and Quart sign theirs),
HttpOnly, SameSite=Strict, scoped to /console and valid for 12 hours. It
carries the person's name and role, a CSRF token for every form of the
session, and a fingerprint of the credential it was made with: a session
dies when its user leaves the users file, changes role, gets a new token, or
when the shared token changes.

In the sandbox with approvals on, the URL token signs in a person of its own
(``url_role``, named ``sandbox``) rather than the shared login, so that the
demo's approvals can be decided in the console.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

from itsdangerous import BadSignature, URLSafeTimedSerializer

from agentkit.console.access import ConsoleUser, Role, UsersFile

SESSION_COOKIE = "agentkit_console"
SESSION_SECONDS = 12 * 3600
SHARED_NAME_LIMIT = 64
URL_NAME = "sandbox"


@dataclass(frozen=True)
class Operator:
    """Who is signed in: ``shared`` when by the shared token, whose name proves nothing."""

    name: str
    role: Role
    shared: bool
    csrf: str
    fingerprint: str

    @property
    def can_change(self) -> bool:
        return self.role != "viewer"

    @property
    def can_approve(self) -> bool:
        """An approver signed in as themselves: the shared login never decides approvals."""
        return self.role == "approver" and not self.shared

    def describe(self) -> dict[str, Any]:
        """Who, for the action log."""
        return {"by": self.name, "role": self.role, "shared_login": self.shared}


class ConsoleAccess:
    """Checks tokens against the shared token and the users file, and signs sessions."""

    def __init__(self, *, secret_key: str, shared_token: str = "",
                 users: UsersFile | None = None, url_role: Role | None = None) -> None:
        """``url_role``: the role the sandbox's URL token signs in with, as ``sandbox``
        (not the shared login); None keeps it the shared login."""
        self._shared = shared_token
        self._users = users
        self._url_role = url_role
        self._key = secret_key.encode()
        self._serializer = URLSafeTimedSerializer(secret_key, salt="agentkit-console-session")

    @property
    def enabled(self) -> bool:
        return bool(self._shared) or self._users is not None

    async def sign_in(self, token: str, name: str) -> Operator | None:
        """The operator this token makes, or None; scrypt runs off the event loop."""
        if not token:
            return None
        if self._users is not None:
            user = await asyncio.to_thread(self._users.authenticate, token)
            if user is not None:
                return self._operator(user.name, user.role, False, self._user_print(user))
        if self._shared and hmac.compare_digest(token.encode(), self._shared.encode()):
            shown = " ".join(name.split())[:SHARED_NAME_LIMIT] or "operator"
            return self._operator(shown, "operator", True, self._shared_print())
        return None

    async def sign_in_by_url(self, token: str) -> Operator | None:
        """The operator the sandbox's URL token (the shared token) makes, or None."""
        if self._url_role is None:
            return await self.sign_in(token, URL_NAME)
        if not (token and self._shared
                and hmac.compare_digest(token.encode(), self._shared.encode())):
            return None
        return self._operator(URL_NAME, self._url_role, False, self._url_print())

    def cookie(self, operator: Operator) -> str:
        """The signed value of the session cookie."""
        return self._serializer.dumps({
            "n": operator.name, "r": operator.role, "s": operator.shared,
            "c": operator.csrf, "f": operator.fingerprint, "t": int(time.time()),
        })

    def operator(self, cookie: str | None) -> Operator | None:
        """The operator of a session cookie still valid, or None."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=SESSION_SECONDS)
            name, role, shared = str(data["n"]), data["r"], bool(data["s"])
            csrf, fingerprint = str(data["c"]), str(data["f"])
        except (BadSignature, KeyError, TypeError):
            return None
        if shared:
            current = self._shared_print() if self._shared else None
        elif self._url_role is not None and self._shared and (name, role) == (
                URL_NAME, self._url_role):
            current = self._url_print()
        else:
            current = self._current_print(name, role)
        if current is None or not hmac.compare_digest(current, fingerprint):
            return None
        return Operator(name, role, shared, csrf, fingerprint)

    def _operator(self, name: str, role: Role, shared: bool, fingerprint: str) -> Operator:
        return Operator(name, role, shared, secrets.token_urlsafe(24), fingerprint)

    def _shared_print(self) -> str:
        return self._print("shared", self._shared)

    def _url_print(self) -> str:
        return self._print("url", f"{URL_NAME}\0{self._url_role}\0{self._shared}")

    def _user_print(self, user: ConsoleUser) -> str:
        return self._print("user", f"{user.name}\0{user.role}\0{user.token_hash}")

    def _current_print(self, name: str, role: Literal["viewer", "operator", "approver"]
                       ) -> str | None:
        if self._users is None:
            return None
        for user in self._users.users():
            if user.name == name and user.role == role:
                return self._user_print(user)
        return None

    def _print(self, kind: str, value: str) -> str:
        return hmac.new(self._key, f"{kind}\0{value}".encode(), hashlib.sha256).hexdigest()[:32]


def session_key(*secrets_: str) -> str:
    """The key sessions are signed with, from the deployment's own secrets, so that every
    process of a deployment accepts every other's sessions."""
    digest = hashlib.sha256(b"agentkit-console\0")
    for value in secrets_:
        digest.update(hashlib.sha256(value.encode()).digest())
    return digest.hexdigest()
