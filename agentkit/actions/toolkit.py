"""``ctx.actions``: what a handler may do, each action once per event and bot.

Every action is keyed by (event, bot, action[, name]) in the action log, so a
handler that runs again after a failure, or on a redelivered event, never
repeats what was done. With AGENTKIT_DRY_RUN=1 actions are decided and logged
but not executed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import quote

from agentkit.actions.callbacks import (
    CallbackResult,
    Callbacks,
    caller_of,
    number_called,
)
from agentkit.actions.flows import FlowChanges
from agentkit.actions.notify import ChatMessage, Delivery, Notifier, delivered
from agentkit.actions.record import ActionLog
from agentkit.actions.window import CallbackWindow
from agentkit.bot import Bot, Team, Urgency
from agentkit.events import CallbackOutcome, Event
from agentkit.logs import get_logger

log = get_logger("agentkit.actions")

__all__ = ["Actions", "CallbackOutcome", "CallbackResult"]


# What the action log keeps of a note's text, for the console.
NOTE_TEXT_LIMIT = 2000

# What a shadow bot's note title starts with.
SHADOW_MARK = "[shadow] "


class Actions:
    """The actions of one bot's run on one event."""

    def __init__(
        self,
        *,
        record: ActionLog,
        event: Event,
        bot: Bot,
        callbacks: Callbacks,
        flows: FlowChanges,
        notifier: Notifier | None,
        console_url: str | None = None,
    ) -> None:
        """``console_url``: the console as users reach it (AGENTKIT_PUBLIC_URL); notes about
        a call then link to its page. ``notifier``: where notes go; for a shadow bot (its
        ``record`` is a shadow's) the shadow channel, or None to post nothing."""
        self._record = record
        self._console_url = console_url
        self._event = event
        self._bot = bot
        self._callbacks = callbacks
        self._flows = flows
        self._notifier = notifier

    def key(self, kind: str, name: str = "") -> str:
        """The action-log key this run gives action ``kind`` (with ``name=``/``key=``): what a
        chat note can quote and ``ctx.history.action`` or a revert request can find."""
        return self._record.key(kind, name)

    async def callback(
        self,
        *,
        to: str | None = None,
        from_: str | None = None,
        urgency: Urgency = "normal",
        reason: str = "",
        team: Team | None = None,
        name: str = "",
        approval: Literal["required"] | None = None,
        quote: str = "",
        window: CallbackWindow | None = None,
    ) -> CallbackResult:
        """Call the caller back (``to`` defaults to them, ``from_`` to the number they called).

        The number must pass the bot's dial policy; outside business hours the
        call is scheduled for the next opening; the bot's team rings first.
        ``window``: when the caller asked to be called (``read_window``): the call
        waits for its start, clamped into business hours, and retries stay in it.
        With ``approval="required"``, or when the bot's approval rules say so,
        it waits for a person (status ``awaiting_approval``); ``quote`` is the
        caller's words behind it, shown to whoever approves.
        """
        return await self._callbacks.request(
            self._record, self._event, self._bot, to=to, from_=from_, urgency=urgency,
            reason=reason, team=team or self._bot.team, name=name, escalation=False,
            approval=approval, quote=quote, window=window,
        )

    async def escalate(
        self,
        *,
        reason: str,
        urgency: Urgency | None = None,
        alert: bool = True,
        to: str | None = None,
        from_: str | None = None,
        name: str = "",
        approval: Literal["required"] | None = None,
        quote: str = "",
    ) -> CallbackResult:
        """Hand the follow-up to the escalation team (supervisors) and alert the chat channel.

        ``approval`` and ``quote`` as for ``callback``.
        """
        escalation = self._bot.escalation
        result = await self._callbacks.request(
            self._record, self._event, self._bot, to=to, from_=from_,
            urgency=urgency or escalation.urgency, reason=reason, team=escalation.team,
            name=name, escalation=True, approval=approval, quote=quote,
        )
        if alert:
            fields = {
                "Caller": caller_of(self._event) or to or "unknown",
                "Called": number_called(self._event) or "unknown",
                "Call": self._event.call_id or "-",
                "Reason": reason,
                "Follow-up": result.status,
            }
            if escalation.queue_id:
                fields["Queue"] = escalation.queue_id
            if result.at is not None:
                fields["Planned"] = result.at.isoformat(timespec="minutes")
            await self.notify(
                ChatMessage(
                    title=f"Escalated by {self._bot.name}",
                    text=reason,
                    fields=fields,
                    urgency=urgency or escalation.urgency,
                    reference=self._event.id,
                ),
                name=f"escalation{':' + name if name else ''}",
            )
        return result

    async def update_flow(
        self,
        flow_id: str,
        *,
        name: str | None = None,
        entry: str | None = None,
        blocks: Mapping[str, Any] | None = None,
        key: str = "",
        approval: Literal["required"] | None = None,
        reason: str = "",
    ) -> dict[str, Any]:
        """Change a call flow (validated: every target block exists); recorded, revertible.

        Waits for a person with ``approval="required"`` or the ``flow_change``
        rule: then the result has an ``approval_id`` and nothing has changed yet.
        """
        return await self._flows.update(
            self._record, flow_id, name=name, entry=entry, blocks=blocks, key_name=key,
            bot=self._bot, approval=approval, reason=reason,
        )

    async def revert_flow(self, change_key: str, *, force: bool = False) -> None:
        """Undo a recorded flow change (its action-log key)."""
        await self._flows.revert(self._record, change_key, force=force)

    async def attach_number(
        self, number_id: str, call_flow_id: str, *, key: str = "",
        approval: Literal["required"] | None = None, reason: str = "",
    ) -> None:
        """Route a number into a call flow; recorded with the flow it had. Waits for a
        person as ``update_flow`` does."""
        await self._flows.attach_number(self._record, number_id, call_flow_id, key_name=key,
                                        bot=self._bot, approval=approval, reason=reason)

    async def notify(self, message: ChatMessage | str, *, name: str = "") -> bool:
        """Post to the chat channels (Slack, Teams, webhook or console) once per event.

        Never raises for a failing channel: True if every channel took it.
        """
        if isinstance(message, str):
            message = ChatMessage(title=self._bot.name, text=message, reference=self._event.id)
        call_id = self._event.call_id
        if self._console_url and call_id and "Console" not in message.links:
            link = f"{self._console_url.rstrip('/')}/console/calls/{quote(call_id, safe='')}"
            message = message.model_copy(update={"links": {**message.links, "Console": link}})
        if self._record.shadow:
            message = message.model_copy(update={
                "title": f"{SHADOW_MARK}{message.title}",
                "fields": {**message.fields, "Shadow": f"{self._bot.name} would post this; "
                                                       "it did nothing"},
            })
        shown = message.masked()
        notifier = self._notifier
        done = await self._record.perform(
            self._record.key("notify", name), "notify",
            {"title": shown.title, "text": shown.text[:NOTE_TEXT_LIMIT]},
            lambda _: notifier.send(message) if notifier is not None else _nowhere(),
            settle=delivered, even_in_dry_run=self._record.shadow and notifier is not None,
        )
        return done.how == "dry_run" or done.record.state == "done"


async def _nowhere() -> list[Delivery]:
    return []
