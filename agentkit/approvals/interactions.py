"""``POST /slack/interactions``: Approve and Reject clicks from Slack, verified, decided once.

Slack signs each request (``v0`` HMAC over ``v0:timestamp:body`` with the
app's signing secret); anything unsigned, older than five minutes or
malformed is refused before it is read. The click names the approval by the
button's value alone; the channel and message in the payload are not relied
on. Who clicked is checked against AGENTKIT_APPROVERS here, on the server.
The answer comes at once; replies only the clicker sees go to the click's
``response_url`` in the background, so Slack's 3-second limit is kept.
"""

from __future__ import annotations

import json
from typing import Literal
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from quart import Blueprint, Response, current_app, request
from slack_sdk.signature import SignatureVerifier

from agentkit.approvals.desk import ApprovalDesk
from agentkit.approvals.slack import APPROVE, REJECT, SlackWebApi
from agentkit.logs import get_logger

log = get_logger("agentkit.approvals")

INTERACTIONS_PATH = "/slack/interactions"
MAX_BODY_BYTES = 64 * 1024


class _User(BaseModel):
    id: str = Field(min_length=1, max_length=64)


class _Action(BaseModel):
    action_id: str
    value: str | None = Field(default=None, max_length=200)


class _Click(BaseModel):
    """The parts of a ``block_actions`` payload agentkit reads; the rest is ignored."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["block_actions"]
    user: _User
    actions: list[_Action] = Field(min_length=1, max_length=1)
    response_url: str | None = None


def slack_interactions(desk: ApprovalDesk, slack: SlackWebApi,
                       approvers: tuple[str, ...]) -> Blueprint:
    """The blueprint of Slack's interactivity Request URL."""
    blueprint = Blueprint("slack_interactions", __name__)
    verifier = SignatureVerifier(slack.app.signing_secret)
    allowed = frozenset(approvers)

    @blueprint.post(INTERACTIONS_PATH)
    async def interactions() -> Response:
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return _refuse(413, "too_large", f"a Slack interaction is at most "
                                             f"{MAX_BODY_BYTES} bytes")
        body = await request.get_data(as_text=False)
        assert isinstance(body, bytes)
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not timestamp.isdigit() or not verifier.is_valid(body, timestamp, signature):
            log.warning("slack.unsigned", has_signature=bool(signature))
            return _refuse(401, "invalid_signature",
                           "the request is not signed with SLACK_SIGNING_SECRET, or its "
                           "timestamp is more than 5 minutes off")
        click = _parse(body)
        if click is None:
            return _refuse(400, "bad_payload",
                           "expected a form field payload= holding a block_actions click")
        action = click.actions[0]
        if action.action_id not in (APPROVE, REJECT):
            return _refuse(400, "unknown_action",
                           f"action_id {action.action_id!r} is not {APPROVE} or {REJECT}")
        approval = await desk.store.get_approval(action.value) if action.value else None
        if approval is None:
            return _refuse(400, "unknown_approval", "the button names no known approval")
        user = click.user.id
        bound = log.bind(approval=approval.id, user=user, action=action.action_id)
        if user not in allowed:
            bound.warning("approval.not_allowed")
            _reply(slack, click, "You are not allowed to decide this approval: only the "
                                 "approvers in AGENTKIT_APPROVERS can. Nothing was changed.")
            return Response("", status=200)
        decision: Literal["approved", "rejected"] = (
            "approved" if action.action_id == APPROVE else "rejected")
        verdict = await desk.decide(approval.id, decision, by=f"slack:{user}")
        if not verdict.decided:
            _reply(slack, click, f"Nothing was changed: {verdict.explain()}.")
        return Response("", status=200)

    return blueprint


def _parse(body: bytes) -> _Click | None:
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        raw = form["payload"]
        if len(raw) != 1:
            return None
        return _Click.model_validate(json.loads(raw[0]))
    except (UnicodeDecodeError, ValueError, KeyError, ValidationError):
        return None


def _reply(slack: SlackWebApi, click: _Click, text: str) -> None:
    if click.response_url:
        current_app.add_background_task(slack.reply_privately, click.response_url, text)


def _refuse(status: int, code: str, message: str) -> Response:
    return Response(json.dumps({"error": {"code": code, "message": message}}), status=status,
                    mimetype="application/json")
