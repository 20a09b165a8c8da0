"""What bots ask the model: summarise, classify, extract, decide.

Every task masks payment data in its input (the client masks it in the
answer), renders its prompt template with explicit variables, asks once for
JSON fitting a schema, and validates the answer. An answer that does not fit
is sent back once with what was wrong; a second miss raises LlmInvalidAnswer.
Token use and cost add up in ``usage``; each model call logs one ``llm.call``
event, never the prompt or the answer. A ``recorder`` gets each task's answer,
for the operator console's timeline of a call.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from structlog.typing import FilteringBoundLogger

from agentkit.llm.client import Completion, LlmClient, LlmConfig, no_model
from agentkit.llm.errors import (
    LlmError,
    LlmInvalidAnswer,
    LlmRequestError,
    LlmUnavailable,
    LlmUsageError,
)
from agentkit.llm.prompts import PromptLibrary
from agentkit.llm.schema import schema_name, strict_schema
from agentkit.llm.transcript import chars_for_tokens, render_transcript
from agentkit.llm.usage import Usage
from agentkit.logs import get_logger
from agentkit.odygy.models import CallAi, Transcript
from agentkit.redact import mask_payment_data

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
Source = Transcript | str | None

# Variables the tasks set themselves; a bot's extra variables may not reuse them.
RESERVED = frozenset({
    "transcript", "max_words", "labels", "options", "schema_name", "schema_description",
    "schema_json", "fields", "problem",
})
# Room kept free for the re-ask (the invalid answer and what was wrong with it).
_REASK_ROOM = 1500
_MIN_TRANSCRIPT_CHARS = 2000
_MAX_ANSWER_ECHO = 1000
_FENCE = re.compile(r"^\s*```[a-zA-Z]*\s*(.*?)\s*```\s*$", re.S)


class Classification(BaseModel):
    """One of the labels, how sure the model is (0 to 1), and why."""

    model_config = ConfigDict(frozen=True)

    label: str
    confidence: float = Field(ge=0.0, le=1.0)
    reason: str


class Decision(BaseModel):
    """One of the options, and why."""

    model_config = ConfigDict(frozen=True)

    choice: str
    reason: str


class _Summary(BaseModel):
    summary: str


@dataclass(frozen=True)
class TaskAnswer:
    """One task's valid answer (masked JSON) and what its model calls cost, re-ask included."""

    task: str
    model: str
    answer: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    cached: bool


AnswerRecorder = Callable[[TaskAnswer], Awaitable[None]]


class _Invalid(Exception):
    """What was wrong with an answer: ``text`` for the model, ``kinds`` for the log."""

    def __init__(self, text: str, kinds: list[str]) -> None:
        super().__init__(text)
        self.text = text
        self.kinds = kinds


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


