"""``/v1/webhooks``."""

from __future__ import annotations

from collections.abc import Sequence

from agentkit.odygy.models import EventType, WebhookCreate, WebhookEndpoint
from agentkit.odygy.resources._base import NOT_GIVEN, NotGiven, Resource, build


class WebhooksResource(Resource):
    async def create(
        self,
        *,
        url: str,
        events: Sequence[EventType],
        secret: str | NotGiven = NOT_GIVEN,
    ) -> WebhookEndpoint:
        """Register an endpoint; the answer carries its ``secret`` (only this once)."""
        body = build(WebhookCreate, {"url": url, "events": list(events), "secret": secret})
        return await self._transport.create(
            "/webhooks", body, parse=WebhookEndpoint.model_validate
        )
