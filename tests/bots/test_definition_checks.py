"""What ``Bot`` checks when a handler is registered, and how it says where the mistake is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from agentkit import (
    Bot,
    BotDefinitionError,
    CallAnswered,
    CallbackEnded,
    CallCompleted,
    CallEvent,
    Context,
    Event,
    Requested,
    ScheduleChanged,
    TranscriptReady,
    VoicemailReceived,
)

HERE = Path(__file__).name


def _line_of(marker: str) -> int:
    """The line of this file that holds ``marker`` (in a comment at the end of the line)."""
    for number, text in enumerate(Path(__file__).read_text().splitlines(), start=1):
        if text.rstrip().endswith(f"# {marker}"):
            return number
    raise AssertionError(marker)


def test_event_classes_declare_handlers() -> None:
    """``@bot.on(VoicemailReceived, join=TranscriptReady)`` declares what the strings do."""
    bot = Bot("b")

    @bot.on(VoicemailReceived, join=TranscriptReady)
    async def call_back(ctx: Context[VoicemailReceived]) -> None:
        """Nothing."""

    (listener,) = bot.listeners
    assert (listener.event_type, listener.join) == ("voicemail.received", ("transcript.ready",))


def test_strings_stay_accepted() -> None:
    """The type strings still declare a handler."""
    bot = Bot("b")

    @bot.on("call.completed", join=["transcript.ready"])
    async def done(ctx: Context[CallCompleted]) -> None:
        """Nothing."""

    assert bot.listeners[0].event_types == ("call.completed", "transcript.ready")


@pytest.mark.parametrize(("typo", "meant"), [
    ("voicemail.recieved", "voicemail.received"),
    ("VoicemailReceived", "voicemail.received"),
    ("call_completed", "call.completed"),
    ("transcript.readi", "transcript.ready"),
])
def test_unknown_type_gets_the_closest_name(typo: str, meant: str) -> None:
    """An unknown event type is refused with the closest valid name."""
    with pytest.raises(BotDefinitionError, match=rf"did you mean {meant}\?"):
        Bot("b").on(typo)


def test_error_names_the_file_and_line_of_the_call() -> None:
    """A mistake in ``bot.on(...)`` names this file and the line of the call."""
    bot = Bot("b")
    with pytest.raises(BotDefinitionError) as caught:
        bot.on("voicemail.recieved")  # the-call
    assert caught.value.file.endswith(HERE)
    assert caught.value.line == _line_of("the-call")
    assert str(caught.value).startswith(f"{caught.value.file}:{caught.value.line}: ")


def test_handler_error_names_the_handler_line() -> None:
    """A bad handler is reported at its own definition."""
    bot = Bot("b")
    with pytest.raises(BotDefinitionError) as caught:
        @bot.on(CallCompleted)  # the-handler
        async def two(ctx: Context[CallCompleted], extra: int) -> None:
            """Two parameters."""
    assert caught.value.file.endswith(HERE)
    assert caught.value.line == _line_of("the-handler")


def test_a_team_mistake_names_the_bot_module_line() -> None:
    """A mistake raised deep inside agentkit (a Team) still points at the author's line."""
    from agentkit import Team

    with pytest.raises(BotDefinitionError) as caught:
        Team()  # the-team
    assert caught.value.line == _line_of("the-team")


@pytest.mark.parametrize("handler_source", [
    "async def h(ctx, extra): pass",
    "async def h(): pass",
    "async def h(*args): pass",
    "async def h(ctx, *, flag=False): pass",
])
def test_handler_takes_exactly_one_parameter(handler_source: str) -> None:
    """A handler that does not take exactly one parameter, the context, is refused."""
    namespace: dict[str, Any] = {}
    exec(handler_source, namespace)
    with pytest.raises(BotDefinitionError, match="exactly one parameter"):
        Bot("b").on("call.completed")(namespace["h"])


def test_context_must_agree_with_the_event_type() -> None:
    """``Context[CallAnswered]`` on a voicemail.received handler is refused, naming the fix."""
    bot = Bot("b")
    with pytest.raises(BotDefinitionError,
                       match=r"takes Context\[CallAnswered\].*Context\[VoicemailReceived\]"):
        @bot.on(VoicemailReceived)
        async def wrong(ctx: Context[CallAnswered]) -> None:
            """Wrong context."""


