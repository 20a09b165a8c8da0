"""``/v1/call_flows``."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response

from agentkit.odygy.models import CallFlow, CallFlowCreate, CallFlowUpdate, flow_problems
from agentkit.sim.gate import SimApiError
from agentkit.sim.routes._base import (
    body,
    dump,
    find,
    host,
    json_response,
    no_content,
    page,
    query,
    requires,
)
from agentkit.sim.state import utcnow

blueprint = Blueprint("call_flows", __name__, url_prefix="/v1")


@blueprint.get("/call_flows")
@requires("read:*")
async def list_flows() -> Response:
    return page(list(host().state.call_flows.values()), query(("limit", "cursor")))


@blueprint.post("/call_flows")
@requires("call_flows:write")
async def create_flow() -> Response:
    query(())
    new = await body(CallFlowCreate)
    _check_wiring(new.entry, new.blocks)
    state = host().state
    now = utcnow()
    flow = CallFlow(
        id=state.ids.new("cfl"),
        name=new.name,
        entry=new.entry,
        blocks=new.blocks,
        created_at=now,
        updated_at=now,
    )
    state.call_flows[flow.id] = flow
    return json_response(dump(flow), 201)


@blueprint.get("/call_flows/<flow_id>")
@requires("read:*")
async def get_flow(flow_id: str) -> Response:
    query(())
    return json_response(dump(find(host().state.call_flows, flow_id, "call flow")))


@blueprint.patch("/call_flows/<flow_id>")
@requires("call_flows:write")
async def update_flow(flow_id: str) -> Response:
    query(())
    flows = host().state.call_flows
    flow = find(flows, flow_id, "call flow")
    change = await body(CallFlowUpdate)
    entry = change.entry or flow.entry
    blocks = change.blocks if change.blocks is not None else flow.blocks
    _check_wiring(entry, blocks)
    updated = flow.model_copy(
        update={
            "name": change.name or flow.name,
            "entry": entry,
            "blocks": blocks,
            "updated_at": utcnow(),
        }
    )
    flows[flow_id] = updated
    return json_response(dump(updated))


@blueprint.delete("/call_flows/<flow_id>")
@requires("call_flows:write")
async def delete_flow(flow_id: str) -> Response:
    query(())
    state = host().state
    find(state.call_flows, flow_id, "call flow")
    for number in state.numbers.values():
        if number.call_flow_id == flow_id:
            raise SimApiError(
                409,
                "conflict",
                f"Call flow '{flow_id}' is attached to {number.number}; "
                "attach another flow to that number first.",
            )
    del state.call_flows[flow_id]
    return no_content()


def _check_wiring(entry: str, blocks: dict[str, Any]) -> None:
    """A 400 listing every entry or target that names no block."""
    problems = flow_problems(entry, blocks)
    if problems:
        raise SimApiError(400, "invalid_request", "; ".join(problems))
