"""``/v1/numbers``."""

from __future__ import annotations

from quart import Blueprint, Response

from agentkit.odygy.models import NumberAttach, NumberSearch
from agentkit.sim.gate import SimApiError
from agentkit.sim.routes._base import (
    DEFAULT_PAGE,
    body,
    dump,
    find,
    host,
    json_response,
    page,
    query,
    requires,
)

blueprint = Blueprint("numbers", __name__, url_prefix="/v1")


@blueprint.get("/numbers")
@requires("read:*")
async def list_numbers() -> Response:
    return page(list(host().state.numbers.values()), query(("limit", "cursor")))


@blueprint.post("/numbers/search")
@requires("read:*")
async def search_numbers() -> Response:
    query(())
    search = await body(NumberSearch)
    state = host().state
    offered = [n for n in state.catalogue if n.country == search.country]
    if not offered:
        raise SimApiError(
            400,
            "number_unavailable",
            f"No numbers are available in {search.country}. "
            f"Available countries: {', '.join(sorted({n.country for n in state.catalogue}))}.",
        )
    owned = {n.number for n in state.numbers.values()}
    matches = [
        n
        for n in offered
        if n.number not in owned
        and (search.type is None or n.type == search.type)
        and (search.prefix is None or n.number[1:].startswith(search.prefix))
        and set(search.features or ()) <= set(n.features)
    ]
    return json_response({"data": [dump(n) for n in matches[:DEFAULT_PAGE]]})


@blueprint.post("/numbers/<number_id>/attach")
@requires("numbers:write")
async def attach_number(number_id: str) -> Response:
    query(())
    state = host().state
    number = find(state.numbers, number_id, "number")
    attach = await body(NumberAttach)
    if attach.call_flow_id not in state.call_flows:
        raise SimApiError(
            400, "invalid_request", f"'call_flow_id': no call flow '{attach.call_flow_id}'."
        )
    number.call_flow_id = attach.call_flow_id
    return json_response(dump(number))
