"""docs/openapi.yaml is a valid OpenAPI 3.1 document, and the simulator answers as it says.

The simulator serves on loopback from a thread with its own event loop (schemathesis
tests are synchronous), and every request goes over real HTTP. Three layers:

- the document itself validates as OpenAPI 3.1;
- schemathesis sends generated requests, valid ones (positive) and invalid ones
  (negative, including its coverage phase), and checks every answer against the document;
- hand-written requests check a few key answers against the document's schemas
  with jsonschema, so that drift shows even if the schemathesis settings change.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import threading
import zlib
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
import yaml
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from agentkit.odygy.signing import verify
from agentkit.sim import Simulator
from agentkit.testing import fast_sim_config
from agentkit.testing.recorder import HttpRecorder

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "openapi.yaml"
DOC: dict[str, Any] = yaml.safe_load(DOC_PATH.read_text(encoding="utf-8"))
DOC_URI = "urn:agentkit:docs:openapi"
REGISTRY: Registry[Any] = Registry().with_resource(
    DOC_URI, Resource.from_contents(DOC, default_specification=DRAFT202012)
)
FORMATS = Draft202012Validator.FORMAT_CHECKER

# The simulator's seed data (agentkit.sim.state): a number the account owns.
OWNED_NUMBER = "+40264000111"
E164_PATTERN = re.compile(DOC["components"]["schemas"]["E164"]["pattern"])
# A destination libphonenumber accepts (Ofcom's drama range, see CONTRACT.md section 4).
DESTINATION = "+442079460000"

# Every generated answer must be one the document lists, with its headers, media type and body.
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]
# What invalid input may be answered with: the documented client errors, nothing else.
DOCUMENTED_4XX = ["400", "401", "403", "404", "409", "429"]


def _schemathesis_config(mode: str, *, max_examples: int) -> schemathesis.Config:
    """Small, derandomized runs: the whole module stays well under a minute."""
    return schemathesis.Config.from_dict(
        {
            "seed": 20260423,
            "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large"],
            "generation": {
                "mode": mode,
                "max-examples": max_examples,
                "deterministic": True,
                "database": "none",
                # The key is sent by the tests; 401s have a test of their own.
                "with-security-parameters": False,
            },
            "phases": {
                "examples": {"enabled": mode == "positive"},
                # The coverage phase walks each schema's boundaries and its invalid neighbours.
                "coverage": {"enabled": mode == "negative", "unexpected-methods": []},
                "fuzzing": {"enabled": True},
                "stateful": {"enabled": False},
            },
            "checks": {"negative_data_rejection": {"expected-statuses": DOCUMENTED_4XX}},
        }
    )


positive_schema = schemathesis.openapi.from_path(
    DOC_PATH, config=_schemathesis_config("positive", max_examples=12)
)
# Negative generation needs an input to break: a body or a query parameter.
WITH_INPUTS = [
    operation["operationId"]
    for item in DOC["paths"].values()
    for method, operation in item.items()
    if method != "parameters" and ("requestBody" in operation or "parameters" in operation)
]
negative_schema = schemathesis.openapi.from_path(
    DOC_PATH, config=_schemathesis_config("negative", max_examples=10)
).include(operation_id=WITH_INPUTS)


@dataclass
class LiveSim:
    """A simulator serving on loopback from a thread with its own event loop."""

    sim: Simulator
    loop: asyncio.AbstractEventLoop

    @property
    def base_url(self) -> str:
        return self.sim.base_url

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.sim.api_key}"}

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run ``coro`` on the simulator's loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=15)

    def forget_webhooks(self) -> None:
        """Drop the registered webhook endpoints, so that no delivery leaves the machine."""

        async def clear() -> None:
            self.sim.state.endpoints.clear()

        self.run(clear())

    def existing_ids(self) -> dict[str, list[str]]:
        """The ids the simulator holds, by kind; read on its own loop."""

        async def read() -> dict[str, list[str]]:
            state = self.sim.state
            return {
                "users": sorted(state.users),
                "numbers": sorted(state.numbers),
                "call_flows": sorted(state.call_flows),
                "calls": sorted(state.calls),
                "recordings": sorted(state.recordings),
                "transcripts": sorted(state.transcripts),
            }

        return self.run(read())  # type: ignore[no-any-return]

    def add_api_key(self, key: str, scopes: list[str]) -> None:
        async def add() -> None:
            self.sim.add_api_key(key, scopes)

        self.run(add())


@pytest.fixture(scope="module")
def live_sim() -> Iterator[LiveSim]:
    """A simulator for the module, without rate limits (generated traffic would collect 429s)."""
    config = fast_sim_config()
    config.limits.enabled = False
    sim = Simulator(config)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(sim.start())
        except BaseException as exc:
            failure.append(exc)
            started.set()
            return
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="openapi-simulator", daemon=True)
    thread.start()
    assert started.wait(15), "the simulator did not start within 15 s"
    if failure:
        thread.join(5)
        loop.close()
        raise failure[0]
    live = LiveSim(sim=sim, loop=loop)
    try:
        yield live
    finally:
        live.run(sim.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
        loop.close()


@pytest.fixture(scope="module")
def http(live_sim: LiveSim) -> Iterator[requests.Session]:
    """One keep-alive HTTP session for the module, closed before the simulator stops."""
    with requests.Session() as session:
        yield session


# Checking answers against the document by hand


def _validator(ref: str) -> Draft202012Validator:
    """A JSON Schema validator for the document's schema at ``ref`` (``#/components/...``)."""
    return Draft202012Validator(
        {"$ref": DOC_URI + ref},
        registry=REGISTRY,
        format_checker=FORMATS,
    )


