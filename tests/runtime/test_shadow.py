"""Shadow bots: they run on every event and record what they would do, and do nothing.

Judged where it matters: the simulator (no call placed, no flow changed) and the
chat sinks (no note in the team's channel; in AGENTKIT_SHADOW_CHANNEL, marked).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agentkit import Bot, BotDefinitionError, ConfigError, Context, OdygyClient, Settings
from agentkit.runtime.environment import BotEnvironment
from agentkit.store.sqlite import SqliteStore
from agentkit.testing import BotHarness, HttpRecorder
from tests.shipped.helpers import CALLER, WORDS, harness, shipped, triage


def follow_up_bot(name: str, **options: Any) -> Bot:
    """On a voicemail: a callback and a note."""
    bot = Bot(name, **options)

    @bot.on("voicemail.received")
    async def follow_up(ctx: Context[Any]) -> None:
        result = await ctx.actions.callback(reason="asked for a call")
        await ctx.actions.notify(f"{name}: callback {result.status}")

    return bot


async def test_shadow_bot_places_no_call_and_posts_no_note(tmp_path: Path) -> None:
    """AGENTKIT_SHADOW: the voicemail bot triages, and neither dials nor posts; its actions
    are recorded as what it would do."""
    async with harness(shipped("voicemail_callback"), tmp_path,
                       env={"AGENTKIT_SHADOW": "voicemail-callback"}) as h:
        h.llm.reply(triage())
        h.sim.leave_voicemail(CALLER, words=WORDS)
        await h.settle()
        (voicemail,) = h.sim.deliveries.emitted("voicemail.received")
        actions = await h.actions(voicemail.id)
    assert h.calls_placed() == []
    assert h.chat_messages() == []
    assert len(h.llm.requests) == 1
    assert sorted(a.kind for a in actions) == ["callback", "notify"]
    for action in actions:
        assert (action.state, action.detail["outcome"]) == ("done", "dry_run")
        assert action.detail["dry_run"] is True and action.detail["shadow"] is True
    callback = next(a for a in actions if a.kind == "callback")
    assert callback.detail["to"] == CALLER


async def test_shadow_notes_go_to_the_shadow_channel_marked(tmp_path: Path) -> None:
    """With AGENTKIT_SHADOW_CHANNEL, a shadow bot's note goes there, marked [shadow], and
    never to the team's channel; still no call."""
    async with HttpRecorder() as shadow_sink:
        async with BotHarness([follow_up_bot("candidate", mode="shadow")], tmp_path, env={
                "AGENTKIT_SHADOW_CHANNEL": shadow_sink.url + "/shadow"}) as h:
            h.sim.leave_voicemail(CALLER, words="Call me back.")
            await h.settle()
            (note,) = [r.json() for r in await shadow_sink.wait_for(1)]
    assert note["title"] == "[shadow] candidate"
    assert note["text"] == "candidate: callback dry_run"
    assert note["fields"]["Shadow"] == "candidate would post this; it did nothing"
    assert h.chat_messages() == []
    assert h.calls_placed() == []


async def test_live_bot_acts_beside_its_shadow(tmp_path: Path) -> None:
    """A live bot and a shadow candidate on the same voicemail: one call, one note, the
    live bot's."""
    bots = [follow_up_bot("live"), follow_up_bot("candidate", mode="shadow")]
    async with BotHarness(bots, tmp_path) as h:
        h.sim.leave_voicemail(CALLER, words="Call me back.")
        await h.settle()
        notes = [m["text"] for m in h.chat_messages()]
        (voicemail,) = h.sim.deliveries.emitted("voicemail.received")
        actions = await h.actions(voicemail.id)
    assert [c.to for c in h.calls_placed()] == [CALLER]
    assert notes == ["live: callback placed"]
    shadow = {a.kind: a.detail.get("shadow") for a in actions if a.bot == "candidate"}
    assert shadow == {"callback": True, "notify": True}


async def test_switching_to_live_needs_nothing_else(tmp_path: Path) -> None:
    """The same bot without mode="shadow" acts on the next voicemail: one call, one note."""
    async with BotHarness([follow_up_bot("candidate")], tmp_path) as h:
        h.sim.leave_voicemail(CALLER, words="Call me back.")
        await h.settle()
        notes = [m["text"] for m in h.chat_messages()]
    assert [c.to for c in h.calls_placed()] == [CALLER]
    assert notes == ["candidate: callback placed"]


async def test_unknown_shadow_bot_stops_start_up(tmp_path: Path) -> None:
    """AGENTKIT_SHADOW naming no loaded bot (a typo would leave a bot acting) is refused."""
    settings = Settings.from_env({"AGENTKIT_SHADOW": "voicemail-calback"}, sandbox=True,
                                 env_file=None)
    api = OdygyClient(api_key="key", base_url="http://127.0.0.1:9/v1")
    try:
        with pytest.raises(ConfigError, match="AGENTKIT_SHADOW names voicemail-calback"):
            BotEnvironment(settings, api=api, store=SqliteStore(tmp_path / "a.db"),
                           bots=[follow_up_bot("voicemail-callback")])
    finally:
        await api.aclose()


def test_unknown_mode_is_a_definition_error() -> None:
    """Bot(mode=...) takes live or shadow; anything else fails when the bot is declared."""
    with pytest.raises(BotDefinitionError, match="'live', or 'shadow'"):
        Bot("x", mode="dry")  # type: ignore[arg-type]