class LlmTasks:
    """The model tasks of one bot run; ``ctx.llm`` in a handler.

    ``client`` None (or a client with no model configured) makes every task
    raise LlmUnavailable without touching the network, so a bot can fall back.
    ``prompt_names`` maps a task to the bot's own template name.
    """

    def __init__(
        self,
        client: LlmClient | None,
        prompts: PromptLibrary,
        *,
        model: str | None = None,
        usage: Usage | None = None,
        prompt_names: Mapping[str, str] | None = None,
        log: FilteringBoundLogger | None = None,
        use_platform: bool = True,
        recorder: AnswerRecorder | None = None,
    ) -> None:
        self._client = client
        self._recorder = recorder
        self._prompts = prompts
        self.model = model or (client.config.model if client is not None else "")
        self.usage = usage if usage is not None else Usage()
        self._prompt_names = dict(prompt_names or {})
        self._use_platform = use_platform
        self._log: FilteringBoundLogger = log or get_logger("agentkit.llm")

    async def summarise(
        self,
        source: Source,
        /,
        *,
        max_words: int = 80,
        prompt: str | None = None,
        platform: CallAi | None = None,
        use_platform: bool | None = None,
        **variables: Any,
    ) -> str:
        """A summary of at most about ``max_words`` words.

        With ``platform`` (the call's own AI results) holding a summary and
        ``use_platform`` true (by default, the bot's ``use_platform_ai``), that
        summary is returned and no model is asked.
        """
        if use_platform is None:
            use_platform = self._use_platform
        if use_platform and platform is not None and platform.summary:
            self._log.info("llm.platform_answer", task="summarise")
            return mask_payment_data(platform.summary)

        def parse(completion: Completion) -> str:
            return _load(completion, _Summary).summary.strip()

        schema = _object({"summary": {"type": "string", "description": "the summary"}})
        return await self._run(
            "summarise", prompt, source, {"max_words": max_words}, variables,
            schema_name="summary", schema=schema, parse=parse,
        )

    async def classify(
        self,
        source: Source,
        labels: Sequence[str],
        /,
        *,
        prompt: str | None = None,
        platform_label: str | None = None,
        use_platform: bool | None = None,
        **variables: Any,
    ) -> Classification:
        """The label that fits best, of ``labels``.

        ``platform_label`` (say the call's own sentiment) is returned, with
        confidence 1, without asking the model when it is one of ``labels``
        (compared case-insensitively) and ``use_platform`` is true.
        """
        allowed = _names(labels, "labels")
        if use_platform is None:
            use_platform = self._use_platform
        if use_platform and platform_label is not None:
            match = next((x for x in allowed if x.casefold() == platform_label.casefold()), None)
            if match is not None:
                self._log.info("llm.platform_answer", task="classify")
                return Classification(
                    label=match, confidence=1.0, reason="phone.systems' own call analysis"
                )

        def parse(completion: Completion) -> Classification:
            answer = _load(completion, Classification)
            if answer.label not in allowed:
                raise _Invalid(f"label: must be one of {_listed(allowed)}", ["label_not_allowed"])
            return answer

        schema = _object({
            "label": {"type": "string", "enum": allowed},
            "confidence": {"type": "number", "description": "from 0 (a guess) to 1 (certain)"},
            "reason": {"type": "string", "description": "one short sentence"},
        })
        return await self._run(
            "classify", prompt, source, {"labels": allowed}, variables,
            schema_name="classification", schema=schema, parse=parse,
        )

    async def extract(
        self,
        schema: type[M],
        source: Source,
        /,
        *,
        prompt: str | None = None,
        **variables: Any,
    ) -> M:
        """An instance of ``schema`` (a pydantic model) filled in from the input."""
        json_schema = strict_schema(schema)
        fields = [
            {"name": name, "description": info.description or ""}
            for name, info in schema.model_fields.items()
        ]

        def parse(completion: Completion) -> M:
            return _load(completion, schema)

        task_vars = {
            "schema_name": schema.__name__,
            "schema_description": (schema.__doc__ or "").strip(),
            "fields": fields,
        }
        return await self._run(
            "extract", prompt, source, task_vars, variables,
            schema_name=schema_name(schema.__name__), schema=json_schema, parse=parse,
        )

    async def decide(
        self,
        options: Sequence[str] | Mapping[str, str],
        source: Source,
        /,
        *,
        prompt: str | None = None,
        **variables: Any,
    ) -> Decision:
        """The option that fits best; ``options`` may map each name to a description."""
        described = (
            dict(options) if isinstance(options, Mapping) else dict.fromkeys(options, "")
        )
        allowed = _names(list(described), "options")
        listed = [{"name": name, "description": described[name]} for name in allowed]

        def parse(completion: Completion) -> Decision:
            answer = _load(completion, Decision)
            if answer.choice not in allowed:
                raise _Invalid(f"choice: must be one of {_listed(allowed)}", ["choice_not_allowed"])
            return answer

        schema = _object({
            "choice": {"type": "string", "enum": allowed},
            "reason": {"type": "string", "description": "one short sentence"},
        })
        return await self._run(
            "decide", prompt, source, {"options": listed}, variables,
            schema_name="decision", schema=schema, parse=parse,
        )

    async def _run(
        self,
        task: str,
        prompt: str | None,
        source: Source,
        task_vars: dict[str, Any],
        extra: Mapping[str, Any],
        *,
        schema_name: str,
        schema: dict[str, Any],
        parse: Callable[[Completion], T],
    ) -> T:
        clash = sorted(set(extra) & RESERVED)
        if clash:
            raise LlmUsageError(
                f"{task}() sets {', '.join(clash)} itself: rename the variable you pass "
                "(the transcript goes in as the positional argument)"
            )
        client = self._client
        if client is None or not client.enabled:
            raise no_model()
        name = prompt or self._prompt_names.get(task, task)
        values = {**{k: _masked(v) for k, v in extra.items()}, **task_vars}
        messages = self._messages(name, source, values, schema, client.config)

        first = await self._ask(client, task, messages, schema_name, schema, attempt=1)
        try:
            result = parse(first)
        except _Invalid as problem:
            self._count(client, task, "invalid")
            self._log.warning("llm.invalid_answer", task=task, attempt=1, errors=problem.kinds)
            reask = self._prompts.render_block(
                name, "reask", task, problem=problem.text, **values
            )
            again = [
                *messages,
                {"role": "assistant", "content": (first.content or "")[:_MAX_ANSWER_ECHO]},
                {"role": "user", "content": reask},
            ]
            second = await self._ask(client, task, again, schema_name, schema, attempt=2)
            try:
                result = parse(second)
            except _Invalid as final:
                self._count(client, task, "invalid")
                self._log.warning("llm.invalid_answer", task=task, attempt=2, errors=final.kinds)
                raise LlmInvalidAnswer(
                    f"the model's answer to {task} did not fit, even when asked again "
                    f"({final.text}): check the prompt {name}.j2, or use a model that "
                    "supports json_schema answers",
                    task=task,
                    problem=final.text,
                ) from None
            self._count(client, task, "cached" if second.cached else "ok")
            await client.remember(first.key, second)
            await self._record(client, task, first, second)
            return result
        self._count(client, task, "cached" if first.cached else "ok")
        await client.remember(first.key, first)
        await self._record(client, task, first)
        return result

    async def _record(self, client: LlmClient, task: str, *asked: Completion) -> None:
        if self._recorder is None:
            return
        answer = TaskAnswer(
            task=task, model=self.model, answer=asked[-1].content,
            prompt_tokens=sum(c.prompt_tokens for c in asked),
            completion_tokens=sum(c.completion_tokens for c in asked),
            cost_usd=sum(self._cost(client, c) for c in asked),
            cached=all(c.cached for c in asked),
        )
        try:
            await self._recorder(answer)
        except Exception as exc:  # bookkeeping only: the bot keeps its answer
            self._log.warning("llm.answer_not_recorded", task=task, error=type(exc).__name__)

    def _cost(self, client: LlmClient, completion: Completion) -> float:
        if completion.cached:
            return 0.0
        return client.config.cost(self.model, completion.prompt_tokens,
                                  completion.completion_tokens)

    def count_fallback(self, error: Exception) -> None:
        """Count that the handler went on without the model's answer because of ``error``.

        Call it where a handler catches LlmError and falls back; it shows as
        ``agentkit_llm_fallbacks_total{reason}``.
        """
        client = self._client
        if client is None or client.metrics is None:
            return
        client.metrics.llm_fallback(reason=_fallback_reason(client, error))

    def _count(self, client: LlmClient, task: str, outcome: str) -> None:
        if client.metrics is not None:
            client.metrics.llm_call(task=task, outcome=outcome)

    def _messages(
        self,
        name: str,
        source: Source,
        values: dict[str, Any],
        schema: dict[str, Any],
        config: LlmConfig,
    ) -> list[dict[str, str]]:
        """The prompt, with the input cut to what ``max_input_tokens`` leaves for it."""
        bare = self._prompts.render(name, transcript=render_transcript(None, max_chars=0), **values)
        overhead = sum(len(m["content"]) for m in bare) + len(json.dumps(schema)) + _REASK_ROOM
        room = max(chars_for_tokens(config.max_input_tokens) - overhead, _MIN_TRANSCRIPT_CHARS)
        block = render_transcript(source, max_chars=room)
        return self._prompts.render(name, transcript=block, **values)

    async def _ask(
        self,
        client: LlmClient,
        task: str,
        messages: Sequence[Mapping[str, str]],
        name: str,
        schema: Mapping[str, Any],
        *,
        attempt: int,
    ) -> Completion:
        started = time.perf_counter()
        try:
            completion = await client.complete_json(
                model=self.model, messages=messages, schema_name=name, schema=schema
            )
        except LlmError as exc:
            self._count(client, task, "error")
            self._log.warning(
                "llm.call", task=task, model=self.model, attempt=attempt, outcome="failed",
                error=type(exc).__name__, status=getattr(exc, "status", None),
                ms=_ms(started),
            )
            raise
        cost = self._cost(client, completion)
        if client.metrics is not None and not completion.cached:
            client.metrics.llm_tokens_used(
                model=self.model, prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens, cost_usd=cost,
            )
        self.usage.add(
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            cost_usd=cost,
            cached=completion.cached,
        )
        self._log.info(
            "llm.call", task=task, model=self.model, attempt=attempt, outcome="answered",
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            cost_usd=round(cost, 6), cached=completion.cached, ms=_ms(started),
        )
        return completion


