"""agentkit eval: the labelled transcripts, how answers are scored, and the command."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import phonenumbers
import pytest

from agentkit.bot import Bot
from agentkit.cli import eval_command
from agentkit.evaluation import (
    EvalError,
    Sample,
    answer_model,
    check_labels,
    load_samples,
    matches,
    parse_label,
    run_evaluation,
)
from agentkit.llm.schema import schema_name
from agentkit.runtime.loader import load_bots
from agentkit.settings import Settings
from agentkit.testing import FakeLlm
from agentkit.testing.fake_llm import Responder, minimal_instance

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "bots" / "eval" / "transcripts.jsonl"
BOTS = ROOT / "bots"
PROMPTS = ROOT / "prompts"
AGENTKIT = str(Path(sys.executable).with_name("agentkit"))
MODEL_BOTS = ["voicemail-callback", "call-summary", "escalation"]


@pytest.fixture(scope="module")
def samples() -> list[Sample]:
    return load_samples(DATA)


@pytest.fixture(scope="module")
def bots() -> dict[str, Bot]:
    return {bot.name: bot for bot in load_bots(str(BOTS))}


def settings_for(fake: FakeLlm, model: str = "fake-model") -> Settings:
    return Settings.from_env({"OPENAI_BASE_URL": fake.base_url, "AGENTKIT_MODEL": model},
                             sandbox=True, env_file=None)


def labelled(samples: list[Sample], bot: str, task: str) -> list[Any]:
    return [s.labels_for(bot, task) for s in samples if s.labels_for(bot, task)]


def values_of(samples: list[Sample], bot: str, task: str, label: str) -> set[Any]:
    return {json.dumps(x[label]) for x in labelled(samples, bot, task) if label in x}


def exact_answers(bots: dict[str, Bot], samples: Sequence[Sample]) -> Responder:
    """A fake model that answers each sample with its labels (and the least JSON elsewhere)."""
    tasks: dict[str, tuple[str, str]] = {}
    for bot in bots.values():
        for task, function in bot.model_tasks.items():
            model = answer_model(function)
            assert model is not None
            tasks[schema_name(model.__name__)] = (bot.name, task)

    def respond(body: dict[str, Any]) -> dict[str, Any]:
        response_format = body["response_format"]["json_schema"]
        bot, task = tasks[response_format["name"]]
        user = body["messages"][-1]["content"]
        hits = Counter({s.id: sum(seg.text in user for seg in s.segments) for s in samples})
        (best, n), (_, runner_up) = hits.most_common(2)
        assert n > runner_up, "the request matches no single sample"
        sample = next(s for s in samples if s.id == best)
        schema = response_format["schema"]
        answer: dict[str, Any] = minimal_instance(schema, schema)
        for label, expected in sample.labels_for(bot, task).items():
            name, how = parse_label(label)
            if how == "count":
                item = minimal_instance(schema["properties"][name]["items"], schema)
                answer[name] = [item] * expected
            elif how == "contains":
                answer[name] = [expected]
            else:
                answer[name] = expected
        return answer

    return respond


async def agentkit(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[
    int, str, str
]:
    base = {k: v for k, v in os.environ.items()
            if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "AGENTKIT_MODEL")}
    process = await asyncio.create_subprocess_exec(
        AGENTKIT, *args, cwd=cwd, env={**base, **(env or {})},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


# the data set


def test_dataset_has_enough_samples(samples: list[Sample]) -> None:
    """The labelled set holds at least 40 transcripts, voicemails and answered calls both."""
    kinds = Counter(s.kind for s in samples)
    assert len(samples) >= 40
    assert kinds["voicemail"] >= 20 and kinds["call"] >= 15


def test_dataset_languages(samples: list[Sample]) -> None:
    """English, Romanian, German and French each have voicemails and calls."""
    for language in ("en", "ro", "de", "fr"):
        assert {s.kind for s in samples if s.language == language} == {"voicemail", "call"}


def test_labels_fit_the_bots(samples: list[Sample], bots: dict[str, Bot]) -> None:
    """Every label names a shipped bot, one of its model tasks, and a value its field can take."""
    assert {bot for s in samples for bot in s.labels} <= set(bots)
    for name in MODEL_BOTS:
        assert check_labels(bots[name], samples) == []


def test_every_bot_task_is_labelled(samples: list[Sample], bots: dict[str, Bot]) -> None:
    """Each model task of each shipped bot has labelled samples to be measured on."""
    for name in MODEL_BOTS:
        for task in bots[name].model_tasks:
            assert len(labelled(samples, name, task)) >= 15, (name, task)


def test_enum_labels_cover_every_value(samples: list[Sample]) -> None:
    """Every urgency and sentiment appears, and each yes/no label appears both ways."""
    triage = ("voicemail-callback", "triage")
    assert values_of(samples, *triage, "urgency") == {
        '"low"', '"normal"', '"high"', '"urgent"'
    }
    for flag in ("wants_callback", "spam"):
        assert values_of(samples, *triage, flag) == {"true", "false"}
    assert values_of(samples, "call-summary", "summarise", "sentiment") == {
        '"positive"', '"neutral"', '"negative"'
    }
    assert {"0", "1", "2", "3"} <= values_of(samples, "call-summary", "summarise",
                                             "follow_ups#count")
    assert values_of(samples, "escalation", "check", "escalate") == {"true", "false"}
    assert values_of(samples, "escalation", "check", "reasons~contains") == {
        '"strongly_negative"', '"complaint"', '"cancellation_threat"', '"legal"'
    }


def test_spoken_windows_are_labelled(samples: list[Sample]) -> None:
    """At least 15 voicemails name a time to be called, in at least two languages, each with
    the moment it was left and the business's zone to resolve it against."""
    windowed = [s for s in samples
                if s.labels_for("voicemail-callback", "triage").get("callback_after")
                or s.labels_for("voicemail-callback", "triage").get("callback_before")]
    assert len(windowed) >= 15
    assert len({s.language for s in windowed}) >= 2
    assert all({"received_at", "time_zone"} <= set(s.context) for s in windowed)


