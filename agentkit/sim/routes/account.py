"""``/v1/account``."""

from __future__ import annotations

from quart import Blueprint, Response

from agentkit.sim.routes._base import dump, host, json_response, query, requires

blueprint = Blueprint("account", __name__, url_prefix="/v1")


@blueprint.get("/account")
@requires("read:*")
async def get_account() -> Response:
    query(())
    return json_response(dump(host().state.account))
