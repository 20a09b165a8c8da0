"""Chat-ops notifications: one message, sent to Slack, Teams, a webhook or the console.

Channels make one attempt and raise ``NotifyError``; ``Notifier`` masks payment
data, sends to every channel at once, retries what is worth retrying and never
raises. Webhook URLs are secrets: no message, error or log line carries one.
See docs/notifications.md.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TextIO
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator
from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from agentkit.actions.record import Settle
from agentkit.errors import AgentkitError, ConfigError
from agentkit.logs import get_logger
from agentkit.odygy.ratelimit import parse_retry_after
from agentkit.redact import mask_payment_data

if TYPE_CHECKING:
    from agentkit.settings import Settings

log = get_logger("agentkit.notify")

Urgency = Literal["low", "normal", "high", "urgent"]
DEFAULT_TIMEOUT = 10.0
ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
# Block Kit limits: a header's text, a section's text, one field's text.
_SLACK_HEADER, _SLACK_TEXT, _SLACK_FIELD, _SLACK_FIELDS_PER_SECTION = 150, 3000, 2000, 10
_RULE = 60  # width of the console block's top and bottom lines
# Old Office 365 connectors answer 200 and report the real status in the body.
_TEAMS_FAILED = re.compile(r"^Webhook message delivery failed.*?HTTP error (\d{3})", re.S)


class ChatMessage(BaseModel):
    """What a bot tells its team; ``fields`` show as a table, ``links`` as buttons or links."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str = Field(min_length=1)
    text: str
    fields: dict[str, str] = {}
    urgency: Urgency = "normal"
    reference: str | None = None
    links: dict[str, str] = {}

    @field_validator("links")
    @classmethod
    def _http_links(cls, links: dict[str, str]) -> dict[str, str]:
        for label, url in links.items():
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"link {label!r} must be an http(s) URL, not {url!r}")
        return links

    def masked(self) -> ChatMessage:
        """This message with payment data masked in its title, text and fields."""
        return self.model_copy(update={
            "title": mask_payment_data(self.title),
            "text": mask_payment_data(self.text),
            "fields": {mask_payment_data(k): mask_payment_data(v) for k, v in self.fields.items()},
        })


