"""The gate every outbound call passes, at each attempt: the policy, then the caps.

``vet`` judges a number without placing anything: the bot's dial policy over
the deployment's countries, the account's own numbers and users' caller IDs,
the do-not-call list. ``claim`` is asked right before each call is placed: it
counts the call against the caps in the store, atomically for every process
of the deployment, and refuses while calls are paused. See docs/dial-policy.md.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from agentkit.actions.notify import ChatMessage
from agentkit.actions.policy import PolicyDecision
from agentkit.bot import Bot
from agentkit.logs import get_logger
from agentkit.odygy.client import OdygyClient
from agentkit.settings import DEFAULT_DIAL_DAILY_MAX
from agentkit.store.base import DialClaim, DialGrant, Store

log = get_logger("agentkit.actions")

# The account's numbers and its users' caller IDs are listed at most this often per process.
OWN_NUMBERS_SECONDS = 60.0
# A day, for the caps: the last 24 hours, whatever the time zone.
DAY = timedelta(days=1)

Alert = Callable[[ChatMessage], Awaitable[None]]


@dataclass(frozen=True)
class DialLimits:
    """The deployment's part of the dial policy (AGENTKIT_DIAL_*, AGENTKIT_CALLS_PAUSED)."""

    countries: frozenset[str] | None = None
    daily_max: int = DEFAULT_DIAL_DAILY_MAX
    paused: bool = False


class DialGate:
    """Vets numbers and claims calls for every bot of this process."""

    def __init__(self, api: OdygyClient, store: Store, limits: DialLimits, *,
                 alert: Alert, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        """``clock``: the now ``vet`` judges at (a replay's is its event's time)."""
        self._clock = clock
        self._api = api
        self._store = store
        self.limits = limits
        self._alert = alert
        self._account_country: str | None = None
        self._own: tuple[float, frozenset[str]] | None = None

    async def account_country(self) -> str:
        if self._account_country is None:
            self._account_country = (await self._api.account.retrieve()).country
        return self._account_country

    async def countries(self) -> frozenset[str]:
        """The deployment's countries: AGENTKIT_DIAL_COUNTRIES, or the account's country."""
        if self.limits.countries is not None:
            return self.limits.countries
        return frozenset({await self.account_country()})

    async def own_numbers(self) -> frozenset[str]:
        """The account's numbers and its users' caller IDs, never dialled."""
        now = time.monotonic()
        if self._own is not None and now - self._own[0] < OWN_NUMBERS_SECONDS:
            return self._own[1]
        numbers = {number.number async for number in self._api.numbers.list(limit=100)}
        numbers |= {user.caller_id_number async for user in self._api.users.list(limit=100)
                    if user.caller_id_number}
        self._own = (now, frozenset(numbers))
        return self._own[1]

    async def vet(
        self, bot: Bot, number: str, *, caller: str | None, stored: bool = True
    ) -> PolicyDecision:
        """Whether ``bot`` may call ``number``; the decision's ``number`` is what to dial.

        ``stored=False`` judges by the policy alone and leaves the do-not-call
        list and the calls already placed today to ``claim``, which reads them in
        the same transaction that counts the call.
        """
        policy = bot.dial_policy
        first = policy.check(
            number, account_country=await self.account_country(),
            countries=await self.countries(), caller_number=caller,
            own_numbers=await self.own_numbers(),
        )
        if not first.allowed or first.number is None or not stored:
            return first
        now = self._clock()
        listed = await self._store.do_not_call(first.number)
        if listed is not None and listed.created_at <= now:
            why = f": {listed.reason}" if listed.reason else ""
            return PolicyDecision(
                False, f"{first.number} is on the do-not-call list (added by "
                       f"{listed.added_by or 'an operator'}{why})",
                first.number, first.region, first.number_type,
            )
        placed = await self._store.count_dial_claims(first.number, now - DAY, until=now)
        if placed >= policy.max_calls_per_number_per_day:
            return PolicyDecision(
                False, f"{first.number} was already called {placed} times today "
                       f"(limit {policy.max_calls_per_number_per_day})",
                first.number, first.region, first.number_type,
            )
        return first

    async def claim(self, bot: Bot, *, key: str, attempt: int, number: str) -> DialGrant:
        """Count one attempt against the caps; refused while paused or over a cap."""
        if self.limits.paused:
            return DialGrant(False, "paused")
        grant = await self._store.claim_dial(DialClaim(
            action_key=key, attempt=attempt, number=number, bot=bot.name,
            number_limit=bot.dial_policy.max_calls_per_number_per_day,
            daily_limit=self.limits.daily_max, since=datetime.now(UTC) - DAY,
        ))
        if grant.refusal == "daily_max":
            await self._daily_max_reached(grant.daily_count)
        return grant

    def refusal_reason(self, grant: DialGrant, number: str, bot: Bot) -> str:
        """Why a claim was refused, in words for the action log and the chat note."""
        if grant.refusal == "paused":
            return "outbound calls are paused (agentkit calls resume, or AGENTKIT_CALLS_PAUSED)"
        if grant.refusal == "do_not_call":
            return f"{number} is on the do-not-call list"
        if grant.refusal == "number_cap":
            return (f"{number} was already called {grant.number_count} times today "
                    f"(limit {bot.dial_policy.max_calls_per_number_per_day})")
        return (f"the deployment placed {grant.daily_count} calls in the last 24 hours "
                f"(AGENTKIT_DIAL_DAILY_MAX={self.limits.daily_max}); every callback stops")

    async def _daily_max_reached(self, count: int) -> None:
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        log.error("dial.daily_max_reached", calls=count, limit=self.limits.daily_max)
        if not await self._store.claim_once(f"alert:dial-daily-max:{day}"):
            return
        await self._alert(ChatMessage(
            title="Callbacks stopped: the daily call limit is reached",
            text=(f"agentkit placed {count} calls in the last 24 hours, the limit set by "
                  f"AGENTKIT_DIAL_DAILY_MAX ({self.limits.daily_max}). No callback is placed "
                  "until the count falls below it. If this is a loop or a flood, find it in "
                  "the log; if it is real traffic, raise the limit."),
            urgency="urgent",
            reference=f"dial-daily-max:{day}",
        ))
