"""Measuring a bot's model tasks on labelled transcripts: accuracy per field, tokens, cost.

::

    samples = load_samples("bots/eval/transcripts.jsonl")
    report = await run_evaluation(bot, samples, settings=settings, prompts=Path("prompts"))
    print(report.table())

The data is JSON lines, one transcript a line, each with the answers expected
from the tasks of one or more bots (``docs/evaluation.md``)::

    {"id": "vm-001", "kind": "voicemail", "language": "en", "segments": [...],
     "labels": {"voicemail-callback": {"triage": {"urgency": "urgent", "spam": false}}}}

A label names a field of the task's answer. ``field``: equal (strings without
regard to case, lists as sets, ISO 8601 date-times with an offset as the same
instant); ``field#count``: the list has that many items;
``field~contains``: an item of the list is, or contains, the value. Nothing is
cached: an evaluation asks the model every time, so that it measures it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import time
import typing
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

import structlog
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from structlog.typing import FilteringBoundLogger

from agentkit.bot import Bot
from agentkit.errors import ConfigError
from agentkit.llm import LlmClient, LlmConfig, LlmError, LlmTasks, PromptLibrary, Usage
from agentkit.odygy.models import Transcript, TranscriptSegment
from agentkit.settings import Settings

Match = Literal["equals", "count", "contains"]
Progress = Callable[[int, int], None]

_LABEL = re.compile(r"^(?P<field>[A-Za-z_][A-Za-z0-9_]*)(?P<how>#count|~contains)?$")
_HOW: dict[str | None, Match] = {None: "equals", "#count": "count", "~contains": "contains"}
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


class EvalError(ConfigError):
    """An evaluation cannot start: bad data, an unknown bot or task, no model; see the message."""


class Segment(BaseModel):
    """One line of a labelled transcript."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    t: float = Field(ge=0)
    speaker: Literal["caller", "agent"]
    text: str


class Sample(BaseModel):
    """One labelled transcript: a voicemail or an answered call, and the answers expected.

    ``labels`` maps a bot's name to its tasks, each to the fields expected.
    ``context``: keyword arguments every task is called with, as the bot's
    handler passes them (the voicemail's ``received_at`` and ``time_zone``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
    kind: Literal["voicemail", "call"]
    language: str = Field(min_length=2, max_length=35)
    segments: list[Segment]
    labels: dict[str, dict[str, dict[str, Any]]] = Field(min_length=1)
    context: dict[str, Any] = Field(default_factory=dict)

    @field_validator("labels")
    @classmethod
    def _labels(
        cls, labels: dict[str, dict[str, dict[str, Any]]]
    ) -> dict[str, dict[str, dict[str, Any]]]:
        for bot, tasks in labels.items():
            for task, fields in tasks.items():
                if not fields:
                    raise ValueError(f"{bot}/{task} has no labelled field")
                for key, expected in fields.items():
                    if not _LABEL.match(key):
                        raise ValueError(
                            f"{bot}/{task}: {key!r} is not a field name, with an optional "
                            "#count or ~contains after it"
                        )
                    if key.endswith("#count") and (
                        isinstance(expected, bool) or not isinstance(expected, int)
                        or expected < 0
                    ):
                        raise ValueError(f"{bot}/{task}: {key} must be a count (0 or more), "
                                         f"not {expected!r}")
        return labels

    @field_validator("context")
    @classmethod
    def _context(cls, context: dict[str, Any]) -> dict[str, Any]:
        received = context.get("received_at")
        if received is not None and _instant(received) is None:
            raise ValueError(f"received_at {received!r} must be an ISO 8601 date-time with an "
                             "offset, e.g. 2026-03-10T10:00:00+02:00")
        return context

    @field_validator("segments")
    @classmethod
    def _segments(cls, segments: list[Segment], info: ValidationInfo) -> list[Segment]:
        if info.data.get("kind") == "voicemail" and any(s.speaker != "caller" for s in segments):
            raise ValueError("a voicemail has one speaker, the caller")
        return segments

    def transcript(self) -> Transcript:
        """The transcript a bot's task reads, as phone.systems would give it."""
        return Transcript(
            call_id=self.id,
            language=self.language,
            segments=[TranscriptSegment(t=s.t, speaker=s.speaker, text=s.text)
                      for s in self.segments],
        )

    def labels_for(self, bot: str, task: str) -> dict[str, Any]:
        """The fields expected from ``bot``'s ``task`` (empty when this sample has none)."""
        return self.labels.get(bot, {}).get(task, {})


