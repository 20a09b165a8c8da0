"""The console's pages over a real pipeline: the shipped voicemail bot, the simulator, the store."""

from __future__ import annotations

import html
import re
from pathlib import Path

from agentkit.console.search import read_search
from agentkit.testing.harness import BotHarness
from tests.console.support import make_console
from tests.shipped.helpers import CALLER, CLOSED, WORDS, harness, shipped, triage


async def voicemail(h: BotHarness, words: str = WORDS, caller: str = CALLER) -> str:
    """Leave a voicemail, let the pipeline finish; the voicemail's call id."""
    h.llm.reply(triage())
    h.sim.leave_voicemail(caller, words=words)
    await h.settle()
    return h.sim.deliveries.emitted("voicemail.received")[-1].data["call_id"]


def rows(page: str) -> list[str]:
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", body, re.S)


async def test_a_call_is_found_by_its_callers_number_in_any_format(tmp_path: Path) -> None:
    """International, spaced, 00-prefixed and national (in a configured country) forms all
    find the voicemail's call; another number finds nothing."""
    async with harness(shipped("voicemail_callback"), tmp_path) as h:
        call_id = await voicemail(h)
        console = make_console(h)
        await console.login()
        for typed in ("+442079460000", "+44 20 7946 0000", "0044 20 7946 0000",
                      "020 7946 0000", "(020) 7946-0000"):
            status, page = await console.get(f"/console/calls?q={typed}")
            assert status == 200
            assert f"/console/calls/{call_id}" in page, typed
        _, page = await console.get("/console/calls?q=%2B442079460999")
    assert "No calls match" in page


async def test_each_row_says_what_happened(tmp_path: Path) -> None:
    """The voicemail's row gives caller, number called, bot, and "callback reached after 1
    attempt, note posted"; the callback's own call is listed as outbound."""
    async with harness(shipped("voicemail_callback"), tmp_path) as h:
        call_id = await voicemail(h)
        console = make_console(h)
        await console.login()
        _, page = await console.get("/console/calls")
    (row,) = [r for r in rows(page) if call_id in r]
    assert CALLER in row and "+40264000111" in row and "voicemail-callback" in row
    assert "callback reached after 1 attempt, note posted" in row
    assert any("outbound" in r and CALLER in r for r in rows(page) if call_id not in r)


async def test_search_by_bot_outcome_and_call_id(tmp_path: Path) -> None:
    """A bot's name, an outcome word and a call id each narrow the list."""
    async with harness(shipped("voicemail_callback"), tmp_path) as h:
        call_id = await voicemail(h)
        console = make_console(h)
        await console.login()
        for query in ("voicemail-callback", "reached", "note", call_id, f"call:{call_id}"):
            _, page = await console.get(f"/console/calls?q={query}")
            assert f"/console/calls/{call_id}" in page, query
        for query in ("escalated", "dead", "bot:nobody", "cal_unknown"):
            _, page = await console.get(f"/console/calls?q={query}")
            assert f"/console/calls/{call_id}" not in page, query


async def test_the_timeline_follows_the_call_end_to_end(tmp_path: Path) -> None:
    """The voicemail's page lists its deliveries, the bot's run, the model's answer (task,
    model, tokens, answer), the callback with its attempt and outcome, and the note's text."""
    async with harness(shipped("voicemail_callback"), tmp_path) as h:
        call_id = await voicemail(h)
        console = make_console(h)
        await console.login()
        status, page = await console.get(f"/console/calls/{call_id}")
        placed = h.calls_placed()[0].id
    assert status == 200
    text = html.unescape(page)
    for delivery in ("voicemail.received", "transcript.ready", "call.completed"):
        assert delivery in text
    assert "voicemail-callback ran" in text
    assert "model: extract" in text and '"urgency": "high"' in text
    assert "from the cache" in text and "tokens" in text
    assert "callback" in text and "reached" in text
    assert f"/console/calls/{placed}" in page and "completed" in text
    assert "note: Voicemail from Ana Pop" in text and "invoice 4011" in text
    # in time order: the voicemail's delivery before the callback before the outcome note
    assert text.index("voicemail.received") < text.index("voicemail-callback ran")


async def test_the_callbacks_own_call_points_back_to_the_voicemail(tmp_path: Path) -> None:
    """The page of a call agentkit placed says which callback placed it, for which call."""
    async with harness(shipped("voicemail_callback"), tmp_path) as h:
        call_id = await voicemail(h)
        console = make_console(h)
        await console.login()
        _, page = await console.get(f"/console/calls/{h.calls_placed()[0].id}")
    assert "agentkit placed this call: attempt 1" in page
    assert f"/console/calls/{call_id}" in page


async def test_a_transcript_with_html_in_it_is_shown_as_text(tmp_path: Path) -> None:
    """A caller who says a script tag appears as text in the transcript and the note."""
    words = "<script>alert(1)</script> <img src=x onerror=alert(2)> please call me back"
    async with harness(shipped("voicemail_callback"), tmp_path) as h:
        call_id = await voicemail(h, words=words)
        console = make_console(h)
        await console.login()
        _, timeline = await console.get(f"/console/calls/{call_id}")
        status, transcript = await console.get(f"/console/calls/{call_id}/transcript")
    assert status == 200
    for page in (timeline, transcript):
        assert "<script>alert" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in transcript
    assert 'data-load="/console/calls/' in timeline


