"""One OpenAI-compatible chat client: JSON answers to a schema, with retries, timeouts and a cache.

Works with OpenAI and with any server that speaks Chat Completions with a
``json_schema`` response format (vLLM, Ollama, llama.cpp). Retries and
timeouts are the openai package's own; this module turns its errors into
agentkit's and keeps valid answers in the store for reuse. Payment data in an
answer (a model repeating a card number) is masked as soon as the answer
arrives, so it is never validated, cached, logged or returned unmasked.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import openai
from openai.types.chat import ChatCompletion
from openai.types.shared_params import ResponseFormatJSONSchema

from agentkit.llm.errors import LlmError, LlmRequestError, LlmUnavailable
from agentkit.llm.usage import DEFAULT_PRICES, cost_of
from agentkit.logs import get_logger
from agentkit.redact import mask_json_answer, mask_payment_data
from agentkit.store.base import CachedAnswer, Store, StoreError

if TYPE_CHECKING:
    from agentkit.settings import Settings

log = get_logger("agentkit.llm")

OPENAI_BASE_URL = "https://api.openai.com/v1"
# Local servers need no key, but the openai package refuses to start without one.
LOCAL_SERVER_KEY = "agentkit-no-key"
# Reasoning models refuse any temperature but their default.
_NO_TEMPERATURE = ("o1", "o3", "o4", "gpt-5")
CACHE_VERSION = 1

Message = Mapping[str, str]


@dataclass(frozen=True)
class LlmConfig:
    """Which model to ask, where, and how patiently; ``prices`` in USD per million tokens."""

    model: str
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None
    timeout: float = 30.0
    max_retries: int = 2
    max_input_tokens: int = 12000
    prices: Mapping[str, tuple[float, float]] = field(default_factory=lambda: DEFAULT_PRICES)

    @property
    def enabled(self) -> bool:
        """Whether a model is configured at all (an API key or a server URL)."""
        return bool(self.api_key or self.base_url)

    @property
    def server(self) -> str:
        return self.base_url or OPENAI_BASE_URL

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> LlmConfig:
        """The config the environment asks for (AGENTKIT_MODEL, OPENAI_API_KEY, OPENAI_BASE_URL)."""
        values: dict[str, Any] = {
            "model": settings.model,
            "api_key": str(settings.openai_api_key) if settings.openai_api_key else None,
            "base_url": settings.openai_base_url,
        }
        values.update(overrides)
        return cls(**values)

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        return cost_of(model, prompt_tokens, completion_tokens, self.prices)


@dataclass(frozen=True)
class Completion:
    """One answer: its text, what it cost in tokens, and whether the cache gave it.

    ``key`` identifies the question for the cache; ``refusal`` is the model's
    reason when it declined to answer.
    """

    content: str
    prompt_tokens: int
    completion_tokens: int
    cached: bool
    model: str
    key: str
    refusal: str | None = None


class LlmMetrics(Protocol):
    """What the model layer reports, when given somewhere to report it (``agentkit.metrics``)."""

    def llm_call(self, *, task: str, outcome: str) -> None:
        """Count one answer: ok, cached, invalid (did not fit), or error (none came)."""

    def llm_tokens_used(
        self, *, model: str, prompt_tokens: int, completion_tokens: int, cost_usd: float
    ) -> None:
        """Add one answer's tokens and cost."""

    def llm_fallback(self, *, reason: str) -> None:
        """Count one handler going on without the model's answer."""