def parse_label(key: str) -> tuple[str, Match]:
    """``"follow_ups#count"`` -> ``("follow_ups", "count")``."""
    found = _LABEL.match(key)
    if found is None:
        raise EvalError(f"{key!r} is not a label: give a field name, optionally with "
                        "#count or ~contains")
    return found["field"], _HOW[found["how"]]


def load_samples(path: str | Path) -> list[Sample]:
    """The samples of a JSON-lines file; EvalError names the line of a bad record."""
    file = Path(path)
    if not file.is_file():
        raise EvalError(f"no labelled data at {file}: give a JSON-lines file with --data "
                        "(agentkit's is bots/eval/transcripts.jsonl)")
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalError(f"{file} cannot be read as UTF-8 text: {exc}") from None
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{file} line {number}: not JSON ({exc.msg}, column {exc.colno})") \
                from None
        try:
            sample = Sample.model_validate(record)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}"
                for e in exc.errors(include_url=False)[:5]
            )
            raise EvalError(f"{file} line {number}: {problems}") from None
        if sample.id in seen:
            raise EvalError(f"{file} line {number}: id {sample.id!r} is already used on line "
                            f"{seen[sample.id]}")
        seen[sample.id] = number
        samples.append(sample)
    if not samples:
        raise EvalError(f"{file} holds no samples")
    return samples


def answer_model(task: Callable[..., Any]) -> type[BaseModel] | None:
    """The pydantic model a model task declares it returns, or None."""
    try:
        answer = typing.get_type_hints(task).get("return")
    except Exception:  # an annotation that does not resolve: reported as no model
        return None
    return answer if isinstance(answer, type) and issubclass(answer, BaseModel) else None


def check_labels(bot: Bot, samples: Iterable[Sample]) -> list[str]:
    """What is wrong with the samples' labels for ``bot``: unknown tasks or fields, values
    the field cannot take. Labels for other bots are not looked at."""
    problems: list[str] = []
    for sample in samples:
        for task, fields in sample.labels.get(bot.name, {}).items():
            function = bot.model_tasks.get(task)
            if function is None:
                problems.append(
                    f"sample {sample.id}: bot {bot.name!r} has no model task {task!r}; "
                    f"its tasks: {', '.join(bot.model_tasks) or 'none'}"
                )
                continue
            model = answer_model(function)
            if model is None:
                problems.append(
                    f"bot {bot.name!r}: model task {task!r} does not declare a pydantic model "
                    "as its return type, so its labels cannot be checked: annotate it"
                )
                continue
            for key, expected in fields.items():
                problem = _label_problem(model, key, expected)
                if problem:
                    problems.append(f"sample {sample.id}: {bot.name}/{task} {key}: {problem}")
    return list(dict.fromkeys(problems))


def _label_problem(model: type[BaseModel], key: str, expected: Any) -> str | None:
    name, how = parse_label(key)
    info = model.model_fields.get(name)
    if info is None:
        fields = ", ".join(model.model_fields)
        return f"{model.__name__} has no field {name!r}; its fields: {fields}"
    annotation = info.annotation
    if annotation is None:
        return f"{model.__name__}.{name} has no type to check the label against"
    is_list = typing.get_origin(annotation) is list
    if how == "count":
        return None if is_list else f"#count needs a list field, and {name} is not one"
    if how == "contains":
        if not is_list and annotation is not str:
            return f"~contains needs a list or string field, and {name} is neither"
        expected = [expected] if is_list else expected
    try:
        TypeAdapter(annotation).validate_python(expected, strict=True)
    except ValidationError as exc:
        return f"{name} cannot be {expected!r}: {exc.errors(include_url=False)[0]['msg']}"
    return None