class NotifyError(AgentkitError):
    """A channel failed to deliver a message.

    ``retryable`` says whether trying again may help; ``retry_after`` is the
    wait the receiver asked for, in seconds.
    """

    def __init__(
        self,
        message: str,
        *,
        channel: str,
        status: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.channel = channel
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


class Channel(Protocol):
    """Somewhere a message can go; ``send`` makes one attempt and raises NotifyError."""

    name: str

    async def send(self, message: ChatMessage) -> None: ...


class _HttpChannel:
    """Posts a JSON payload to a secret URL; subclasses say what the payload is."""

    kind = "webhook"

    def __init__(
        self,
        url: str,
        *,
        name: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        client: httpx.AsyncClient | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not str(url).startswith(("https://", "http://")):
            # The URL is a secret: say what is wrong without repeating it.
            raise ConfigError(f"the {self.kind} webhook URL must start with https://")
        self._url = url
        self.name = name or self.kind
        self._timeout = timeout
        self._client = client
        self._headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def render(self, message: ChatMessage) -> dict[str, Any]:
        """The JSON body posted for ``message``."""
        raise NotImplementedError

    async def send(self, message: ChatMessage) -> None:
        """Post ``message`` once; raise NotifyError unless the receiver accepted it."""
        payload = self.render(message)
        try:
            if self._client is not None:
                response = await self._client.post(
                    self._url, json=payload, headers=self._headers, timeout=self._timeout
                )
            else:
                async with httpx.AsyncClient(timeout=self._timeout) as client:
                    response = await client.post(self._url, json=payload, headers=self._headers)
        except httpx.HTTPError as exc:
            retryable = isinstance(
                exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError
            )
            raise NotifyError(
                f"{self.kind} request failed: {type(exc).__name__}: {self._scrub(str(exc))}",
                channel=self.name,
                retryable=retryable,
            ) from exc
        self._check(response)

    def _check(self, response: httpx.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        raise NotifyError(
            f"{self.kind} answered {status}: {self._scrub(response.text[:200]) or 'no body'}",
            channel=self.name,
            status=status,
            retryable=status == 429 or status >= 500,
            retry_after=(parse_retry_after(response.headers.get("retry-after"))
                         if status == 429 else None),
        )

    def _scrub(self, text: str) -> str:
        url = str(self._url)
        text = text.replace(url, "***")
        path = httpx.URL(url).path
        text = text.replace(path, "***") if len(path) > 1 else text
        return scrub_secrets(text)


# A URL keeps its scheme and host; its path and query may be the credential itself.
_URL = re.compile(r"(https?://[^/\s'\"<>?#]+)[^\s'\"<>]*", re.I)
_TOKENS = re.compile(
    r"\b(xox[a-z]-[A-Za-z0-9-]+|(?:sig|token|access_token|key|code|secret)=[^&\s'\"<>]+)",
    re.I,
)


def scrub_secrets(text: str) -> str:
    """``text`` with URL paths and queries, and anything shaped like a token, masked.

    For errors from chat endpoints, which quote the secret webhook URL (or one it
    redirected to) and sometimes tokens, before they are logged or stored.
    """
    text = _URL.sub(lambda m: m.group(1) + "/***", text)
    return _TOKENS.sub("***", text)


class SlackChannel(_HttpChannel):
    """A Slack incoming webhook: Block Kit blocks with a plain-text fallback."""

    kind = "slack"

    def render(self, message: ChatMessage) -> dict[str, Any]:
        blocks: list[Block] = [HeaderBlock(text=PlainTextObject(
            text=clip(_URGENCY_EMOJI[message.urgency] + message.title, _SLACK_HEADER),
            emoji=True,
        ))]
        if message.text.strip():
            blocks.append(SectionBlock(
                text=MarkdownTextObject(text=clip(slack_escape(message.text), _SLACK_TEXT))
            ))
        facts = [
            MarkdownTextObject(text=clip(f"*{slack_escape(k)}*\n{slack_escape(v)}",
                                          _SLACK_FIELD))
            for k, v in message.fields.items()
        ]
        for i in range(0, len(facts), _SLACK_FIELDS_PER_SECTION):
            blocks.append(SectionBlock(fields=facts[i:i + _SLACK_FIELDS_PER_SECTION]))
        if message.links:
            links = " · ".join(
                f"<{slack_url(url)}|{slack_escape(label).replace('|', '/')}>"
                for label, url in message.links.items()
            )
            blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(links, _SLACK_TEXT))))
        context = [f"Urgency: *{message.urgency}*"]
        if message.reference:
            context.append(f"Ref: `{slack_escape(message.reference)}`")
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text="  ·  ".join(context))]))
        return {
            "text": clip(slack_escape(_plain_summary(message)), _SLACK_TEXT),
            "blocks": [block.to_dict() for block in blocks],
        }


class TeamsChannel(_HttpChannel):
    """A Microsoft Teams incoming webhook (or Workflows webhook): an Adaptive Card 1.4."""

    kind = "teams"

    def render(self, message: ChatMessage) -> dict[str, Any]:
        body: list[dict[str, Any]] = [{
            "type": "TextBlock", "text": message.title, "size": "Large", "weight": "Bolder",
            "wrap": True, "color": _TEAMS_COLOUR[message.urgency],
        }]
        if message.text.strip():
            body.append({"type": "TextBlock", "text": message.text, "wrap": True})
        if message.fields:
            body.append({"type": "FactSet", "facts": [
                {"title": k, "value": v} for k, v in message.fields.items()
            ]})
        context = f"Urgency: {message.urgency}"
        if message.reference:
            context += f" · Ref: {message.reference}"
        body.append({"type": "TextBlock", "text": context, "isSubtle": True, "size": "Small",
                     "wrap": True})
        card: dict[str, Any] = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "body": body,
            "msteams": {"width": "Full"},
        }
        if message.links:
            card["actions"] = [{"type": "Action.OpenUrl", "title": label, "url": url}
                               for label, url in message.links.items()]
        return {
            "type": "message",
            "attachments": [{"contentType": ADAPTIVE_CARD, "contentUrl": None, "content": card}],
        }

    def _check(self, response: httpx.Response) -> None:
        failed = _TEAMS_FAILED.match(response.text) if response.is_success else None
        if failed is None:
            return super()._check(response)
        status = int(failed.group(1))
        raise NotifyError(
            f"teams answered {response.status_code} but reported HTTP error {status}",
            channel=self.name,
            status=status,
            retryable=status == 429 or status >= 500,
        )