@pytest.mark.parametrize("annotation", [
    Context[CallCompleted], Context[CallEvent], Context[Event],
    Context[CallCompleted | CallAnswered], Context[Any], Context,
])
def test_contexts_that_admit_the_event_pass(annotation: Any) -> None:
    """The exact class, a base class, a union holding it, Any and a bare Context all pass."""
    async def handler(ctx):  # type: ignore[no-untyped-def]
        """Annotated below."""
    handler.__annotations__ = {"ctx": annotation}
    Bot("b").on(CallCompleted)(handler)


def test_a_handler_must_take_a_context() -> None:
    """A parameter annotated with something other than a Context is refused."""
    with pytest.raises(BotDefinitionError, match=r"takes VoicemailReceived, but a handler takes"):
        @Bot("b").on(VoicemailReceived)
        async def event_only(ctx: VoicemailReceived) -> None:
            """Not a context."""


def test_after_callback_takes_callback_ended() -> None:
    """An after_callback handler takes ``Context[CallbackEnded]``; another event is refused."""
    bot = Bot("b")

    @bot.after_callback
    async def ended(ctx: Context[CallbackEnded]) -> None:
        """Right."""

    with pytest.raises(BotDefinitionError, match=r"Context\[CallbackEnded\]"):
        @bot.after_callback
        async def old_style(ctx: Context[VoicemailReceived]) -> None:
            """Wrong: ctx.event is the CallbackEnded."""


def test_schedule_and_request_contexts_are_checked() -> None:
    """on_schedule takes ScheduleChanged and on_request takes Requested."""
    bot = Bot("b")
    with pytest.raises(BotDefinitionError, match=r"Context\[ScheduleChanged\]"):
        @bot.on_schedule()
        async def tick(ctx: Context[Requested]) -> None:
            """Wrong."""

    @bot.on_request("go")
    async def go(ctx: Context[Requested]) -> None:
        """Right."""


@pytest.mark.parametrize(("own", "decorator"), [
    (ScheduleChanged, "@bot.on_schedule"), (Requested, "@bot.on_request"),
    (CallbackEnded, "@bot.after_callback"), ("agentkit.schedule", "@bot.on_schedule"),
])
def test_own_events_point_at_their_decorator(own: Any, decorator: str) -> None:
    """agentkit's own events are not taken by ``@bot.on``; the message names the decorator."""
    with pytest.raises(BotDefinitionError, match=decorator):
        Bot("b").on(own)


@pytest.mark.parametrize(("event_type", "filters"), [
    ("voicemail.received", {"direction": "inbound"}),
    ("voicemail.received", {"status": "missed"}),
    ("transcript.ready", {"number": "+40264000111"}),
    ("recording.ready", {"user": "usr_1"}),
    ("call.completed", {"mailbox": "vm_1"}),
])
def test_filter_must_name_a_field_the_event_has(event_type: str, filters: dict[str, Any]) -> None:
    """A filter on a field the event type lacks can never apply, so it is refused."""
    (name,) = filters
    with pytest.raises(BotDefinitionError, match=rf"the filter {name}= can never apply"):
        Bot("b").on(event_type, **filters)


def test_filters_the_event_has_pass() -> None:
    """Filters on fields the event has are accepted."""
    Bot("b").on("voicemail.received", number="+40264000111", mailbox="vm_1")
    Bot("b").on("call.completed", direction="inbound", status="missed", user="usr_1")


class Greeting(BaseModel):
    text: str = "hello"


class Other(BaseModel):
    flag: bool = False


def test_settings_are_a_pydantic_model() -> None:
    """``settings=`` takes a pydantic model instance; a dict is refused with the way to fix it."""
    assert Bot("b", settings=Greeting()).settings == Greeting()
    with pytest.raises(BotDefinitionError, match=r"pydantic model"):
        Bot("b", settings={"text": "hi"})  # type: ignore[arg-type]


def test_settings_type_in_the_context_is_checked() -> None:
    """``Context[E, S]`` must name the bot's settings class."""
    bot = Bot("b", settings=Greeting())

    @bot.on(CallCompleted)
    async def right(ctx: Context[CallCompleted, Greeting]) -> None:
        """Right."""

    with pytest.raises(BotDefinitionError, match=r"settings of type Other.*Greeting"):
        @bot.on(CallAnswered)
        async def wrong(ctx: Context[CallAnswered, Other]) -> None:
            """Wrong."""


