"""``/v1/webhooks``."""

from __future__ import annotations

import re
import secrets

from quart import Blueprint, Response

from agentkit.odygy.models import WebhookCreate, WebhookEndpoint
from agentkit.sim.gate import SimApiError
from agentkit.sim.routes._base import body, dump, host, json_response, query, requires
from agentkit.sim.state import Endpoint, utcnow

blueprint = Blueprint("webhooks", __name__, url_prefix="/v1")

_LOOPBACK_URL = re.compile(r"^http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]{1,5})?(/\S*)?\Z")


@blueprint.post("/webhooks")
@requires("webhooks:write")
async def create_webhook() -> Response:
    query(())
    new = await body(WebhookCreate)
    if not new.url.startswith("https://") and _LOOPBACK_URL.match(new.url) is None:
        raise SimApiError(
            400,
            "invalid_request",
            "'url': must be an https:// URL (http:// is accepted only for loopback hosts).",
        )
    secret = new.secret or f"whsec_{secrets.token_hex(24)}"
    state = host().state
    info = WebhookEndpoint(
        id=state.ids.new("whk"),
        url=new.url,
        events=list(dict.fromkeys(new.events)),
        created_at=utcnow(),
    )
    state.endpoints[info.id] = Endpoint(info=info, secrets=[secret])
    return json_response({**dump(info), "secret": secret}, 201)
