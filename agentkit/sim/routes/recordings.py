"""``/v1/calls/<id>/recording``: signed, expiring links, and the downloads they allow."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from quart import Blueprint, Response, request

from agentkit.sim.gate import SimApiError
from agentkit.sim.routes._base import find, host, json_response, query, requires
from agentkit.sim.state import utcnow

blueprint = Blueprint("recordings", __name__)

RECORDING_TTL = timedelta(minutes=15)
# A valid MPEG-1 Layer III frame header followed by silence.
_SILENCE = b"\xff\xfb\x90\x64" + bytes(413)


@blueprint.get("/v1/calls/<call_id>/recording")
@requires("recordings:read")
async def get_recording(call_id: str) -> Response:
    query(())
    sim = host()
    call = find(sim.state.calls, call_id, "call")
    if call_id not in sim.state.recordings:
        reason = "was not recorded" if not call.recording else "has no recording ready yet"
        raise SimApiError(404, "not_found", f"Call '{call_id}' {reason}.")
    expires = int((utcnow() + RECORDING_TTL).timestamp())
    token = _token(sim.recording_key, call_id, expires)
    base = request.host_url.rstrip("/")
    url = f"{base}/recordings/{call_id}.mp3?expires={expires}&sig={token}"
    return json_response({"url": url, "expires_at": _stamp_unix(expires)})


@blueprint.get("/recordings/<call_id>.mp3")
async def download_recording(call_id: str) -> Response:
    sim = host()
    expires = request.args.get("expires", "")
    token = request.args.get("sig", "")
    valid = expires.isdigit() and hmac.compare_digest(
        token, _token(sim.recording_key, call_id, int(expires))
    )
    if not valid or int(expires) < utcnow().timestamp() or call_id not in sim.state.recordings:
        raise SimApiError(403, "forbidden", "The recording link is invalid or has expired.")
    return Response(_SILENCE, mimetype="audio/mpeg")


def _token(key: bytes, call_id: str, expires: int) -> str:
    return hmac.new(key, f"{call_id}:{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def _stamp_unix(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