class WebhookChannel(_HttpChannel):
    """Any HTTP endpoint: the message as JSON (its fields as ChatMessage names them)."""

    kind = "webhook"

    def render(self, message: ChatMessage) -> dict[str, Any]:
        return message.model_dump(mode="json")


class ConsoleChannel:
    """Prints a readable block; used when no chat URL is set (the sandbox, a laptop)."""

    def __init__(self, stream: TextIO | None = None, *, name: str = "console") -> None:
        self._stream = stream
        self.name = name

    def __repr__(self) -> str:
        return f"ConsoleChannel(name={self.name!r})"

    def render(self, message: ChatMessage) -> str:
        """The block printed for ``message``."""
        lines = [f"--- notification ({message.urgency}) ".ljust(_RULE, "-"), message.title]
        if message.text.strip():
            lines.append(message.text)
        if message.fields:
            width = max(len(k) for k in message.fields)
            lines.append("")
            lines.extend(f"  {k.ljust(width)}  {v}" for k, v in message.fields.items())
        if message.links or message.reference:
            lines.append("")
            lines.extend(f"  {label}: {url}" for label, url in message.links.items())
            if message.reference:
                lines.append(f"  reference: {message.reference}")
        lines.append("-" * _RULE)
        return "\n".join(lines) + "\n"

    async def send(self, message: ChatMessage) -> None:
        """Write the block to the stream (standard output unless told otherwise)."""
        stream = self._stream or sys.stdout
        try:
            stream.write(self.render(message))
            stream.flush()
        except (OSError, ValueError) as exc:
            raise NotifyError(f"console write failed: {exc}", channel=self.name) from exc


@dataclass(frozen=True)
class Delivery:
    """What became of a message on one channel."""

    channel: str
    ok: bool
    attempts: int
    error: str | None = None
    status: int | None = None


class NotifyMetrics(Protocol):
    """What the notifier reports, when given somewhere to report it (``agentkit.metrics``)."""

    def notification(self, *, channel: str, sent: bool) -> None:
        """Count one message delivered to, or given up on, one channel."""


