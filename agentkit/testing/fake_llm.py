"""A fake OpenAI-compatible model server on loopback, scripted by tests.

The real ``openai`` client talks to it over HTTP, so a test exercises the
request the framework really sends (messages, response_format) and its
retries and timeouts. With nothing scripted, it answers with the smallest
JSON that fits the requested schema::

    async with FakeLlm() as fake:
        fake.reply({"label": "billing", "confidence": 0.9, "reason": "asks about an invoice"})
        fake.fail_next(1)                       # one 500 first; the client retries
        client = LlmClient(fake.llm_config())
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from quart import Quart, Response, request

from agentkit.llm.client import LlmConfig
from agentkit.serving import EmbeddedServer

Answer = str | dict[str, Any]
Responder = Callable[[dict[str, Any]], Answer]


@dataclass(frozen=True)
class _Fail:
    status: int
    retry_after: float | None


@dataclass(frozen=True)
class _Hang:
    seconds: float


class FakeLlm:
    """Serves ``POST /v1/chat/completions`` and ``GET /v1/models``; records every request.

    ``usage`` fixes the tokens each answer reports, as (prompt, completion);
    by default they are estimated at 4 characters a token.
    """

    def __init__(
        self,
        *,
        model: str = "fake-model",
        usage: tuple[int, int] | None = None,
        responder: Responder | None = None,
        latency: float = 0.0,
    ) -> None:
        self.model = model
        self.latency = latency  # seconds added to every completion, as a real model takes
        self.usage = usage
        self.responder: Responder = responder or minimal_answer
        self.requests: list[dict[str, Any]] = []
        self._replies: deque[Answer | Responder] = deque()
        self._faults: deque[_Fail | _Hang] = deque()
        self._release = asyncio.Event()
        self._ids = itertools.count(1)
        self._server: EmbeddedServer | None = None
        self._app = self._build()

    def reply(self, *answers: Answer | Responder) -> None:
        """Queue answers: a string as is, a dict as JSON, a callable given the request body."""
        self._replies.extend(answers)

    def fail_next(self, times: int, status: int = 500, *, retry_after: float | None = 0.01) -> None:
        """Answer the next ``times`` requests with ``status``.

        ``retry_after`` (seconds, sent as ``retry-after-ms``) keeps the client's
        retries quick; None leaves the client to its own back-off.
        """
        self._faults.extend([_Fail(status, retry_after)] * times)

    def hang_next(self, times: int, seconds: float = 30.0) -> None:
        """Hold the next ``times`` requests for ``seconds`` (or until the server stops),
        then answer 504: longer than the client's timeout, they time out."""
        self._faults.extend([_Hang(seconds)] * times)

    @property
    def base_url(self) -> str:
        """What OPENAI_BASE_URL takes: ``http://127.0.0.1:<port>/v1``."""
        if self._server is None:
            raise RuntimeError("the fake model is not serving: use it with 'async with'")
        return self._server.url + "/v1"

    def llm_config(self, **overrides: Any) -> LlmConfig:
        """An LlmConfig pointed at this server, with short test timeouts."""
        values: dict[str, Any] = {
            "model": self.model, "base_url": self.base_url, "timeout": 5.0, "max_retries": 2,
        }
        values.update(overrides)
        return LlmConfig(**values)

    def messages(self, index: int = -1) -> list[dict[str, Any]]:
        """The chat messages of one recorded request (the last by default)."""
        messages: list[dict[str, Any]] = self.requests[index]["messages"]
        return messages

    def _build(self) -> Quart:
        app = Quart("agentkit.testing.fake_llm")

        @app.post("/v1/chat/completions")
        async def completions() -> Response:
            body = await request.get_json(force=True, silent=True)
            if not isinstance(body, dict):
                return _error(400, "the body must be a JSON object", "invalid_request_error")
            self.requests.append(body)
            if self.latency:
                await asyncio.sleep(self.latency)
            fault = self._faults.popleft() if self._faults else None
            if isinstance(fault, _Hang):
                try:
                    await asyncio.wait_for(self._release.wait(), fault.seconds)
                except TimeoutError:
                    pass
                return _error(504, "the fake model hung, as scripted", "timeout")
            if isinstance(fault, _Fail):
                headers = {}
                if fault.retry_after is not None:
                    headers["retry-after-ms"] = str(max(1, round(fault.retry_after * 1000)))
                return _error(fault.status, "scripted failure", "server_error", headers)
            return _json(self._completion(body))

        @app.get("/v1/models")
        async def models() -> Response:
            return _json({
                "object": "list",
                "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "fake"}],
            })

        return app

    def _completion(self, body: dict[str, Any]) -> dict[str, Any]:
        scripted = self._replies.popleft() if self._replies else self.responder
        answer = scripted(body) if callable(scripted) else scripted
        content = answer if isinstance(answer, str) else json.dumps(answer)
        if self.usage is not None:
            prompt_tokens, completion_tokens = self.usage
        else:
            prompt_chars = sum(len(str(m.get("content") or "")) for m in body.get("messages", []))
            prompt_tokens, completion_tokens = max(1, prompt_chars // 4), max(1, len(content) // 4)
        return {
            "id": f"chatcmpl-fake-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", self.model),
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "finish_reason": "stop",
                "logprobs": None,
            }],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    async def __aenter__(self) -> FakeLlm:
        self._release.clear()
        self._server = EmbeddedServer(self._app)
        await self._server.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._release.set()
        if self._server is not None:
            await self._server.stop()
            self._server = None


def minimal_answer(body: dict[str, Any]) -> Answer:
    """The smallest JSON instance of the requested json_schema ("ok" without one)."""
    response_format = body.get("response_format") or {}
    if response_format.get("type") != "json_schema":
        return "ok"
    schema = response_format.get("json_schema", {}).get("schema", {})
    return json.dumps(minimal_instance(schema, schema))


def minimal_instance(schema: Any, root: dict[str, Any]) -> Any:
    """Enums take their first value, strings "", numbers 0, booleans false, arrays [],
    objects every property, and a union with null is null."""
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        node: Any = root
        for part in str(schema["$ref"]).removeprefix("#/").split("/"):
            node = node[part]
        return minimal_instance(node, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    variants = schema.get("anyOf") or schema.get("oneOf")
    if variants:
        if any(isinstance(v, dict) and v.get("type") == "null" for v in variants):
            return None
        return minimal_instance(variants[0], root)
    kind = schema.get("type")
    if isinstance(kind, list):
        if "null" in kind:
            return None
        kind = kind[0] if kind else None
    if kind == "object" or "properties" in schema:
        return {k: minimal_instance(v, root) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return [minimal_instance(schema.get("items", {}), root)] * schema.get("minItems", 0)
    if kind == "string":
        return "x" * schema.get("minLength", 0)
    if kind in ("integer", "number"):
        return schema.get("minimum", 0)
    if kind == "boolean":
        return False
    return None


def _json(payload: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def _error(status: int, message: str, kind: str, headers: dict[str, str] | None = None) -> Response:
    payload = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    response = _json(payload, status)
    response.headers.update(headers or {})
    return response