def test_context_must_say_when_with_an_offset(tmp_path: Path) -> None:
    """A received_at with no offset cannot be resolved against: the line is refused."""
    record = {"id": "vm-x", "kind": "voicemail", "language": "en",
              "segments": [{"t": 0, "speaker": "caller", "text": "Call me tomorrow."}],
              "context": {"received_at": "2026-03-10T10:00:00"},
              "labels": {"voicemail-callback": {"triage": {"wants_callback": True}}}}
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(EvalError, match=r"line 1: context: .*offset"):
        load_samples(path)


async def test_the_voicemail_time_and_zone_reach_the_prompt(
    samples: list[Sample], bots: dict[str, Bot]
) -> None:
    """A sample's received_at and time_zone are what the model is told to resolve times
    against, in the business's local time."""
    sample = next(s for s in samples if s.id == "vm-window-009")
    async with FakeLlm() as fake:
        await run_evaluation(bots["voicemail-callback"], [sample], settings=settings_for(fake),
                             prompts=PROMPTS)
        prompt = "\n".join(m["content"] for m in fake.messages(0))
    assert "Tuesday 2026-03-10 10:15 (UTC+0100)" in prompt
    assert "Europe/Paris" in prompt


def test_callback_numbers_are_valid(samples: list[Sample]) -> None:
    """Every expected callback number is a valid E.164 number, in several countries."""
    numbers = [x["callback_number"] for x in labelled(samples, "voicemail-callback", "triage")
               if x.get("callback_number")]
    for number in numbers:
        parsed = phonenumbers.parse(number)
        assert phonenumbers.is_valid_number(parsed), number
        assert phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) == number
    assert len({phonenumbers.region_code_for_number(phonenumbers.parse(n)) for n in numbers}) >= 6
    assert "null" in values_of(samples, "voicemail-callback", "triage", "callback_number")


# loading


def test_bad_json_names_the_line(tmp_path: Path) -> None:
    """A line that is not JSON is refused with its line number."""
    path = tmp_path / "data.jsonl"
    path.write_text(DATA.read_text().splitlines()[0] + "\n\n{not json\n")
    with pytest.raises(EvalError, match="line 3: not JSON"):
        load_samples(path)


def test_bad_record_names_the_line_and_field(tmp_path: Path) -> None:
    """A record with a wrong field is refused with the line number and the field."""
    record = json.loads(DATA.read_text().splitlines()[0])
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({**record, "kind": "fax"}) + "\n")
    with pytest.raises(EvalError, match="line 1: kind"):
        load_samples(path)


def test_duplicate_id_is_refused(tmp_path: Path) -> None:
    """Two records with one id are refused, naming both lines."""
    first = DATA.read_text().splitlines()[0]
    path = tmp_path / "data.jsonl"
    path.write_text(f"{first}\n{first}\n")
    with pytest.raises(EvalError, match=r"line 2: id .* already used on line 1"):
        load_samples(path)


def test_voicemail_has_one_speaker(tmp_path: Path) -> None:
    """A voicemail with an agent's line is refused."""
    record = json.loads(DATA.read_text().splitlines()[0])
    record["segments"].append({"t": 30.0, "speaker": "agent", "text": "Hello?"})
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(EvalError, match="one speaker"):
        load_samples(path)


