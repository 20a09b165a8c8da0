"""Bad input to the simulated API gets the documented 4xx with an error body, never a 5xx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from structlog.testing import capture_logs

from agentkit.sim import Simulator


@pytest.fixture
async def http(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {sim.api_key}"}
    async with httpx.AsyncClient(base_url=sim.base_url, headers=headers) as client:
        yield client


def error_of(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert error["request_id"].startswith("req_")
    assert error["request_id"] == response.headers["x-request-id"]
    return error


USER = {"name": "Ivy Two", "email": "ivy2@example.com", "extension": "5001"}
CALL = {"from": "+40264000111", "to": "+442079460000"}


async def test_unknown_field_refused(http: httpx.AsyncClient) -> None:
    """An unknown field in a body is a 400 that names the field."""
    error = error_of(await http.post("/users", json={**USER, "nickname": "ivy"}), 400,
                     "invalid_request")
    assert "nickname" in error["message"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/users", {**USER, "extension": 5001}, "extension"),
        ("/users", {**USER, "role": "boss"}, "role"),
        ("/users", {**USER, "email": "not-an-email"}, "email"),
        ("/calls", {**CALL, "recording": "yes"}, "recording"),
        ("/calls", {**CALL, "ai_features": ["mood"]}, "ai_features"),
        ("/numbers/search", {"country": "Romania"}, "country"),
        ("/webhooks", {"url": "https://example.com/h", "events": ["call.exploded"]}, "events"),
    ],
)
async def test_wrong_type_or_value_refused(
    http: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    """A mistyped or out-of-range value is a 400 that names the field."""
    error = error_of(await http.post(path, json=body), 400, "invalid_request")
    assert field in error["message"]


@pytest.mark.parametrize("number", ["0040264000111", "+40 264 000 111", "40264000111", "+0123",
                                   "+4026400011122233344", "+1-900-555-0100"])
async def test_non_e164_number_refused(http: httpx.AsyncClient, number: str) -> None:
    """A destination not in E.164 form is a 400 that names the field."""
    error = error_of(await http.post("/calls", json={**CALL, "to": number}), 400,
                     "invalid_request")
    assert "'to'" in error["message"]


async def test_any_e164_number_accepted(http: httpx.AsyncClient) -> None:
    """The reference's own example destination, a reserved drama number, is accepted."""
    response = await http.post("/calls", json={**CALL, "to": "+441632960000"})
    assert response.status_code == 201


async def test_missing_required_field_refused(http: httpx.AsyncClient) -> None:
    """A missing required field is a 400 that names it."""
    error = error_of(await http.post("/calls", json={"from": CALL["from"]}), 400,
                     "invalid_request")
    assert "'to' is required" in error["message"]


async def test_from_must_be_an_owned_number(http: httpx.AsyncClient) -> None:
    """Calling from a number the account does not own is a 400."""
    error = error_of(await http.post("/calls", json={**CALL, "from": "+442079460999"}), 400,
                     "invalid_request")
    assert "owns" in error["message"]


async def test_invalid_json_refused(http: httpx.AsyncClient) -> None:
    """A body that is not JSON is a 400."""
    response = await http.post(
        "/users", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    error_of(response, 400, "invalid_request")


async def test_json_array_body_refused(http: httpx.AsyncClient) -> None:
    """A JSON body that is not an object is a 400."""
    error_of(await http.post("/users", json=[USER]), 400, "invalid_request")


async def test_wrong_content_type_refused(http: httpx.AsyncClient) -> None:
    """A body sent as form data is a 400."""
    error_of(await http.post("/users", data=USER), 400, "invalid_request")


async def test_oversized_body_refused(http: httpx.AsyncClient) -> None:
    """A body over the size limit is a 413 with an error body."""
    big = {**USER, "name": "x" * (1024 * 1024 + 10)}
    error_of(await http.post("/users", json=big), 413, "invalid_request")


async def test_no_key_is_401(sim: Simulator) -> None:
    """A request without a key is a 401."""
    async with httpx.AsyncClient(base_url=sim.base_url) as http:
        error_of(await http.get("/users"), 401, "unauthorized")


@pytest.mark.parametrize("header", ["Bearer ps_live_wrong", "Basic abc", "Bearer", "ps_test_x"])
async def test_wrong_key_is_401(sim: Simulator, header: str) -> None:
    """A wrong key, or a key not sent as Bearer, is a 401."""
    async with httpx.AsyncClient(base_url=sim.base_url,
                                 headers={"Authorization": header}) as http:
        error_of(await http.get("/account"), 401, "unauthorized")


@pytest.mark.parametrize(
    ("method", "path", "body", "scope"),
    [
        ("POST", "/calls", CALL, "calls:write"),
        ("POST", "/webhooks", {"url": "https://x.example/h", "events": ["call.completed"]},
         "webhooks:write"),
        ("POST", "/users", USER, "users:write"),
    ],
)
async def test_missing_scope_is_403(
    sim: Simulator, method: str, path: str, body: dict[str, Any], scope: str
) -> None:
    """A read-only key may read but not write: a 403 naming the scope it lacks."""
    sim.add_api_key("ps_test_readonly", ["read:*"])
    async with httpx.AsyncClient(
        base_url=sim.base_url, headers={"Authorization": "Bearer ps_test_readonly"}
    ) as http:
        assert (await http.get("/users")).status_code == 200
        error = error_of(await http.request(method, path, json=body), 403, "forbidden")
        assert scope in error["message"]


async def test_transcript_needs_recordings_scope(sim: Simulator) -> None:
    """A key without recordings:read cannot fetch transcripts or recordings."""
    sim.add_api_key("ps_test_readonly", ["read:*"])
    placed = sim.leave_voicemail("+442079460000", words="Call me.")
    await sim.settle()
    async with httpx.AsyncClient(
        base_url=sim.base_url, headers={"Authorization": "Bearer ps_test_readonly"}
    ) as http:
        error_of(await http.get(f"/calls/{placed.call_id}/transcript"), 403, "forbidden")
        error_of(await http.get(f"/calls/{placed.call_id}/recording"), 403, "forbidden")


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "1.5"])
async def test_bad_limit_refused(http: httpx.AsyncClient, limit: str) -> None:
    """A page size outside 1 to 100 is a 400."""
    error = error_of(await http.get("/users", params={"limit": limit}), 400, "invalid_request")
    assert "limit" in error["message"]


