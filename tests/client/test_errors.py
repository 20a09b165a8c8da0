"""The client's error tree: one class per status, each with status, code, message, request_id."""

from __future__ import annotations

import pytest
import structlog

from agentkit import (
    ApiError,
    ApiStatusError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    OdygyClient,
    PermissionDeniedError,
    RateLimitError,
    RequestValidationError,
    RetryPolicy,
)
from agentkit.sim import Simulator

NO_RETRY = RetryPolicy(max_retries=0)


def check(exc: ApiError, status: int, code: str) -> None:
    assert isinstance(exc, ApiStatusError)
    assert exc.status == status
    assert exc.code == code
    assert exc.message
    assert exc.request_id and exc.request_id.startswith("req_")


async def test_400(odygy: OdygyClient) -> None:
    """A request the API refuses raises BadRequestError."""
    with pytest.raises(BadRequestError) as caught:
        await odygy.calls.create(from_="+442079460999", to="+442079460000")
    check(caught.value, 400, "invalid_request")
    assert "owns" in caught.value.message


async def test_401(sim: Simulator) -> None:
    """A wrong key raises AuthenticationError, and is not retried."""
    async with OdygyClient(api_key="ps_live_wrong", base_url=sim.base_url) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.account.retrieve()
        assert client.stats.requests == 1
    check(caught.value, 401, "unauthorized")


async def test_403(sim: Simulator) -> None:
    """A key without the scope raises PermissionDeniedError."""
    sim.add_api_key("ps_test_readonly", ["read:*"])
    async with OdygyClient(api_key="ps_test_readonly", base_url=sim.base_url) as client:
        with pytest.raises(PermissionDeniedError) as caught:
            await client.calls.create(from_="+40264000111", to="+442079460000")
    check(caught.value, 403, "forbidden")
    assert sim.calls() == []


async def test_404(odygy: OdygyClient) -> None:
    """An unknown id raises NotFoundError."""
    with pytest.raises(NotFoundError) as caught:
        await odygy.users.retrieve("usr_does_not_exist")
    check(caught.value, 404, "not_found")


async def test_409(odygy: OdygyClient) -> None:
    """A duplicate email raises ConflictError."""
    await odygy.users.create(name="A", email="a@acme.example", extension="8001")
    with pytest.raises(ConflictError) as caught:
        await odygy.users.create(name="B", email="a@acme.example", extension="8002")
    check(caught.value, 409, "conflict")


async def test_429_after_retries(sim: Simulator) -> None:
    """A 429 that outlasts the retries raises RateLimitError with retry_after."""
    sim.inject_fault("rate_limit", path="/v1/account", retry_after=2)
    async with OdygyClient(api_key=sim.api_key, base_url=sim.base_url, retry=NO_RETRY) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.account.retrieve()
    check(caught.value, 429, "rate_limited")
    assert caught.value.retry_after == 2


async def test_5xx_after_retries(sim: Simulator) -> None:
    """A 5xx that outlasts the retries raises InternalServerError."""
    sim.inject_fault("error", path="/v1/account", status=503)
    async with OdygyClient(api_key=sim.api_key, base_url=sim.base_url, retry=NO_RETRY) as client:
        with pytest.raises(InternalServerError) as caught:
            await client.account.retrieve()
    check(caught.value, 503, "internal_error")


def test_every_error_is_an_agentkit_error() -> None:
    """All API errors share one root with the rest of agentkit."""
    from agentkit import AgentkitError

    for cls in (BadRequestError, AuthenticationError, PermissionDeniedError, NotFoundError,
                ConflictError, RateLimitError, InternalServerError, RequestValidationError):
        assert issubclass(cls, AgentkitError)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"from_": "+40264000111", "to": "0740 123 456"}, "to"),
        ({"from_": "40264000111", "to": "+442079460000"}, "from"),
        ({"from_": "+40264000111", "to": "+442079460000", "ai_features": ["mood"]},
         "ai_features"),
    ],
)
async def test_invalid_call_refused_before_sending(
    odygy: OdygyClient, sim: Simulator, kwargs: dict[str, object], field: str
) -> None:
    """A call with a malformed number or value is refused without a request."""
    with pytest.raises(RequestValidationError, match=field):
        await odygy.calls.create(**kwargs)  # type: ignore[arg-type]
    assert odygy.stats.requests == 0
    assert sim.calls() == []


async def test_invalid_user_refused_before_sending(odygy: OdygyClient) -> None:
    """A user with a bad extension is refused without a request."""
    with pytest.raises(RequestValidationError, match="extension"):
        await odygy.users.create(name="A", email="a@acme.example", extension="12")
    assert odygy.stats.requests == 0


async def test_flow_with_dangling_target_refused_before_sending(odygy: OdygyClient) -> None:
    """A flow whose targets name no block is refused without a request."""
    blocks = {"a": {"type": "greeting", "audio_url": "https://x.example/a.mp3", "next": "b"}}
    with pytest.raises(RequestValidationError, match="'b'"):
        await odygy.call_flows.create(name="x", entry="a", blocks=blocks)
    assert odygy.stats.requests == 0


async def test_bad_page_size_refused(odygy: OdygyClient) -> None:
    """A page size outside 1 to 100 is refused before sending."""
    for limit in (0, 101):
        with pytest.raises(RequestValidationError, match="limit"):
            odygy.users.list(limit=limit)


async def test_ids_are_path_safe(odygy: OdygyClient, sim: Simulator) -> None:
    """An id with slashes or dots stays one path segment and cannot reach another resource."""
    with pytest.raises(NotFoundError):
        await odygy.users.retrieve("../account")
    with pytest.raises(RequestValidationError):
        await odygy.users.retrieve("")


async def test_api_key_never_shown(sim: Simulator) -> None:
    """The API key appears in no repr, exception message or log line."""
    key = "ps_live_supersecret_0123456789"
    sim.add_api_key(key, ["read:*"])
    with structlog.testing.capture_logs() as logs:
        async with OdygyClient(api_key=key, base_url=sim.base_url,
                               retry=RetryPolicy(max_retries=1, backoff_base=0.01)) as client:
            assert key not in repr(client)
            with pytest.raises(PermissionDeniedError) as denied:
                await client.calls.create(from_="+40264000111", to="+442079460000")
            sim.inject_fault("error", path="/v1/account")
            await client.account.retrieve()
        async with OdygyClient(api_key=key + "x", base_url=sim.base_url) as wrong:
            with pytest.raises(AuthenticationError) as refused:
                await wrong.account.retrieve()
    assert any(entry["event"] == "odygy.retry" for entry in logs)
    for text in (str(denied.value), repr(denied.value), str(refused.value), repr(refused.value),
                 repr(logs)):
        assert key not in text