def _resolve(ref: str) -> dict[str, Any]:
    node: Any = DOC
    for part in ref.removeprefix("#/").split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node  # type: ignore[no-any-return]


def assert_documented(response: requests.Response, method: str, path: str) -> Any:
    """Fail unless ``response`` is an answer the document lists for ``method path``.

    Checks the status (or its ``5XX`` range), every required header (integers
    parsed as such), the media type and the body's schema; returns the body.
    """
    responses = DOC["paths"][path][method.lower()]["responses"]
    status = str(response.status_code)
    key = status if status in responses else f"{status[0]}XX"
    assert key in responses, f"{method} {path} does not document {status}: {response.text}"
    documented = responses[key]
    if "$ref" in documented:
        documented = _resolve(documented["$ref"])
    for name, header in documented.get("headers", {}).items():
        header = _resolve(header["$ref"]) if "$ref" in header else header
        value = response.headers.get(name)
        if header.get("required"):
            assert value is not None, f"{method} {path} {status}: no {name} header"
        if value is not None:
            typed: Any = int(value) if header["schema"].get("type") == "integer" else value
            Draft202012Validator(header["schema"]).validate(typed)
    content = documented.get("content")
    if content is None:
        assert not response.content, f"{method} {path} {status} should have no body"
        return None
    assert response.headers["Content-Type"].split(";")[0] in content
    body = response.json()
    _validator(content["application/json"]["schema"]["$ref"]).validate(body)
    return body


def assert_error(
    response: requests.Response, method: str, path: str, status: int, code: str
) -> None:
    """Fail unless ``response`` is the documented error ``status`` with ``error.code`` ``code``."""
    assert response.status_code == status, response.text
    body = assert_documented(response, method, path)
    assert body["error"]["code"] == code
    assert body["error"]["request_id"] == response.headers["X-Request-Id"]


_unique = itertools.count(1)
JSON = {"Content-Type": "application/json"}


def new_user_body() -> dict[str, Any]:
    n = next(_unique)
    return {"name": f"Test User {n}", "email": f"user{n}@openapi.test", "extension": f"9{n:04d}"}


