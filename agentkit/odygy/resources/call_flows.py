"""``/v1/call_flows``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentkit.errors import RequestValidationError
from agentkit.odygy.models import (
    CallFlow,
    CallFlowCreate,
    CallFlowUpdate,
    flow_problems,
    request_body,
)
from agentkit.odygy.pagination import Paginator
from agentkit.odygy.resources._base import NOT_GIVEN, NotGiven, Resource, checked, segment


def _refuse_bad_wiring(entry: str, blocks: dict[str, Any], what: str) -> None:
    problems = flow_problems(entry, blocks)
    if problems:
        raise RequestValidationError(f"{what} refused before sending: {'; '.join(problems)}")


class CallFlowsResource(Resource):
    def list(self, *, limit: int | None = None) -> Paginator[CallFlow]:
        """Every call flow."""
        return Paginator(self._transport, "/call_flows", CallFlow.model_validate, limit=limit)

    async def create(self, *, name: str, entry: str, blocks: Mapping[str, Any]) -> CallFlow:
        """Create a flow; ``entry`` and every block's targets must name blocks.

        A failed create is not retried unless the connection never opened: the
        API has no way to tell whether a half-answered create made a flow.
        """
        flow = checked(CallFlowCreate, {"name": name, "entry": entry, "blocks": dict(blocks)})
        _refuse_bad_wiring(flow.entry, flow.blocks, "CallFlowCreate")
        return await self._transport.create(
            "/call_flows", request_body(flow), parse=CallFlow.model_validate
        )

    async def retrieve(self, call_flow_id: str) -> CallFlow:
        answer = await self._transport.request(
            "GET", f"/call_flows/{segment(call_flow_id, 'call_flow_id')}"
        )
        return CallFlow.model_validate(answer)

    async def update(
        self,
        call_flow_id: str,
        *,
        name: str | NotGiven = NOT_GIVEN,
        entry: str | NotGiven = NOT_GIVEN,
        blocks: Mapping[str, Any] | NotGiven = NOT_GIVEN,
    ) -> CallFlow:
        """Change the fields given; ``blocks`` replaces all blocks."""
        change = checked(
            CallFlowUpdate,
            {
                "name": name,
                "entry": entry,
                "blocks": dict(blocks) if isinstance(blocks, Mapping) else blocks,
            },
        )
        if change.entry is not None and change.blocks is not None:
            _refuse_bad_wiring(change.entry, change.blocks, "CallFlowUpdate")
        answer = await self._transport.request(
            "PATCH",
            f"/call_flows/{segment(call_flow_id, 'call_flow_id')}",
            json=request_body(change),
        )
        return CallFlow.model_validate(answer)

    async def delete(self, call_flow_id: str) -> None:
        """Delete a flow; ConflictError while a number is attached to it."""
        await self._transport.delete(f"/call_flows/{segment(call_flow_id, 'call_flow_id')}")
