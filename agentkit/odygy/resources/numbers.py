"""``/v1/numbers``."""

from __future__ import annotations

import builtins
from collections.abc import Sequence

from agentkit.odygy.models import (
    AvailableNumber,
    Number,
    NumberAttach,
    NumberFeature,
    NumberSearch,
    NumberType,
)
from agentkit.odygy.pagination import Paginator
from agentkit.odygy.resources._base import NOT_GIVEN, NotGiven, Resource, build, segment


class NumbersResource(Resource):
    def list(self, *, limit: int | None = None) -> Paginator[Number]:
        """Every number on the account."""
        return Paginator(self._transport, "/numbers", Number.model_validate, limit=limit)

    async def search(
        self,
        *,
        country: str,
        type: NumberType | NotGiven = NOT_GIVEN,
        prefix: str | NotGiven = NOT_GIVEN,
        features: Sequence[NumberFeature] | NotGiven = NOT_GIVEN,
    ) -> builtins.list[AvailableNumber]:
        """Numbers on offer in ``country`` (ISO 3166-1 alpha-2), optionally narrowed."""
        body = build(
            NumberSearch,
            {
                "country": country,
                "type": type,
                "prefix": prefix,
                "features": list(features) if isinstance(features, Sequence) else features,
            },
        )
        answer = await self._transport.request("POST", "/numbers/search", json=body)
        return [AvailableNumber.model_validate(item) for item in answer.get("data", [])]

    async def attach(self, number_id: str, *, call_flow_id: str) -> Number:
        """Route calls to ``number_id`` into the call flow ``call_flow_id``."""
        body = build(NumberAttach, {"call_flow_id": call_flow_id})
        answer = await self._transport.request(
            "POST", f"/numbers/{segment(number_id, 'number_id')}/attach", json=body
        )
        return Number.model_validate(answer)