async def test_bad_cursor_refused(http: httpx.AsyncClient) -> None:
    """A cursor the API did not issue is a 400."""
    error_of(await http.get("/users", params={"cursor": "!!nonsense"}), 400, "invalid_request")


async def test_unknown_query_parameter_refused(http: httpx.AsyncClient) -> None:
    """An unknown query parameter is a 400 that names it."""
    error = error_of(await http.get("/users", params={"sort": "name"}), 400, "invalid_request")
    assert "sort" in error["message"]


@pytest.mark.parametrize(
    "path",
    ["/users/usr_nope", "/call_flows/cfl_nope", "/calls/cal_nope", "/calls/cal_nope/transcript",
     "/calls/cal_nope/recording", "/no/such/endpoint"],
)
async def test_unknown_id_is_404(http: httpx.AsyncClient, path: str) -> None:
    """An id that names nothing is a 404."""
    error_of(await http.get(path), 404, "not_found")


async def test_unknown_number_attach_is_404(http: httpx.AsyncClient) -> None:
    """Attaching an unknown number is a 404."""
    response = await http.post("/numbers/num_nope/attach", json={"call_flow_id": "cfl_x"})
    error_of(response, 404, "not_found")


async def test_method_not_allowed_is_405(http: httpx.AsyncClient) -> None:
    """A method a path does not take is a 405 with an error body."""
    error_of(await http.put("/users"), 405, "invalid_request")


async def test_duplicate_email_is_409(http: httpx.AsyncClient) -> None:
    """A second user with the same email (in any case) is a 409."""
    assert (await http.post("/users", json=USER)).status_code == 201
    other = {**USER, "email": USER["email"].upper(), "extension": "5002"}
    error_of(await http.post("/users", json=other), 409, "conflict")


async def test_duplicate_extension_is_409(http: httpx.AsyncClient) -> None:
    """A second user with the same extension is a 409, on create and on update."""
    first = (await http.post("/users", json=USER)).json()
    second = (await http.post("/users", json={**USER, "email": "b@example.com",
                                              "extension": "5002"})).json()
    error_of(await http.post("/users", json={**USER, "email": "c@example.com"}), 409,
             "conflict")
    error_of(await http.patch(f"/users/{second['id']}", json={"extension": first["extension"]}),
             409, "conflict")


async def test_flow_with_dangling_target_refused(http: httpx.AsyncClient) -> None:
    """A call flow whose entry or targets name no block is a 400 naming the target."""
    flow = {
        "name": "Broken",
        "entry": "start",
        "blocks": {"start": {"type": "greeting", "audio_url": "https://a.example/x.mp3",
                             "next": "nowhere"}},
    }
    error = error_of(await http.post("/call_flows", json=flow), 400, "invalid_request")
    assert "nowhere" in error["message"]


async def test_unknown_block_field_refused(http: httpx.AsyncClient) -> None:
    """An unknown field inside a block is a 400."""
    flow = {
        "name": "Odd",
        "entry": "q",
        "blocks": {"q": {"type": "queue", "queue_id": "que_1", "priority": 3}},
    }
    error = error_of(await http.post("/call_flows", json=flow), 400, "invalid_request")
    assert "priority" in error["message"]


async def test_deleting_an_attached_flow_is_409(http: httpx.AsyncClient, sim: Simulator) -> None:
    """A flow a number is attached to cannot be deleted."""
    number = next(n for n in sim.state.numbers.values() if n.call_flow_id)
    error_of(await http.delete(f"/call_flows/{number.call_flow_id}"), 409, "conflict")


async def test_search_in_uncovered_country(http: httpx.AsyncClient) -> None:
    """Searching a country with no numbers on offer is a 400 number_unavailable."""
    error_of(await http.post("/numbers/search", json={"country": "ZZ"}), 400,
             "number_unavailable")


async def test_plain_http_webhook_refused_off_loopback(http: httpx.AsyncClient) -> None:
    """A webhook URL must be https, except on loopback."""
    body = {"url": "http://example.com/hook", "events": ["call.completed"]}
    error_of(await http.post("/webhooks", json=body), 400, "invalid_request")
    loopback = {"url": "http://127.0.0.1:9/hook", "events": ["call.completed"]}
    assert (await http.post("/webhooks", json=loopback)).status_code == 201


async def test_crash_is_500_and_logged(
    http: httpx.AsyncClient, sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure inside the simulator is a 500 with an error body, logged with its route."""

    def broken(call: object) -> None:
        raise RuntimeError("engine down")

    monkeypatch.setattr(sim.engine, "place_outbound", broken)
    with capture_logs() as logs:
        error_of(await http.post("/calls", json=CALL), 500, "internal_error")
    failed = [e for e in logs if e["event"] == "sim.request_failed"]
    assert [(e["log_level"], e["method"], e["path"]) for e in failed] == [
        ("error", "POST", "/v1/calls")
    ]
