"""A fake Slack on loopback: the Web API methods approvals use, and clicks signed as Slack signs.

``FakeSlack`` answers ``chat.postMessage`` and ``chat.update`` under
``/api/`` (point SLACK_API_URL at ``fake.api_url``), keeps each message as it
was last posted or updated, and records what is posted to a click's
``response_url``. ``signed_click`` builds an interactivity request exactly as
Slack sends one: a form-encoded ``payload=``, ``X-Slack-Request-Timestamp``
and a ``v0`` ``X-Slack-Signature``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from quart import Quart, Response, request

from agentkit.testing.recorder import LoopbackApp
from agentkit.testing.waiting import wait_until

FAKE_CHANNEL = "C0APPROVALS"


@dataclass
class FakeSlack(LoopbackApp):
    """The Slack Web API and response URLs, on loopback, for one bot ``token``."""

    token: str = "xoxb-fake-token"
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    ephemeral: list[dict[str, Any]] = field(default_factory=list)
    failures: int = 0

    def __post_init__(self) -> None:
        app = Quart("agentkit.testing.slack")
        stamps = itertools.count(1)

        @app.post("/api/<method>")
        async def web_api(method: str) -> Response:
            body = await request.get_json(force=True, silent=True) or {}
            self.calls.append((method, body))
            if self.failures > 0:
                self.failures -= 1
                return _answer({"ok": False, "error": "internal_error"}, 500)
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                return _answer({"ok": False, "error": "invalid_auth"})
            if method == "chat.postMessage":
                ts = f"{int(time.time())}.{next(stamps):06d}"
                self.messages[ts] = {"channel": body.get("channel"), **body}
                return _answer({"ok": True, "channel": body.get("channel"), "ts": ts})
            if method == "chat.update":
                ts = str(body.get("ts"))
                if ts not in self.messages:
                    return _answer({"ok": False, "error": "message_not_found"})
                self.messages[ts] = {**self.messages[ts], **body}
                return _answer({"ok": True, "channel": body.get("channel"), "ts": ts})
            return _answer({"ok": False, "error": "unknown_method"})

        @app.post("/hooks/<path:hook>")
        async def response_url(hook: str) -> Response:
            body = await request.get_json(force=True, silent=True) or {}
            self.ephemeral.append({"hook": hook, **body})
            return Response("ok")

        self._app = app

    @property
    def api_url(self) -> str:
        """What SLACK_API_URL should be."""
        return self.url + "/api/"

    def response_url(self, name: str = "click") -> str:
        """A response_url on this fake, as a click carries one."""
        return f"{self.url}/hooks/{name}"

    def posted(self, method: str = "chat.postMessage") -> list[dict[str, Any]]:
        """The bodies of every call to ``method``, in order."""
        return [body for called, body in self.calls if called == method]

    def message_for(self, approval_id: str) -> dict[str, Any] | None:
        """The message, as it stands now, whose buttons name ``approval_id``."""
        for message in self.messages.values():
            if approval_id in json.dumps(message.get("blocks", [])):
                return message
        return None

    async def wait_for(self, method: str, count: int = 1, *, timeout: float = 10.0) -> None:
        await wait_until(lambda: len(self.posted(method)) >= count, timeout=timeout,
                         message=f"{count} Slack {method} calls")


def slack_signature(secret: str, timestamp: str, body: bytes) -> str:
    """``v0=`` HMAC-SHA256 of ``v0:timestamp:body``, as Slack signs requests."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_click(
    secret: str,
    approval_id: str,
    action_id: str = "approve",
    *,
    user: str = "U0APPROVER",
    response_url: str | None = None,
    timestamp: int | None = None,
    payload: dict[str, Any] | None = None,
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of a Slack ``block_actions`` click on an approval's button."""
    click = payload if payload is not None else {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "team_id": "T0TEAM"},
        "team": {"id": "T0TEAM", "domain": "example"},
        "channel": {"id": FAKE_CHANNEL, "name": "approvals"},
        "container": {"type": "message", "message_ts": "1.000001", "channel_id": FAKE_CHANNEL},
        "trigger_id": "1.2.3",
        "response_url": response_url,
        "actions": [{"type": "button", "action_id": action_id, "block_id": "approval:x",
                     "value": approval_id, "action_ts": str(time.time())}],
    }
    body = urlencode({"payload": json.dumps(click)}).encode()
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    return body, {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": slack_signature(secret, stamp, body),
    }


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")