def test_count_label_must_be_a_count(tmp_path: Path) -> None:
    """A #count label with a value that is not a whole number 0 or more is refused."""
    record = json.loads(DATA.read_text().splitlines()[0])
    record["labels"] = {"call-summary": {"summarise": {"follow_ups#count": "two"}}}
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(record) + "\n")
    with pytest.raises(EvalError, match="must be a count"):
        load_samples(path)


def test_label_checked_against_the_answer_model(
    samples: list[Sample], bots: dict[str, Bot]
) -> None:
    """A label for a field the answer lacks, or a value it cannot take, is reported."""
    base = samples[0].model_dump()
    wrong = Sample.model_validate({**base, "labels": {"voicemail-callback": {"triage": {
        "urgnecy": "high", "urgency": "very", "follow_ups#count": 1,
    }}}})
    problems = "\n".join(check_labels(bots["voicemail-callback"], [wrong]))
    assert "no field 'urgnecy'" in problems
    assert "urgency cannot be 'very'" in problems
    assert "no field 'follow_ups'" in problems


# scoring


@pytest.mark.parametrize(("got", "expected", "how"), [
    ("High", "high", "equals"),
    (" +442079460123", "+442079460123", "equals"),
    (None, None, "equals"),
    (["legal", "complaint"], ["complaint", "legal"], "equals"),
    ([{"item": "a"}, {"item": "b"}], 2, "count"),
    (["Billing dispute", "refund"], "billing", "contains"),
    (["complaint", "legal"], "legal", "contains"),
    ("2026-03-11T07:00:00Z", "2026-03-11T09:00:00+02:00", "equals"),
])
def test_matches(got: Any, expected: Any, how: Any) -> None:
    """Strings match without case, lists as sets, #count by length, ~contains by item,
    date-times with offsets by the instant."""
    assert matches(got, expected, how)


@pytest.mark.parametrize(("got", "expected", "how"), [
    ("normal", "high", "equals"),
    (0, False, "equals"),
    ("+442079460123", None, "equals"),
    (["legal"], ["legal", "complaint"], "equals"),
    ([{"item": "a"}], 2, "count"),
    (["refund"], "billing", "contains"),
    ("2026-03-11T09:00:00+00:00", "2026-03-11T09:00:00+02:00", "equals"),
    ("tomorrow at nine", "2026-03-11T09:00:00+02:00", "equals"),
    (None, "2026-03-11T09:00:00+02:00", "equals"),
])
def test_mismatches(got: Any, expected: Any, how: Any) -> None:
    """A different value, a number for a boolean, a missing set member or item, another
    instant or words for a date-time is wrong."""
    assert not matches(got, expected, how)


# running against the fake model


@pytest.mark.parametrize("bot_name", MODEL_BOTS)
async def test_exact_answers_score_everything(
    bot_name: str, samples: list[Sample], bots: dict[str, Bot]
) -> None:
    """A model that answers exactly the labels scores 100 % on every field."""
    async with FakeLlm(responder=exact_answers(bots, samples)) as fake:
        report = await run_evaluation(
            bots[bot_name], samples, settings=settings_for(fake), prompts=PROMPTS
        )
    assert report.failures == [] and report.misses == []
    assert report.scores and all(s.accuracy == 1.0 for s in report.scores.values())
    assert report.runs == sum(len(labelled(samples, bot_name, t))
                              for t in bots[bot_name].model_tasks)


async def test_no_answer_is_cached(samples: list[Sample], bots: dict[str, Bot]) -> None:
    """Every run asks the model: nothing comes from a cache, and tokens and cost add up."""
    async with FakeLlm(usage=(1000, 100)) as fake:
        report = await run_evaluation(
            bots["escalation"], [s for s in samples if s.kind == "call"][:5],
            settings=settings_for(fake, "gpt-4o-mini"),
            prompts=PROMPTS,
        )
        assert len(fake.requests) == report.runs
    assert report.usage.cached_calls == 0
    assert report.usage.prompt_tokens == 1000 * report.runs
    assert report.usage.cost_usd == pytest.approx(report.runs * (1000 * 0.15 + 100 * 0.6) / 1e6)


async def test_failing_model_counts_errors(samples: list[Sample], bots: dict[str, Bot]) -> None:
    """A model that fails every request gives errors by kind and wrong fields, not a crash."""
    chosen = [s for s in samples if s.kind == "voicemail"][:4]
    async with FakeLlm() as fake:
        fake.fail_next(100, status=503)
        report = await run_evaluation(
            bots["voicemail-callback"], chosen, settings=settings_for(fake), prompts=PROMPTS
        )
    summary = report.summary()
    assert summary["errors"] == {"count": 4, "kinds": {"LlmUnavailable": 4}}
    assert all(s.correct == 0 and s.total > 0 for s in report.scores.values())
    assert report.misses == []