def matches(got: Any, expected: Any, how: Match = "equals") -> bool:
    """Whether an answer's value (as JSON) is what the label expects."""
    if how == "count":
        return isinstance(got, list) and len(got) == expected
    if how == "contains":
        if isinstance(got, str):
            return isinstance(expected, str) and expected.casefold() in got.casefold()
        return isinstance(got, list) and any(
            _key(item) == _key(expected)
            or (isinstance(item, str) and isinstance(expected, str)
                and expected.strip().casefold() in item.casefold())
            for item in got
        )
    if isinstance(expected, list):
        return isinstance(got, list) and {_key(x) for x in got} == {_key(x) for x in expected}
    instant = _instant(expected)
    if instant is not None:
        return _instant(got) == instant
    return _key(got) == _key(expected)


def _instant(value: Any) -> datetime | None:
    """The instant an ISO 8601 date-time with an offset names, or None for anything else."""
    if not isinstance(value, str) or not _DATETIME.match(value.strip()):
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment if moment.utcoffset() is not None else None


def _arguments(context: dict[str, Any]) -> dict[str, Any]:
    """A sample's context as the task takes it: ``received_at`` as an aware datetime."""
    found = dict(context)
    if isinstance(found.get("received_at"), str):
        found["received_at"] = datetime.fromisoformat(found["received_at"])
    return found


def _key(value: Any) -> tuple[Any, ...]:
    """A comparable form: strings without case or edge spaces, True apart from 1."""
    if isinstance(value, str):
        return ("s", value.strip().casefold())
    if isinstance(value, bool) or value is None:
        return ("c", value)
    if isinstance(value, int | float):
        return ("n", float(value))
    return ("j", json.dumps(value, sort_keys=True))


@dataclass
class FieldScore:
    """How often one labelled field of one task was right."""

    task: str
    label: str
    correct: int = 0
    total: int = 0

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0


@dataclass(frozen=True)
class Miss:
    """One wrong field: what was expected and what the model answered."""

    sample: str
    task: str
    label: str
    expected: Any
    got: Any


@dataclass(frozen=True)
class Failure:
    """One task run that raised; all its labelled fields count as wrong."""

    sample: str
    task: str
    error: str
    message: str