def _fallback_reason(client: LlmClient, error: Exception) -> str:
    if not client.enabled:
        return "no_model"
    if isinstance(error, LlmUnavailable):
        return "unavailable"
    if isinstance(error, LlmRequestError):
        return "refused"
    if isinstance(error, LlmInvalidAnswer):
        return "invalid_answer"
    return "error"


def _load(completion: Completion, model: type[M]) -> M:
    """The answer parsed into ``model``, or _Invalid saying what was wrong (not what was said)."""
    if completion.refusal and not completion.content:
        raise _Invalid("you declined to answer; answer with the JSON the schema asks for",
                       ["refusal"])
    text = completion.content
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        text = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'answer'}: {e['msg']}" for e in errors[:8]
        )
        raise _Invalid(text, sorted({e["type"] for e in errors})) from None


def _names(values: Sequence[str], what: str) -> list[str]:
    if isinstance(values, str):
        raise LlmUsageError(f"{what} must be a list of strings, not one string {values!r}")
    names = list(values)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise LlmUsageError(f"{what} must be a non-empty list of non-empty strings")
    if len(set(names)) != len(names):
        raise LlmUsageError(f"{what} must not repeat: {_listed(names)}")
    return names


def _listed(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _masked(value: Any) -> Any:
    """A template variable with payment data masked in its strings, lists and dicts too."""
    if isinstance(value, str):
        return mask_payment_data(value)
    if isinstance(value, list | tuple):
        return type(value)(_masked(v) for v in value)
    if isinstance(value, dict):
        return {k: _masked(v) for k, v in value.items()}
    return value


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