FLOW_BODY = DOC["paths"]["/call_flows"]["post"]["requestBody"]["content"]["application/json"][
    "example"
]


# The document


def test_document_is_valid_openapi_31() -> None:
    """docs/openapi.yaml validates as an OpenAPI 3.1 document."""
    assert DOC["openapi"].startswith("3.1")
    validate_openapi(DOC)


def test_every_operation_documents_its_scope_and_errors() -> None:
    """Every operation names its scope and documents 400, 401, 403, 429 and 5XX, and 404 on ids."""
    for path, item in DOC["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert operation["x-required-scope"], f"{method} {path}"
            assert operation["security"] == [{"bearerAuth": [operation["x-required-scope"]]}]
            expected = {"400", "401", "403", "429", "5XX"} | ({"404"} if "{id}" in path else set())
            assert expected <= set(operation["responses"]), f"{method} {path}"


# Hand-written requests


def test_created_call_is_a_call_record(live_sim: LiveSim, http: requests.Session) -> None:
    """POST /calls answers 201 with a Call record in status ringing, as GET /calls/{id} does."""
    response = http.post(
        f"{live_sim.base_url}/calls",
        json={"from": OWNED_NUMBER, "to": DESTINATION, "ai_features": ["summary"]},
        headers=live_sim.auth,
    )
    assert response.status_code == 201, response.text
    call = assert_documented(response, "POST", "/calls")
    assert call["status"] == "ringing"
    assert call["direction"] == "outbound"
    again = http.get(f"{live_sim.base_url}/calls/{call['id']}", headers=live_sim.auth)
    assert again.status_code == 200
    assert assert_documented(again, "GET", "/calls/{id}")["id"] == call["id"]


def test_recording_and_transcript_are_404_until_ready(
    live_sim: LiveSim, http: requests.Session
) -> None:
    """Recording and transcript answer 404 while the call runs, then their documented shapes."""
    timings = live_sim.sim.config.timings
    usual_ring = timings.ring

    async def set_ring(seconds: float) -> None:
        timings.ring = seconds

    # At the module's time scale a ring of 1000 simulated seconds lasts one real second:
    # ample time to see both answers before the call has even been answered.
    live_sim.run(set_ring(1000.0))
    try:
        created = http.post(
            f"{live_sim.base_url}/calls",
            json={"from": OWNED_NUMBER, "to": DESTINATION, "recording": True},
            headers=live_sim.auth,
        )
        assert created.status_code == 201, created.text
        call_id = created.json()["id"]
        for path in ("/calls/{id}/recording", "/calls/{id}/transcript"):
            early = http.get(live_sim.base_url + path.format(id=call_id), headers=live_sim.auth)
            assert_error(early, "GET", path, 404, "not_found")
    finally:
        live_sim.run(set_ring(usual_ring))

    live_sim.run(live_sim.sim.settle())  # the call ends, its recording and transcript are made

    recording = http.get(f"{live_sim.base_url}/calls/{call_id}/recording", headers=live_sim.auth)
    assert recording.status_code == 200, recording.text
    assert_documented(recording, "GET", "/calls/{id}/recording")
    transcript = http.get(f"{live_sim.base_url}/calls/{call_id}/transcript", headers=live_sim.auth)
    assert transcript.status_code == 200, transcript.text
    assert assert_documented(transcript, "GET", "/calls/{id}/transcript")["call_id"] == call_id
    ended = http.get(f"{live_sim.base_url}/calls/{call_id}", headers=live_sim.auth)
    assert assert_documented(ended, "GET", "/calls/{id}")["status"] == "completed"


def test_user_pages_follow_the_cursor(live_sim: LiveSim, http: requests.Session) -> None:
    """GET /users answers documented pages whose next_cursor leads through every user."""
    for _ in range(2):
        created = http.post(
            f"{live_sim.base_url}/users", json=new_user_body(), headers=live_sim.auth
        )
        assert created.status_code == 201, created.text
        assert_documented(created, "POST", "/users")
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 1}
    while True:
        response = http.get(f"{live_sim.base_url}/users", params=params, headers=live_sim.auth)
        assert response.status_code == 200, response.text
        page = assert_documented(response, "GET", "/users")
        seen += [user["id"] for user in page["data"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert len(seen) == len(set(seen)) >= 2


def test_missing_user_is_a_documented_404(live_sim: LiveSim, http: requests.Session) -> None:
    """GET /users/{id} of an unknown id answers 404 not_found with the error body and headers."""
    response = http.get(f"{live_sim.base_url}/users/usr_NOSUCHUSER", headers=live_sim.auth)
    assert_error(response, "GET", "/users/{id}", 404, "not_found")


def test_auth_scope_and_query_errors(live_sim: LiveSim, http: requests.Session) -> None:
    """No key is 401, a key without the scope 403, an unknown query parameter 400."""
    no_key = http.get(f"{live_sim.base_url}/account")
    assert_error(no_key, "GET", "/account", 401, "unauthorized")

    live_sim.add_api_key("ps_test_openapi_readonly", ["read:*"])
    read_only = {"Authorization": "Bearer ps_test_openapi_readonly"}
    account = http.get(f"{live_sim.base_url}/account", headers=read_only)
    assert account.status_code == 200, account.text
    assert_documented(account, "GET", "/account")
    forbidden = http.post(f"{live_sim.base_url}/users", json=new_user_body(), headers=read_only)
    assert_error(forbidden, "POST", "/users", 403, "forbidden")

    unknown = http.get(
        f"{live_sim.base_url}/users", params={"colour": "red"}, headers=live_sim.auth
    )
    assert_error(unknown, "GET", "/users", 400, "invalid_request")


def test_conflicts_are_documented_409s(live_sim: LiveSim, http: requests.Session) -> None:
    """A duplicate user email and deleting a flow a number still uses answer 409 conflict."""
    body = new_user_body()
    first = http.post(f"{live_sim.base_url}/users", json=body, headers=live_sim.auth)
    assert first.status_code == 201, first.text
    twin = {**new_user_body(), "email": body["email"]}
    again = http.post(f"{live_sim.base_url}/users", json=twin, headers=live_sim.auth)
    assert_error(again, "POST", "/users", 409, "conflict")

    flow = http.post(f"{live_sim.base_url}/call_flows", json=FLOW_BODY, headers=live_sim.auth)
    assert flow.status_code == 201, flow.text
    flow_id = assert_documented(flow, "POST", "/call_flows")["id"]
    numbers = http.get(f"{live_sim.base_url}/numbers", headers=live_sim.auth)
    number_id = assert_documented(numbers, "GET", "/numbers")["data"][0]["id"]
    attached = http.post(
        f"{live_sim.base_url}/numbers/{number_id}/attach",
        json={"call_flow_id": flow_id},
        headers=live_sim.auth,
    )
    assert attached.status_code == 200, attached.text
    assert assert_documented(attached, "POST", "/numbers/{id}/attach")["call_flow_id"] == flow_id
    in_use = http.delete(f"{live_sim.base_url}/call_flows/{flow_id}", headers=live_sim.auth)
    assert_error(in_use, "DELETE", "/call_flows/{id}", 409, "conflict")


def test_number_search_answers(live_sim: LiveSim, http: requests.Session) -> None:
    """POST /numbers/search answers documented offers, and 400 number_unavailable off-catalogue."""
    found = http.post(
        f"{live_sim.base_url}/numbers/search",
        json={"country": "RO", "type": "local", "features": ["voice"]},
        headers=live_sim.auth,
    )
    assert found.status_code == 200, found.text
    assert assert_documented(found, "POST", "/numbers/search")["data"]
    nowhere = http.post(
        f"{live_sim.base_url}/numbers/search", json={"country": "ZZ"}, headers=live_sim.auth
    )
    assert_error(nowhere, "POST", "/numbers/search", 400, "number_unavailable")


def test_webhook_creation_shows_the_secret(live_sim: LiveSim, http: requests.Session) -> None:
    """POST /webhooks answers 201 with the endpoint and its generated secret."""
    response = http.post(
        f"{live_sim.base_url}/webhooks",
        json={"url": "http://127.0.0.1:9/hooks", "events": ["call.completed"]},
        headers=live_sim.auth,
    )
    live_sim.forget_webhooks()
    assert response.status_code == 201, response.text
    assert assert_documented(response, "POST", "/webhooks")["secret"]


@pytest.fixture
def receiver(live_sim: LiveSim) -> Iterator[HttpRecorder]:
    """A webhook receiver on loopback, served from the simulator's loop."""
    recorder = HttpRecorder()
    live_sim.run(recorder.__aenter__())
    try:
        yield recorder
    finally:
        live_sim.run(recorder.__aexit__(None, None, None))


def test_webhook_deliveries_match_the_document(
    live_sim: LiveSim, http: requests.Session, receiver: HttpRecorder
) -> None:
    """Every event type arrives as the document's webhooks say, signed with each secret in use."""
    url = f"{receiver.url}/hooks"
    event_types = list(DOC["webhooks"])
    old_secret, new_secret = "whsec_openapi_old_0000", "whsec_openapi_new_1111"
    created = http.post(
        f"{live_sim.base_url}/webhooks",
        json={"url": url, "events": event_types, "secret": old_secret},
        headers=live_sim.auth,
    )
    assert created.status_code == 201, created.text
    webhook_id = assert_documented(created, "POST", "/webhooks")["id"]
    sim = live_sim.sim

    async def rotate_and_ring() -> None:
        sim.rotate_secret(webhook_id, new_secret)  # deliveries carry two v1= entries from now
        sim.leave_voicemail("+442079460111", words="Please call me back about my invoice.")
        sim.port_in("+442079460555", "GB")

    try:
        live_sim.run(rotate_and_ring())
        call = http.post(
            f"{live_sim.base_url}/calls",
            json={
                "from": OWNED_NUMBER,
                "to": DESTINATION,
                "recording": True,
                "ai_features": ["transcript", "summary"],
            },
            headers=live_sim.auth,
        )
        assert call.status_code == 201, call.text
        live_sim.run(sim.settle())
    finally:
        live_sim.forget_webhooks()

    signature = _resolve("#/components/parameters/OdygySignature")
    seen = set()
    for delivery in receiver.requests:
        body = delivery.body
        header = delivery.headers["odygy-signature"]
        Draft202012Validator(signature["schema"]).validate(header)
        assert header.count(",v1=") == 2
        verify(body, header, [old_secret])
        verify(body, header, [new_secret])
        event = json.loads(body)
        operation = DOC["webhooks"][event["type"]]["post"]
        _validator(
            operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        ).validate(event)
        seen.add(event["type"])
    assert seen == set(event_types)


def test_rate_limited_answer_has_retry_after(live_sim: LiveSim, http: requests.Session) -> None:
    """A 429 carries Retry-After and the rate-limit headers, with the rate_limited error body."""
    live_sim.sim.inject_fault("rate_limit", method="GET", path="/v1/account", retry_after=2)
    response = http.get(f"{live_sim.base_url}/account", headers=live_sim.auth)
    assert_error(response, "GET", "/account", 429, "rate_limited")
    assert response.headers["Retry-After"] == "2"


@pytest.mark.parametrize("value", ["0", "1776939165", "0.5"])
def test_time_filters_refuse_unix_seconds(
    live_sim: LiveSim, http: requests.Session, value: str
) -> None:
    """GET /calls refuses a started_after that is not an ISO 8601 date-time with 400."""
    response = http.get(
        f"{live_sim.base_url}/calls", params={"started_after": value}, headers=live_sim.auth
    )
    assert_error(response, "GET", "/calls", 400, "invalid_request")


def test_time_filters_take_iso_date_times(live_sim: LiveSim, http: requests.Session) -> None:
    """GET /calls takes ISO 8601 date-times with a zone and refuses one without."""
    with_zone = http.get(
        f"{live_sim.base_url}/calls",
        params={
            "started_after": "2026-04-23T10:12:45Z",
            "started_before": "2999-01-01T00:00:00+02:00",
        },
        headers=live_sim.auth,
    )
    assert with_zone.status_code == 200, with_zone.text
    assert_documented(with_zone, "GET", "/calls")
    no_zone = http.get(
        f"{live_sim.base_url}/calls",
        params={"started_after": "2026-04-23T10:12:45"},
        headers=live_sim.auth,
    )
    assert_error(no_zone, "GET", "/calls", 400, "invalid_request")


MALFORMED = [
    pytest.param("GET", "/users", {"params": {"limit": "0"}}, id="limit-0"),
    pytest.param("GET", "/users", {"params": {"limit": "101"}}, id="limit-101"),
    pytest.param("GET", "/users", {"params": {"limit": "ten"}}, id="limit-ten"),
    pytest.param(
        "GET",
        "/users",
        {"params": {"limit": "\u00b2"}},
        id="limit-superscript-two",
    ),
    pytest.param(
        "GET",
        "/users",
        {"params": {"limit": "\uff11"}},
        id="limit-fullwidth-one",
    ),
    pytest.param("GET", "/users", {"params": {"cursor": "not-a-cursor"}}, id="bad-cursor"),
    pytest.param("POST", "/users", {"data": b"[]", "headers": JSON}, id="body-not-object"),
    pytest.param("POST", "/users", {"data": b"\xff\xfe{", "headers": JSON}, id="body-not-json"),
    pytest.param(
        "POST",
        "/users",
        {"data": b"{}", "headers": {"Content-Type": "text/plain"}},
        id="body-not-declared-json",
    ),
    pytest.param(
        "POST", "/users", {"json": {**new_user_body(), "colour": "red"}}, id="unknown-field"
    ),
    pytest.param(
        "POST",
        "/users",
        {"data": b"[" * 5000 + b"]" * 5000, "headers": JSON},
        id="deeply-nested-body",
    ),
    pytest.param(
        "POST",
        "/users",
        {"json": {**new_user_body(), "email": "ivy@sandbox.example\n"}},
        id="email-trailing-newline",
    ),
]


@pytest.mark.parametrize(("method", "path", "request_kwargs"), MALFORMED)
def test_malformed_input_is_a_documented_400(
    live_sim: LiveSim,
    http: requests.Session,
    method: str,
    path: str,
    request_kwargs: dict[str, Any],
) -> None:
    """Malformed input is answered 400 invalid_request with the error body, never 2xx or 5xx."""
    kwargs = dict(request_kwargs)
    headers = {**live_sim.auth, **kwargs.pop("headers", {})}
    response = http.request(method, f"{live_sim.base_url}{path}", headers=headers, **kwargs)
    assert_error(response, method, path, 400, "invalid_request")


# An explicit null for an optional field that the document types as non-null.
NULL_FOR_OPTIONAL = [
    pytest.param("/users", {"caller_id_number": None}, id="users.caller_id_number"),
    pytest.param("/numbers/search", {"country": "RO", "type": None}, id="search.type"),
    pytest.param("/numbers/search", {"country": "RO", "prefix": None}, id="search.prefix"),
    pytest.param("/numbers/search", {"country": "RO", "features": None}, id="search.features"),
    pytest.param("/calls", {"user_id": None}, id="calls.user_id"),
    pytest.param("/calls", {"recording": None}, id="calls.recording"),
    pytest.param("/calls", {"ai_features": None}, id="calls.ai_features"),
    pytest.param("/webhooks", {"secret": None}, id="webhooks.secret"),
]
VALID_BODIES: dict[str, Any] = {
    "/users": new_user_body,
    "/numbers/search": lambda: {"country": "RO"},
    "/calls": lambda: {"from": OWNED_NUMBER, "to": DESTINATION},
    "/webhooks": lambda: {"url": "http://127.0.0.1:9/hooks", "events": ["call.completed"]},
}


@pytest.mark.parametrize(("path", "fields"), NULL_FOR_OPTIONAL)
def test_optional_fields_refuse_null(
    live_sim: LiveSim, http: requests.Session, path: str, fields: dict[str, Any]
) -> None:
    """An explicit null for an optional, non-nullable request field is refused with 400."""
    body = {**VALID_BODIES[path](), **fields}
    response = http.post(f"{live_sim.base_url}{path}", json=body, headers=live_sim.auth)
    live_sim.forget_webhooks()
    assert_error(response, "POST", path, 400, "invalid_request")


# Generated traffic


def aim_at_existing_resources(case: schemathesis.Case, live_sim: LiveSim) -> None:
    """Swap generated ids that fit the document for ids the simulator holds.

    Generated ids name nothing, so without this only 404s (and 400s for an
    unknown ``call_flow_id``, ``from`` or ``user_id``) would be seen. Values that
    break the document are left alone, so negative cases stay negative.
    """
    held = live_sim.existing_ids()
    seed = zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode())

    def pick(kind: str) -> str | None:
        ids = held[kind]
        return ids[seed % len(ids)] if ids else None

    path = case.operation.path
    generated_id = (case.path_parameters or {}).get("id")
    if isinstance(generated_id, str) and generated_id:
        if path.endswith("/recording"):
            kind = "recordings"
        elif path.endswith("/transcript"):
            kind = "transcripts"
        else:
            kind = path.split("/")[1]
        real_id = pick(kind)
        if real_id is not None:
            case.path_parameters = {**(case.path_parameters or {}), "id": real_id}
    body = case.body
    if not isinstance(body, dict):
        return
    if path == "/numbers/{id}/attach" and _fits(body.get("call_flow_id"), minimum=1):
        body["call_flow_id"] = pick("call_flows") or body["call_flow_id"]
    if path == "/calls":
        if _fits(body.get("from"), pattern=E164_PATTERN):
            body["from"] = OWNED_NUMBER
        if _fits(body.get("user_id"), minimum=1):
            body["user_id"] = pick("users") or body["user_id"]


def _fits(value: Any, *, minimum: int = 0, pattern: re.Pattern[str] | None = None) -> bool:
    if not isinstance(value, str) or len(value) < minimum:
        return False
    return pattern is None or pattern.fullmatch(value) is not None


@positive_schema.parametrize()
def test_simulator_conforms_to_document(
    case: schemathesis.Case, live_sim: LiveSim, http: requests.Session
) -> None:
    """Requests that fit the document get documented answers: statuses, headers and bodies."""
    aim_at_existing_resources(case, live_sim)
    response = case.call(base_url=live_sim.base_url, headers=live_sim.auth, session=http)
    if case.operation.path == "/webhooks":
        live_sim.forget_webhooks()
    case.validate_response(response, checks=CHECKS, headers=live_sim.auth)


@negative_schema.parametrize()
def test_simulator_refuses_invalid_input(
    case: schemathesis.Case, live_sim: LiveSim, http: requests.Session
) -> None:
    """Requests that break the document get a documented 4xx with the error body, never a 5xx."""
    aim_at_existing_resources(case, live_sim)
    response = case.call(base_url=live_sim.base_url, headers=live_sim.auth, session=http)
    if case.operation.path == "/webhooks":
        live_sim.forget_webhooks()
    checks = [*CHECKS, schemathesis.checks.negative_data_rejection]
    case.validate_response(response, checks=checks, headers=live_sim.auth)