@dataclass
class EvalReport:
    """What an evaluation found: per-field scores, misses, failures, tokens, cost, time."""

    bot: str
    model: str
    tasks: list[str] = field(default_factory=list)
    scores: dict[tuple[str, str], FieldScore] = field(default_factory=dict)
    misses: list[Miss] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    latencies: list[float] = field(default_factory=list)
    samples: int = 0
    runs: int = 0
    seconds: float = 0.0

    @property
    def accuracy(self) -> float:
        """Right fields over labelled fields, across tasks."""
        total = sum(s.total for s in self.scores.values())
        return sum(s.correct for s in self.scores.values()) / total if total else 0.0

    def record(
        self, task: str, sample: Sample, labels: dict[str, Any], answer: Any,
        error: LlmError | None,
    ) -> None:
        """Score one task run: each labelled field right or wrong, a failure all wrong."""
        if error is not None:
            self.failures.append(Failure(sample.id, task, type(error).__name__, str(error)))
        values = _values(answer) if error is None else {}
        for label, expected in labels.items():
            name, how = parse_label(label)
            score = self.scores.setdefault((task, label), FieldScore(task, label))
            score.total += 1
            if error is not None:
                continue
            got = values.get(name)
            if matches(got, expected, how):
                score.correct += 1
            else:
                shown = len(got) if how == "count" and isinstance(got, list) else got
                self.misses.append(Miss(sample.id, task, label, expected, shown))

    def table(self) -> str:
        """A readable table (task, field, accuracy, n) with tokens, cost and time below."""
        rows = [("task", "field", "accuracy", "n")]
        rows += [(s.task, s.label, f"{100 * s.accuracy:.1f} %", str(s.total))
                 for s in self.scores.values()]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = [
            f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:>{widths[2]}}  {d:>{widths[3]}}"
            for a, b, c, d in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        kinds = Counter(f.error for f in self.failures)
        errors = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
        latency = _latency_ms(self.latencies)
        lines += [
            "",
            f"bot {self.bot}, model {self.model}: {self.samples} samples, {self.runs} runs, "
            f"{len(self.failures)} errors{f' ({errors})' if errors else ''}, "
            f"overall {100 * self.accuracy:.1f} %",
            f"tokens {self.usage.prompt_tokens:,} prompt + {self.usage.completion_tokens:,} "
            f"completion in {self.usage.calls} calls ({self.usage.cached_calls} cached), "
            f"cost ${self.usage.cost_usd:.4f}",
            f"latency p50 {latency['p50']:,.0f} ms, p95 {latency['p95']:,.0f} ms, "
            f"max {latency['max']:,.0f} ms; {self.seconds:.1f} s in all",
        ]
        return "\n".join(lines)

    def details(self, limit: int | None = None) -> list[str]:
        """One line per failure and per wrong field, failures first."""
        lines = [f"error  {f.sample}  {f.task}: {f.error}: {f.message}" for f in self.failures]
        lines += [
            f"miss   {m.sample}  {m.task}.{m.label}: expected {json.dumps(m.expected)}, "
            f"got {json.dumps(m.got, ensure_ascii=False)}"
            for m in self.misses
        ]
        if limit is not None and len(lines) > limit:
            lines = [*lines[:limit], f"... and {len(lines) - limit} more (--json lists them all)"]
        return lines

    def summary(self, *, detail: bool = False) -> dict[str, Any]:
        """The report as JSON-able data; ``detail`` adds every miss and failure."""
        out: dict[str, Any] = {
            "bot": self.bot,
            "model": self.model,
            "tasks": self.tasks,
            "samples": self.samples,
            "runs": self.runs,
            "accuracy": round(self.accuracy, 4),
            "fields": {
                f"{s.task}.{s.label}": {
                    "accuracy": round(s.accuracy, 4), "correct": s.correct, "n": s.total,
                }
                for s in self.scores.values()
            },
            "errors": {
                "count": len(self.failures),
                "kinds": dict(sorted(Counter(f.error for f in self.failures).items())),
            },
            "tokens": {
                "prompt": self.usage.prompt_tokens,
                "completion": self.usage.completion_tokens,
                "total": self.usage.prompt_tokens + self.usage.completion_tokens,
            },
            "calls": self.usage.calls,
            "cached_calls": self.usage.cached_calls,
            "cost_usd": round(self.usage.cost_usd, 6),
            "latency_ms": _latency_ms(self.latencies),
            "seconds": round(self.seconds, 2),
        }
        if detail:
            out["failures"] = [vars(f) for f in self.failures]
            out["misses"] = [vars(m) for m in self.misses]
        return out