class Notifier:
    """Sends each message to every channel at once, with retries; never raises.

    A channel is retried ``retries`` times after its first attempt, on broken
    connections, timeouts, 429 (waiting as long as Retry-After asks, up to
    ``max_retry_after``) and 5xx; never on other 4xx. ``metrics`` (a process's
    ``Metrics``) counts what was sent and what failed.
    """

    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        retries: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 10.0,
        max_retry_after: float = 30.0,
        metrics: NotifyMetrics | None = None,
    ) -> None:
        self.channels = tuple(channels)
        self.retries = retries
        self._backoff = wait_random_exponential(multiplier=backoff_base, max=backoff_max)
        self._max_retry_after = max_retry_after
        self._metrics = metrics

    @classmethod
    def from_settings(cls, settings: Settings, **options: Any) -> Notifier:
        """Slack and Teams channels from the settings; the console when neither is set."""
        channels: list[Channel] = []
        if settings.slack_webhook_url:
            channels.append(SlackChannel(settings.slack_webhook_url))
        if settings.teams_webhook_url:
            channels.append(TeamsChannel(settings.teams_webhook_url))
        if not channels:
            channels.append(ConsoleChannel())
        return cls(channels, **options)

    @classmethod
    def for_shadow(cls, settings: Settings, **options: Any) -> Notifier | None:
        """The channel of shadow bots' notes (AGENTKIT_SHADOW_CHANNEL), by its URL's kind:
        Slack, Teams, or a generic webhook; None when unset."""
        url = settings.shadow_channel
        if not url:
            return None
        host = (urlsplit(str(url)).hostname or "").lower()
        channel: Channel
        if host == "hooks.slack.com":
            channel = SlackChannel(url, name="shadow")
        elif host.endswith(("webhook.office.com", "logic.azure.com")):
            channel = TeamsChannel(url, name="shadow")
        else:
            channel = WebhookChannel(url, name="shadow")
        return cls([channel], **options)

    async def send(self, message: ChatMessage, *, skip: Collection[str] = ()) -> list[Delivery]:
        """Deliver ``message`` (payment data masked) everywhere but the channel kinds in
        ``skip`` ("slack", "teams", "webhook"); one Delivery per channel."""
        masked = message.masked()
        channels = [c for c in self.channels if getattr(c, "kind", c.name) not in skip]
        return list(await asyncio.gather(*(self._deliver(c, masked) for c in channels)))

    async def _deliver(self, channel: Channel, message: ChatMessage) -> Delivery:
        bound = log.bind(channel=channel.name, reference=message.reference,
                         urgency=message.urgency)
        attempts = 0

        async def attempt() -> None:
            nonlocal attempts
            attempts += 1
            await channel.send(message)

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            bound.info("notify.retry", attempt=state.attempt_number, error=str(exc),
                       status=getattr(exc, "status", None),
                       wait_s=round(state.upcoming_sleep, 3))

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=self._wait,
            retry=retry_if_exception(lambda e: isinstance(e, NotifyError) and e.retryable),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            await retrying(attempt)
        except NotifyError as exc:
            bound.warning("notify.failed", attempts=attempts, error=str(exc), status=exc.status)
            self._count(channel, sent=False)
            return Delivery(channel.name, False, attempts, str(exc), exc.status)
        except Exception as exc:
            # A broken channel: its message may hold anything, so only its type is logged.
            error = f"unexpected {type(exc).__name__}"
            bound.error("notify.failed", attempts=attempts, error=error)
            self._count(channel, sent=False)
            return Delivery(channel.name, False, attempts, error)
        bound.info("notify.sent", attempts=attempts)
        self._count(channel, sent=True)
        return Delivery(channel.name, True, attempts)

    def _count(self, channel: Channel, *, sent: bool) -> None:
        if self._metrics is not None:
            self._metrics.notification(channel=channel.name, sent=sent)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, NotifyError) and exc.retry_after is not None:
            return min(exc.retry_after, self._max_retry_after)
        return float(self._backoff(state))


_URGENCY_EMOJI: dict[str, str] = {
    "low": "", "normal": "", "high": ":warning: ", "urgent": ":rotating_light: ",
}
_TEAMS_COLOUR: dict[str, str] = {
    "low": "Default", "normal": "Default", "high": "Warning", "urgent": "Attention",
}


def delivered(deliveries: list[Delivery]) -> Settle:
    """How a message went, for the action log: done if every channel took it, else failed."""
    failed = any(not d.ok for d in deliveries)
    return Settle(
        "failed" if failed else "done", "failed" if failed else "sent",
        {"channels": {d.channel: ("ok" if d.ok else d.error) for d in deliveries}},
    )


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def slack_escape(text: str) -> str:
    """Text safe in mrkdwn: no <!channel> pings or disguised links from a transcript."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_url(url: str) -> str:
    return url.replace("|", "%7C").replace("<", "%3C").replace(">", "%3E")


def _plain_summary(message: ChatMessage) -> str:
    prefix = f"[{message.urgency.upper()}] " if message.urgency in ("high", "urgent") else ""
    return f"{prefix}{message.title}: {message.text}" if message.text else prefix + message.title
