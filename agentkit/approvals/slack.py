"""Approval requests in Slack: Block Kit messages with Approve and Reject, through the Web API.

An incoming webhook can post a message but never change it, so approvals use
a Slack app: ``chat.postMessage`` to ask, ``chat.update`` to show the decision
on the same message, and a click's ``response_url`` for replies only the
clicking person sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from agentkit.actions.notify import clip, slack_escape, slack_url
from agentkit.errors import AgentkitError
from agentkit.logs import get_logger
from agentkit.redact import mask_payment_data
from agentkit.settings import Settings
from agentkit.store.base import Approval

log = get_logger("agentkit.approvals")

APPROVE, REJECT = "approve", "reject"
_TIMEOUT = httpx.Timeout(10.0)
_TEXT, _FIELD, _HEADER = 3000, 2000, 150
# Where Slack's response_url points; SLACK_API_URL's host is trusted too (a test's fake).
_SLACK_HOOK_HOSTS = frozenset({"hooks.slack.com"})


class SlackError(AgentkitError):
    """The Slack Web API refused a call or could not be reached; the message says which.

    ``retryable``: Slack was unreachable, busy (429) or failing (5xx), so a later
    attempt may work; a refusal (a bad token, a channel the app is not in) will not.
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class SlackApp:
    """The Slack app approvals use: its bot token, signing secret, channel and API."""

    token: str
    signing_secret: str
    channel: str
    api_url: str = "https://slack.com/api/"

    @classmethod
    def from_settings(cls, settings: Settings) -> SlackApp | None:
        """The app when SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET and SLACK_APPROVAL_CHANNEL are
        all set; None (approvals in the console only) otherwise."""
        if not (settings.slack_bot_token and settings.slack_signing_secret
                and settings.slack_approval_channel):
            return None
        return cls(token=str(settings.slack_bot_token),
                   signing_secret=str(settings.slack_signing_secret),
                   channel=settings.slack_approval_channel, api_url=settings.slack_api_url)


class SlackWebApi:
    """The few Web API methods approvals need, over one httpx client."""

    def __init__(self, app: SlackApp, *, http: httpx.AsyncClient | None = None) -> None:
        self.app = app
        self._http = http or httpx.AsyncClient(timeout=_TIMEOUT)
        self._own_http = http is None

    async def post_request(self, approval: Approval, *, console_url: str | None) -> dict[str, str]:
        """Post the approval's request to the channel; where it lives (channel, ts)."""
        answer = await self._call("chat.postMessage", {
            "channel": self.app.channel, "text": request_text(approval),
            "blocks": _dump(request_blocks(approval, console_url=console_url)),
            "unfurl_links": False, "unfurl_media": False,
        })
        return {"channel": str(answer["channel"]), "ts": str(answer["ts"])}

    async def show_decision(self, approval: Approval, outcome: str) -> None:
        """Replace the request's message with the decision; its buttons go."""
        where = approval.message
        if not where.get("channel") or not where.get("ts"):
            return
        await self._call("chat.update", {
            "channel": where["channel"], "ts": where["ts"], "text": decision_text(approval),
            "blocks": _dump(decision_blocks(approval, outcome)),
        })

    async def reply_privately(self, response_url: str, text: str) -> None:
        """Tell only the person who clicked (an ephemeral reply); never raises."""
        if not self.trusts(response_url):
            log.warning("slack.response_url_refused", host=urlsplit(response_url).hostname)
            return
        try:
            response = await self._http.post(response_url, json={
                "response_type": "ephemeral", "replace_original": False, "text": text,
            })
            if response.status_code >= 400:
                log.warning("slack.reply_failed", status=response.status_code)
        except httpx.HTTPError as exc:
            log.warning("slack.reply_failed", error=type(exc).__name__)

    def trusts(self, response_url: str) -> bool:
        """Whether a click's response_url is Slack's (or SLACK_API_URL's host)."""
        parts = urlsplit(response_url)
        api = urlsplit(self.app.api_url)
        if parts.hostname in _SLACK_HOOK_HOSTS:
            return parts.scheme == "https"
        return (parts.scheme, parts.hostname, parts.port) == (api.scheme, api.hostname, api.port)

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def _call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = await self._http.post(
                self.app.api_url + method, json=body,
                headers={"Authorization": f"Bearer {self.app.token}"},
            )
        except httpx.HTTPError as exc:
            raise SlackError(f"Slack {method} failed: {type(exc).__name__}: {exc}",
                             retryable=True) from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if response.status_code >= 400 or not isinstance(answer, dict) or not answer.get("ok"):
            error = answer.get("error") if isinstance(answer, dict) else None
            status = response.status_code
            if status == 429 or status >= 500:
                raise SlackError(f"Slack {method} answered {status} ({error or 'no body'}); "
                                 "tried again later", retryable=True)
            raise SlackError(
                f"Slack {method} answered {status}, {error or 'no ok'}: check "
                "SLACK_BOT_TOKEN (scope chat:write) and that the app is in "
                "SLACK_APPROVAL_CHANNEL", retryable=False,
            )
        return answer