async def run_evaluation(
    bot: Bot,
    samples: Sequence[Sample],
    *,
    settings: Settings,
    prompts: Path,
    tasks: Sequence[str] | None = None,
    concurrency: int = 4,
    progress: Progress | None = None,
    log: FilteringBoundLogger | None = None,
) -> EvalReport:
    """Run ``bot``'s model tasks on every sample labelled for them, and score the answers.

    The model, prompts and prompt names are those the bot gets in production
    (``bot.model`` or AGENTKIT_MODEL; the bot's prompt folder before ``prompts``).
    A model error on one sample (LlmError) counts as wrong for its fields and is
    reported with its kind; other errors (a broken prompt) stop the evaluation.
    ``progress(done, total)`` is called after each task run.
    """
    names = list(tasks) if tasks is not None else list(bot.model_tasks)
    unknown = [name for name in names if name not in bot.model_tasks]
    if unknown or not names:
        raise EvalError(
            f"bot {bot.name!r} has no model task {', '.join(map(repr, unknown)) or 'to run'}; "
            f"its tasks: {', '.join(bot.model_tasks) or 'none (register one with @bot.model_task)'}"
        )
    if concurrency < 1:
        raise EvalError("concurrency must be at least 1")
    problems = check_labels(bot, samples)
    if problems:
        raise EvalError("the labels do not fit the bot: " + "; ".join(problems[:10]))
    order = {sample.id: n for n, sample in enumerate(samples)}
    jobs = [(name, sample) for name in names for sample in samples
            if sample.labels_for(bot.name, name)]
    if not jobs:
        raise EvalError(f"no sample has labels for bot {bot.name!r} ({', '.join(names)})")
    config = LlmConfig.from_settings(settings)
    if not config.enabled:
        raise EvalError(
            "no model is configured: set OPENAI_API_KEY (OpenAI) or OPENAI_BASE_URL (an "
            "OpenAI-compatible server such as Ollama), and AGENTKIT_MODEL for the model"
        )
    library = PromptLibrary.for_project(prompts)
    if bot.prompts:
        library = library.before(bot.prompts)
    model = bot.model or settings.model
    report = EvalReport(bot=bot.name, model=model, tasks=names)
    for name, sample in jobs:  # rows in a stable order: task, then first appearance
        for label in sample.labels_for(bot.name, name):
            report.scores.setdefault((name, label), FieldScore(name, label))
    quiet = log or _quiet_log()
    gate = asyncio.Semaphore(concurrency)
    done = 0
    started = time.perf_counter()

    async with LlmClient(config, cache=None) as client:

        async def run(name: str, sample: Sample) -> None:
            nonlocal done
            usage = Usage()
            llm = LlmTasks(client, library, model=model, usage=usage,
                           prompt_names=bot.prompt_names, log=quiet,
                           use_platform=bot.use_platform_ai)
            async with gate:
                began = time.perf_counter()
                answer: Any = None
                error: LlmError | None = None
                try:
                    answer = await bot.model_tasks[name](llm, sample.transcript(),
                                                         **_arguments(sample.context))
                except LlmError as exc:
                    error = exc
                report.latencies.append(time.perf_counter() - began)
            _add(report.usage, usage)
            report.record(name, sample, sample.labels_for(bot.name, name), answer, error)
            done += 1
            if progress is not None:
                progress(done, len(jobs))

        running = [asyncio.create_task(run(name, sample)) for name, sample in jobs]
        try:
            await asyncio.gather(*running)
        finally:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    report.runs = len(jobs)
    report.samples = len({sample.id for _, sample in jobs})
    report.seconds = time.perf_counter() - started
    report.failures.sort(key=lambda f: (names.index(f.task), order[f.sample]))
    report.misses.sort(key=lambda m: (names.index(m.task), order[m.sample]))
    return report


def _values(answer: Any) -> dict[str, Any]:
    if not isinstance(answer, BaseModel):
        raise EvalError(f"a model task answered {type(answer).__name__}, not a pydantic model: "
                        "only answers that are models can be scored")
    return answer.model_dump(mode="json")


def _add(total: Usage, part: Usage) -> None:
    total.prompt_tokens += part.prompt_tokens
    total.completion_tokens += part.completion_tokens
    total.cost_usd += part.cost_usd
    total.calls += part.calls
    total.cached_calls += part.cached_calls


def _latency_ms(latencies: Sequence[float]) -> dict[str, float]:
    if not latencies:
        return {"p50": 0.0, "p95": 0.0, "max": 0.0}
    ordered = sorted(latencies)

    def at(share: float) -> float:
        return round(1000 * ordered[max(0, math.ceil(share * len(ordered)) - 1)], 1)

    return {"p50": at(0.5), "p95": at(0.95), "max": round(1000 * ordered[-1], 1)}


def _quiet_log() -> FilteringBoundLogger:
    """The model layer's logger with its per-call info lines left out: the report sums them."""
    return cast(FilteringBoundLogger, structlog.wrap_logger(
        None, wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING)
    ))