async def test_payment_data_is_masked_in_the_transcript(tmp_path: Path) -> None:
    """A card number read out in the voicemail is masked in the console's transcript."""
    words = "My card is 4111 1111 1111 1111, please call me back."
    async with harness(shipped("voicemail_callback"), tmp_path) as h:
        call_id = await voicemail(h, words=words)
        console = make_console(h)
        await console.login()
        _, transcript = await console.get(f"/console/calls/{call_id}/transcript")
        _, timeline = await console.get(f"/console/calls/{call_id}")
    assert "4111 1111 1111 1111" not in transcript and "4111" not in timeline
    assert "call me back" in transcript


async def test_unknown_ids_are_404(tmp_path: Path) -> None:
    """A call, transcript or dead letter agentkit does not know answers 404."""
    async with BotHarness([], tmp_path) as h:
        console = make_console(h)
        await console.login()
        assert (await console.client.get("/console/calls/cal_nothing")).status_code == 404
        assert (await console.client.get(
            "/console/calls/cal_nothing/transcript")).status_code == 404
        assert (await console.post("/console/dead/424242/retry")).status_code == 404
        assert (await console.post("/console/dead/424242/discard",
                                   reason="gone")).status_code == 404
        assert (await console.post("/console/callbacks/cancel", key="nope")).status_code == 404
        assert (await console.post("/console/flows/revert", key="nope")).status_code == 404


async def test_the_list_pages_through_older_calls(tmp_path: Path) -> None:
    """With more calls than a page holds, "Older calls" leads to the rest, none twice; a
    cursor the console did not make is a 400."""
    async with harness(shipped("voicemail_callback"), tmp_path, model=False) as h:
        for n in range(3):
            h.sim.leave_voicemail(f"+44207946000{n}", words="Call me back.")
        await h.settle()
        console = make_console(h, page_size=2)
        await console.login()
        seen: list[str] = []
        path = "/console/calls"
        pages = 0
        while path:
            _, page = await console.get(path)
            pages += 1
            seen += re.findall(r'href="/console/calls/(cal_[^"/]+)"', page)
            found = re.search(r'rel="next" href="([^"]+)"', page)
            path = html.unescape(found.group(1)) if found else ""
            assert pages < 20
        bad = await console.client.get("/console/calls?before=not-a-cursor")
    assert len(seen) == len(set(seen)) == 6  # three voicemails and three callbacks
    assert pages == 3
    assert bad.status_code == 400
    assert "start from the first page" in await bad.get_data(as_text=True)


async def test_a_fragment_is_the_live_part_alone(tmp_path: Path) -> None:
    """``?fragment=1`` answers the part a page refreshes, without the page around it."""
    async with harness(shipped("voicemail_callback"), tmp_path) as h:
        call_id = await voicemail(h)
        console = make_console(h)
        await console.login()
        _, page = await console.get("/console/calls")
        _, fragment = await console.get("/console/calls?fragment=1")
    assert 'data-refresh="/console/calls?fragment=1"' in page
    assert "<html" not in fragment and call_id in fragment


async def test_the_health_page_has_the_store_figures(tmp_path: Path) -> None:
    """Queue depth, jobs per minute, dead letters, model spend and the call budget show."""
    async with harness(shipped("voicemail_callback"), tmp_path) as h:
        await voicemail(h)
        console = make_console(h)
        await console.login()
        _, page = await console.get("/console/health")
        figures = await h.store.health()
    text = html.unescape(page)
    assert f"{figures.done_last_minute} finished in the last 60 s" in text
    assert f"{figures.dial_claims_24h} of {h.settings.dial_daily_max} outbound calls" in text
    assert figures.dial_claims_24h == 1 and figures.done_last_minute > 0


def test_the_search_box_reads_numbers_bots_and_outcomes() -> None:
    """Numbers in any format become E.164; bots and outcome words are recognised."""
    bots = {"voicemail-callback"}
    assert read_search("020 7946 0000", bots=bots, regions=("GB",)).query.numbers == (
        "+442079460000",)
    assert read_search("0040 264 000 111", bots=bots).query.numbers == ("+40264000111",)
    assert read_search("voicemail-callback", bots=bots).query.bot == "voicemail-callback"
    assert read_search("dead letter", bots=bots).query.outcome == "dead"
    assert read_search("not reached", bots=bots).query.outcome == "unreached"
    assert read_search("cal_01H", bots=bots).query.call_id == "cal_01H"
    assert read_search("  ", bots=bots).query == read_search("", bots=bots).query


async def test_a_scheduled_callback_is_listed_for_cancelling(tmp_path: Path) -> None:
    """Outside hours, the callbacks page lists the planned callback with a cancel button."""
    async with harness(shipped("voicemail_callback"), tmp_path, env=CLOSED) as h:
        await voicemail(h)
        console = make_console(h)
        await console.login()
        _, page = await console.get("/console/callbacks")
    assert CALLER in page and "scheduled" in page
    assert 'action="/console/callbacks/cancel"' in page


async def test_chat_notes_link_to_the_calls_page(tmp_path: Path) -> None:
    """With AGENTKIT_PUBLIC_URL set, a note about a call links to its console page."""
    env = {"AGENTKIT_PUBLIC_URL": "https://ops.example.com/"}
    async with harness(shipped("voicemail_callback"), tmp_path, env=env) as h:
        call_id = await voicemail(h)
        notes = [m for m in h.chat_messages() if m["title"].startswith("Voicemail from")]
    assert notes[0]["links"]["Console"] == f"https://ops.example.com/console/calls/{call_id}"


async def test_without_a_public_url_notes_carry_no_console_link(tmp_path: Path) -> None:
    """Unset, no link is made up: the console's address is not known."""
    async with harness(shipped("voicemail_callback"), tmp_path) as h:
        await voicemail(h)
        notes = h.chat_messages()
    assert notes and all("Console" not in m.get("links", {}) for m in notes)