def cache_key(
    model: str, messages: Sequence[Message], schema_name: str, schema: Mapping[str, Any]
) -> str:
    """sha256 of the canonical JSON of everything that shapes the answer."""
    canonical = json.dumps(
        {
            "v": CACHE_VERSION,
            "model": model,
            "messages": [dict(m) for m in messages],
            "schema_name": schema_name,
            "schema": schema,
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


class LlmClient:
    """Asks one model server for JSON answers; keeps valid answers in ``cache`` when given.

    The cache is written only through ``remember``, which the caller invokes
    once it has validated the answer, so an invalid answer is never reused.
    ``metrics`` (a process's ``Metrics``) is where the tasks on this client count
    their calls, tokens, cost and fallbacks. ``keep=False`` reads the cache and never
    writes to it (a stand-in model's answers must not pass for the real one's).
    """

    def __init__(
        self, config: LlmConfig, cache: Store | None = None, *, metrics: LlmMetrics | None = None,
        keep: bool = True,
    ) -> None:
        self.config = config
        self._cache = cache
        self._keep = keep
        self.metrics = metrics
        self._openai: openai.AsyncOpenAI | None = None
        if config.enabled:
            self._openai = openai.AsyncOpenAI(
                api_key=config.api_key or LOCAL_SERVER_KEY,
                base_url=config.server,
                timeout=config.timeout,
                max_retries=config.max_retries,
            )

    @property
    def enabled(self) -> bool:
        return self._openai is not None

    def unavailable(self) -> LlmUnavailable:
        """The error for a call made with no model configured."""
        return no_model()

    async def complete_json(
        self,
        *,
        model: str,
        messages: Sequence[Message],
        schema_name: str,
        schema: Mapping[str, Any],
    ) -> Completion:
        """Ask for an answer fitting ``schema``; the cache answers first, at no cost.

        Payment data in the answer is masked (``mask_json_answer``), cached or not.
        Raises LlmUnavailable (no model, or it failed after its retries) or
        LlmRequestError (the server refused the request itself).
        """
        if self._openai is None:
            raise self.unavailable()
        key = cache_key(model, messages, schema_name, schema)
        hit = await self._cached(key)
        if hit is not None:
            # A row kept before answers were masked must not leak either.
            answer = mask_json_answer(hit.answer)
            return Completion(answer, 0, 0, cached=True, model=model, key=key)
        response_format: ResponseFormatJSONSchema = {
            "type": "json_schema",
            "json_schema": {"name": schema_name, "schema": dict(schema), "strict": True},
        }
        body: dict[str, Any] = {"model": model, "messages": [dict(m) for m in messages],
                                "response_format": response_format}
        if not model.startswith(_NO_TEMPERATURE):
            body["temperature"] = 0
        try:
            # The client's own POST, documented for requests it has no method for: the
            # body is plain JSON already, so create()'s walk over its typed parameters
            # (a tenth of a voicemail's CPU) would change nothing.
            response = await self._openai.post("/chat/completions", body=body,
                                               cast_to=ChatCompletion)
        except openai.OpenAIError as exc:
            raise self._failure(exc, model) from exc
        usage = response.usage
        content, refusal = "", None
        if response.choices:
            message = response.choices[0].message
            content = mask_json_answer(message.content or "")
            refusal = mask_payment_data(message.refusal) if message.refusal else None
        return Completion(
            content=content,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            cached=False,
            model=model,
            key=key,
            refusal=refusal,
        )

    async def remember(self, key: str, completion: Completion) -> None:
        """Keep a validated answer (payment data masked) under ``key``; a failing store only
        costs the reuse."""
        if self._cache is None or not self._keep or (completion.cached and completion.key == key):
            return
        answer = CachedAnswer(
            key, completion.model, mask_json_answer(completion.content),
            completion.prompt_tokens, completion.completion_tokens,
        )
        try:
            await self._cache.cache_answer(answer)
        except StoreError as exc:
            log.warning("llm.cache_write_failed", error=str(exc))

    async def _cached(self, key: str) -> CachedAnswer | None:
        if self._cache is None:
            return None
        try:
            return await self._cache.cached_answer(key)
        except StoreError as exc:
            log.warning("llm.cache_read_failed", error=str(exc))
            return None

    def _failure(self, exc: openai.OpenAIError, model: str) -> LlmError:
        server, retries = self.config.server, self.config.max_retries
        if isinstance(exc, openai.APITimeoutError):
            return LlmUnavailable(
                f"the model server at {server} did not answer within {self.config.timeout:g} s "
                f"({retries} retries): try again later, or raise the timeout"
            )
        if isinstance(exc, openai.APIConnectionError):
            return LlmUnavailable(
                f"cannot reach the model server at {server} ({retries} retries): "
                "check OPENAI_BASE_URL and that the server is running"
            )
        if not isinstance(exc, openai.APIStatusError):
            return LlmUnavailable(f"the model call failed ({type(exc).__name__}): try again later")
        status = exc.status_code
        detail = _detail(exc)
        if status in (401, 403):
            return LlmUnavailable(
                f"the model server at {server} refused the credentials ({status}{detail}): "
                "check OPENAI_API_KEY",
                status=status,
            )
        if status == 404:
            return LlmUnavailable(
                f"the model server at {server} has no model {model!r} ({status}{detail}): "
                "check AGENTKIT_MODEL, and that OPENAI_BASE_URL ends in /v1",
                status=status,
            )
        if status == 429:
            return LlmUnavailable(
                f"the model server at {server} is rate-limiting ({status}) after {retries} "
                "retries: try again later",
                status=status,
            )
        if status >= 500 or status in (408, 409):
            return LlmUnavailable(
                f"the model server at {server} failed ({status}{detail}) after {retries} "
                "retries: try again later",
                status=status,
            )
        return LlmRequestError(
            f"the model server at {server} refused the request ({status}{detail}): check that "
            f"{model!r} takes a json_schema response_format and that the input fits its context "
            "(lower max_input_tokens)",
            status=status,
        )

    async def aclose(self) -> None:
        if self._openai is not None:
            await self._openai.close()

    async def __aenter__(self) -> LlmClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def no_model() -> LlmUnavailable:
    """The error for a task asked with no model configured."""
    return LlmUnavailable(
        "no model is configured: set OPENAI_API_KEY (OpenAI) or OPENAI_BASE_URL "
        "(a local OpenAI-compatible server), or let the bot fall back without a model"
    )


def _detail(exc: openai.APIStatusError) -> str:
    """The server's error code and message, short: never the request, which it rarely echoes."""
    body = exc.body if isinstance(exc.body, dict) else {}
    message = body.get("message")
    parts = [p for p in (exc.code, message if isinstance(message, str) else None) if p]
    text = ", ".join(parts)
    return f", {text[:200]}" if text else ""