def request_text(approval: Approval) -> str:
    """The request in one line (notifications and screen readers)."""
    return mask_payment_data(f"Approval needed: {describe(approval)}")


def decision_text(approval: Approval) -> str:
    return mask_payment_data(f"{approval.state.capitalize()}: {describe(approval)}")


def describe(approval: Approval) -> str:
    """What will be done, in a few words: "callback to +44 20...", "change to flow cf_1"."""
    what = approval.what
    if approval.kind in ("callback", "escalation"):
        return f"{approval.kind} to {what.get('to')} from {what.get('from')}"
    if approval.kind == "update_flow":
        return f"change to call flow {what.get('flow_id')}"
    if approval.kind == "attach_number":
        return f"route number {what.get('number_id')} to call flow {what.get('after')}"
    return approval.kind


def facts(approval: Approval) -> list[tuple[str, str]]:
    """The what and why of an approval, as label and text (masked, not escaped)."""
    what, why = approval.what, approval.why
    rows: list[tuple[str, str]] = [("Action", describe(approval)), ("Bot", approval.bot)]
    for label, key in (("Urgency", "urgency"), ("Caller ID", "caller"), ("Team", "team")):
        if what.get(key):
            rows.append((label, _words(what[key])))
    if approval.call_id:
        rows.append(("Call", approval.call_id))
    if why.get("reason"):
        rows.append(("Why", str(why["reason"])))
    quote = str(why.get("quote") or "")
    if quote and quote not in str(why.get("reason", "")):
        rows.append(("Their words", f"“{quote}”"))
    if why.get("rule"):
        rows.append(("Asked because", _RULE_WORDS.get(str(why["rule"]), str(why["rule"]))))
    rows.append(("Deadline", f"{approval.deadline:%Y-%m-%d %H:%M:%S} UTC (then rejected)"))
    return [(label, mask_payment_data(text)) for label, text in rows]


def request_blocks(approval: Approval, *, console_url: str | None) -> list[Block]:
    """The request: what, why, the deadline, a diff for a flow change, and the two buttons."""
    blocks = _body(approval, f"Approval needed: {approval.kind.replace('_', ' ')}")
    buttons = [
        ButtonElement(text="Approve", action_id=APPROVE, value=approval.id, style="primary",
                      confirm=ConfirmObject(title="Approve?", text=clip(
                          f"This will {describe(approval)}.", 300),
                          confirm="Approve", deny="Cancel")),
        ButtonElement(text="Reject", action_id=REJECT, value=approval.id, style="danger"),
    ]
    blocks.append(ActionsBlock(block_id=f"approval:{approval.id}", elements=buttons))
    where = f"Approval `{approval.id}`"
    if console_url:
        # A link, not a URL button: a button's click would come back as an interaction too.
        link = slack_url(f"{console_url.rstrip('/')}/console/approvals")
        where += f" · <{link}|open in the console>"
    blocks.append(_context(where))
    return blocks


def decision_blocks(approval: Approval, outcome: str) -> list[Block]:
    """The request as decided: the same facts, who decided and when, and what came of it."""
    title = {"approved": "Approved", "rejected": "Rejected",
             "expired": "Expired (rejected)"}.get(approval.state, approval.state)
    blocks = _body(approval, f"{title}: {approval.kind.replace('_', ' ')}")
    if approval.state == "expired":
        line = f"Nobody decided by the deadline, so it was rejected at {_when(approval.deadline)}."
    else:
        decider = approval.decided_by or "?"
        name = (f"<@{decider.removeprefix('slack:')}>" if decider.startswith("slack:")
                else slack_escape(decider))
        line = f"*{title}* by {name} at {_when(approval.decided_at)}."
    text = f"{line}\n{slack_escape(mask_payment_data(outcome))}" if outcome else line
    blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(text, _TEXT))))
    blocks.append(_context(f"Approval `{approval.id}`"))
    return blocks


def _body(approval: Approval, title: str) -> list[Block]:
    blocks: list[Block] = [HeaderBlock(text=clip(title, _HEADER))]
    rows = facts(approval)
    blocks.append(SectionBlock(fields=[
        MarkdownTextObject(text=clip(f"*{label}*\n{slack_escape(text)}", _FIELD))
        for label, text in rows[:10]
    ]))
    diff = approval.what.get("diff")
    if diff:
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text=clip(f"```{slack_escape(str(diff))}```", _TEXT))))
    link = approval.what.get("link")
    if isinstance(link, str) and link.startswith(("https://", "http://")):
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f"<{slack_url(link)}|Call>")))
    return blocks


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=text)])


def _dump(blocks: list[Block]) -> list[dict[str, Any]]:
    return [block.to_dict() for block in blocks]


def _when(at: datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S} UTC" if at else "?"


def _words(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
                         for k, v in value.items() if v)
    return str(value)


_RULE_WORDS = {
    "required": "the bot asks for approval",
    "callback_to_other_number": "the number is not the caller's ID",
    "flow_change": "call-flow changes need approval",
    "escalation": "escalations need approval",
    "all_callbacks": "every callback needs approval",
}
