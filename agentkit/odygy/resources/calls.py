"""``/v1/calls``: click-to-call, call records, recordings and transcripts."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from agentkit.odygy.models import (
    AiFeature,
    Call,
    CallCreate,
    CallStatus,
    Direction,
    Recording,
    Transcript,
)
from agentkit.odygy.pagination import Paginator
from agentkit.odygy.resources._base import NOT_GIVEN, NotGiven, Resource, checked, segment
from agentkit.odygy.transport import Transport

# How far the API's clock may be behind ours when we look for a call we may have made.
CLOCK_SKEW_SECONDS = 30
_CLAIMED_MEMORY = 10_000


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class CallsResource(Resource):
    def __init__(self, transport: Transport) -> None:
        super().__init__(transport)
        # Calls this client already handed back, so a later lookup never claims them twice.
        self._claimed: OrderedDict[str, None] = OrderedDict()

    async def create(
        self,
        *,
        from_: str,
        to: str,
        user_id: str | NotGiven = NOT_GIVEN,
        recording: bool | NotGiven = NOT_GIVEN,
        ai_features: Sequence[AiFeature] | NotGiven = NOT_GIVEN,
    ) -> Call:
        """Place an outbound call from ``from_`` (a number the account owns) to ``to``.

        ``user_id``'s device rings first. The API has no idempotency key, so
        after an attempt whose answer was lost the client lists the calls from
        ``from_`` to ``to`` made since it began, and retries only if none is
        there: a call is never placed twice.
        """
        body = checked(
            CallCreate,
            {
                "from": from_,
                "to": to,
                "user_id": user_id,
                "recording": recording,
                "ai_features": list(ai_features) if isinstance(ai_features, Sequence)
                else ai_features,
            },
        )

        async def reconcile(since: float) -> Call | None:
            return await self.find_placed(
                from_=body.from_, to=body.to, user_id=body.user_id,
                since=datetime.fromtimestamp(since, UTC), exclude=self._claimed,
            )

        call = await self._transport.create(
            "/calls",
            body.model_dump(mode="json", by_alias=True, exclude_unset=True),
            parse=Call.model_validate,
            reconcile=reconcile,
            calls=True,
        )
        self._claim(call.id)
        return call

    async def find_placed(
        self,
        *,
        from_: str,
        to: str,
        since: datetime,
        user_id: str | None = None,
        exclude: Collection[str] = (),
    ) -> Call | None:
        """An outbound call from ``from_`` to ``to`` started since ``since``, if there is one.

        How a caller finds out whether an attempt whose answer was lost made a
        call. ``since`` is widened by the clock skew allowed between us and the
        API; calls in ``exclude`` (already accounted for) are skipped.
        """
        after = datetime.fromtimestamp(math.floor(since.timestamp()) - CLOCK_SKEW_SECONDS, UTC)
        async for call in self.list(
            from_=from_, to=to, direction="outbound", started_after=after, limit=100
        ):
            if call.started_at < after:
                break
            if (
                call.from_ == from_
                and call.to == to
                and call.direction == "outbound"
                and (user_id is None or call.user_id == user_id)
                and call.id not in exclude
            ):
                return call
        return None

    def _claim(self, call_id: str) -> None:
        self._claimed[call_id] = None
        while len(self._claimed) > _CLAIMED_MEMORY:
            self._claimed.popitem(last=False)

    def list(
        self,
        *,
        from_: str | None = None,
        to: str | None = None,
        direction: Direction | None = None,
        status: CallStatus | None = None,
        user_id: str | None = None,
        started_after: datetime | None = None,
        started_before: datetime | None = None,
        limit: int | None = None,
    ) -> Paginator[Call]:
        """Call records, newest first, optionally filtered."""
        params = {
            "from": from_,
            "to": to,
            "direction": direction,
            "status": status,
            "user_id": user_id,
            "started_after": _stamp(started_after) if started_after else None,
            "started_before": _stamp(started_before) if started_before else None,
        }
        return Paginator(self._transport, "/calls", Call.model_validate, limit=limit,
                         params=params)

    async def retrieve(self, call_id: str) -> Call:
        answer = await self._transport.request("GET", f"/calls/{segment(call_id, 'call_id')}")
        return Call.model_validate(answer)

    async def recording(self, call_id: str) -> Recording:
        """A short-lived signed URL of the call's MP3; NotFoundError until it is ready."""
        answer = await self._transport.request(
            "GET", f"/calls/{segment(call_id, 'call_id')}/recording"
        )
        return Recording.model_validate(answer)

    async def transcript(self, call_id: str) -> Transcript:
        """The time-coded transcript; NotFoundError until transcript.ready."""
        answer = await self._transport.request(
            "GET", f"/calls/{segment(call_id, 'call_id')}/transcript"
        )
        return Transcript.model_validate(answer)