async def test_invalid_answers_count_as_errors(
    samples: list[Sample], bots: dict[str, Bot]
) -> None:
    """Answers that never fit the schema are counted as LlmInvalidAnswer for their sample."""
    chosen = [s for s in samples if s.kind == "call"][:2]
    async with FakeLlm(responder=lambda body: "I would rather not.") as fake:
        report = await run_evaluation(
            bots["escalation"], chosen, settings=settings_for(fake), prompts=PROMPTS
        )
    assert {f.error for f in report.failures} == {"LlmInvalidAnswer"}
    assert [f.sample for f in report.failures] == [s.id for s in chosen]


async def test_unknown_task_is_refused(samples: list[Sample], bots: dict[str, Bot]) -> None:
    """Asking for a task the bot does not have names the tasks it has."""
    async with FakeLlm() as fake:
        with pytest.raises(EvalError, match=r"no model task 'triag'.*triage"):
            await run_evaluation(bots["voicemail-callback"], samples, settings=settings_for(fake),
                                 prompts=PROMPTS, tasks=["triag"])


# the command


async def test_eval_command_against_fake_model(tmp_path: Path) -> None:
    """'agentkit eval voicemail-callback' reports every labelled field, tokens and a JSON line."""
    async with FakeLlm() as fake:
        code, out, err = await agentkit(
            "eval", "voicemail-callback", "--data", str(DATA), "--bots", str(BOTS),
            "--prompts", str(PROMPTS), cwd=tmp_path,
            env={"OPENAI_BASE_URL": fake.base_url, "AGENTKIT_MODEL": "gpt-4o-mini"},
        )
    assert code == 0, err
    lines = out.strip().splitlines()
    summary = json.loads(lines[-1])
    assert any(line.startswith("eval voicemail-callback: 10/") for line in lines)
    assert set(summary["fields"]) == {
        f"triage.{name}"
        for name in ("wants_callback", "urgency", "spam", "callback_number", "language",
                     "callback_after", "callback_before")
    }
    assert all(f["n"] > 0 and 0 <= f["accuracy"] <= 1 for f in summary["fields"].values())
    assert summary["tokens"]["prompt"] > 0 and summary["tokens"]["completion"] > 0
    assert summary["cost_usd"] > 0
    assert summary["model"] == "gpt-4o-mini" and summary["errors"]["count"] == 0
    assert {"samples", "seconds"} <= set(summary)
    assert any(line.startswith("triage  urgency") for line in lines)


async def test_eval_json_prints_one_line(tmp_path: Path) -> None:
    """With --json the output is one JSON object listing every miss."""
    async with FakeLlm() as fake:
        code, out, err = await agentkit(
            "eval", "escalation", "--data", str(DATA), "--bots", str(BOTS),
            "--prompts", str(PROMPTS), "--limit", "3", "--json", cwd=tmp_path,
            env={"OPENAI_BASE_URL": fake.base_url},
        )
    assert code == 0, err
    [line] = out.strip().splitlines()
    summary = json.loads(line)
    assert summary["samples"] == 3 and summary["runs"] == 3
    assert all({"sample", "label", "expected", "got"} <= set(m) for m in summary["misses"])


async def test_bad_data_file_exits_2(tmp_path: Path) -> None:
    """A bad data file exits 2 naming the line."""
    data = tmp_path / "data.jsonl"
    data.write_text("\n".join(DATA.read_text().splitlines()[:2]) + '\n{"id": "x"}\n')
    code, _, err = await agentkit(
        "eval", "voicemail-callback", "--data", str(data), "--bots", str(BOTS), cwd=tmp_path,
        env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
    )
    assert code == 2
    assert "line 3" in err


@pytest.mark.parametrize(("bot", "data", "model", "message"), [
    ("no-such-bot", DATA, True, "no bot named 'no-such-bot'"),
    ("after-hours", DATA, True, "has no model tasks"),
    ("escalation", Path("missing.jsonl"), True, "no labelled data at missing.jsonl"),
    ("escalation", DATA, False, r"set OPENAI_API_KEY .* or OPENAI_BASE_URL"),
])
async def test_eval_refuses_to_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bot: str, data: Path, model: bool,
    message: str,
) -> None:
    """An unknown bot, one without model tasks, no data or no model is refused, saying why."""
    monkeypatch.chdir(tmp_path)
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    if model:
        monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(EvalError, match=message):
        await eval_command(bot, data=data, bots=str(BOTS), prompts=PROMPTS, out=io.StringIO())