def test_forward_reference_to_a_later_class_is_read_from_its_text() -> None:
    """A string annotation naming a class defined later is checked once it can be read."""
    namespace: dict[str, Any] = {"Context": Context, "CallAnswered": CallAnswered}
    exec("async def h(ctx: 'Context[CallAnswered]') -> None: pass", namespace)
    with pytest.raises(BotDefinitionError, match=r"Context\[CallAnswered\]"):
        Bot("b").on(VoicemailReceived)(namespace["h"])
    exec("async def later(ctx: 'Context[NotYetDefined]') -> None: pass", namespace)
    Bot("b").on(VoicemailReceived)(namespace["later"])


def test_context_type_hints_resolve() -> None:
    """Context's annotations are real imports: typing.get_type_hints works on it."""
    import typing

    hints = typing.get_type_hints(Context)
    assert hints["history"].__name__ == "History"
    assert hints["actions"].__name__ == "Actions"


def test_a_handler_defined_in_a_module_names_that_module(tmp_path: Path) -> None:
    """Loaded from a bots folder, a broken module's error names its file and line."""
    from agentkit.runtime.loader import load_bots

    (tmp_path / "broken.py").write_text(
        "from agentkit import Bot, Context, VoicemailReceived\n"
        "bot = Bot('broken')\n"
        "\n"
        "@bot.on(VoicemailReceived, direction='inbound')\n"
        "async def h(ctx: Context[VoicemailReceived]) -> None:\n"
        "    pass\n"
    )
    with pytest.raises(BotDefinitionError) as caught:
        load_bots(str(tmp_path))
    assert Path(caught.value.file).name == "broken.py"
    assert caught.value.line == 4


BROKEN = {
    "filter the event lacks": (
        "@bot.on(VoicemailReceived, direction='inbound')\n"
        "async def h(ctx: Context[VoicemailReceived]) -> None:\n    pass\n",
        "the filter direction= can never apply to voicemail.received",
    ),
    "extra parameter": (
        "@bot.on(VoicemailReceived)\n"
        "async def h(ctx: Context[VoicemailReceived], extra: int) -> None:\n    pass\n",
        "exactly one parameter",
    ),
    "no parameter": (
        "@bot.on(VoicemailReceived)\nasync def h() -> None:\n    pass\n",
        "exactly one parameter",
    ),
    "wrong context": (
        "@bot.on(VoicemailReceived)\n"
        "async def h(ctx: Context[CallAnswered]) -> None:\n    pass\n",
        "Context[VoicemailReceived]",
    ),
    "mistyped type": (
        "@bot.on('voicemail.recieved')\nasync def h(ctx):\n    pass\n",
        "did you mean voicemail.received?",
    ),
    "not async": (
        "@bot.on(VoicemailReceived)\ndef h(ctx: Context[VoicemailReceived]) -> None:\n    pass\n",
        "async def",
    ),
}


async def test_agentkit_check_names_file_and_line_of_each_broken_bot(tmp_path: Path) -> None:
    """``agentkit check`` exits 2 on each broken bot, with ``bots/broken.py:4:`` and the fix."""
    import asyncio
    import os

    from tests.process import AGENTKIT

    header = ("from agentkit import Bot, CallAnswered, Context, VoicemailReceived\n"
              "bot = Bot('broken')\n\n")

    async def check(name: str, body: str) -> tuple[str, int, str]:
        project = tmp_path / name.replace(" ", "-")
        (project / "bots").mkdir(parents=True)
        (project / "prompts").mkdir()
        (project / "bots" / "broken.py").write_text(header + body)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTKIT_", "ODYGY_"))}
        process = await asyncio.create_subprocess_exec(
            AGENTKIT, "check", "--sandbox", "--bots", "bots", cwd=project, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode is not None
        return name, process.returncode, (out + err).decode()

    results = await asyncio.gather(*(check(name, body) for name, (body, _) in BROKEN.items()))
    for name, code, text in results:
        assert code == 2, (name, text)
        assert "bots/broken.py:4: " in text, (name, text)
        assert BROKEN[name][1] in text, (name, text)
