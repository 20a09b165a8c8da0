"""API reads kept live and served again to a replay: what is kept, what is served, what is not."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from agentkit.replay.readonly import ReadOnlyError
from agentkit.replay.recording import ReadRecorder, call_of, recorded_client
from agentkit.store.base import ApiRead
from agentkit.store.sqlite import SqliteStore
from agentkit.testing.harness import BotHarness
from tests.shipped.helpers import CALLER, harness, shipped, triage

API = "https://api.odygy.example/v1"


async def test_a_bots_reads_are_kept_with_their_call(tmp_path: Path) -> None:
    """The voicemail bot's reads of its call's transcript are kept under the call."""
    async with harness(shipped("voicemail_callback"), tmp_path) as h:
        h.llm.reply(triage())
        call = h.sim.leave_voicemail(CALLER, words="Please call me back about my order.")
        await h.settle()
        kept = await h.store.api_read(f"/calls/{call.call_id}/transcript")
    assert kept is not None and kept.call_id == call.call_id
    assert "my order" in json.loads(kept.body)["segments"][0]["text"]


async def test_a_spoken_card_number_is_not_kept(tmp_path: Path) -> None:
    """A card number read out in a voicemail is masked in the kept transcript."""
    async with BotHarness([shipped("voicemail_callback")], tmp_path) as h:
        h.llm.reply(triage())
        call = h.sim.leave_voicemail(
            CALLER, words="My card is 4111 1111 1111 1111, expiry 12/27, please call me.")
        await h.settle()
        kept = await h.store.api_read(f"/calls/{call.call_id}/transcript")
    assert kept is not None
    assert b"4111" not in kept.body and b"card number removed" in kept.body


async def test_kept_reads_are_served_and_writes_refused(tmp_path: Path) -> None:
    """A replay's client answers from the kept reads, sends a read never kept on (read-only),
    and refuses a write before it leaves the process."""
    sent: list[str] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        sent.append(f"{request.method} {request.url.path}")
        return httpx.Response(200, json={"data": [], "has_more": False})

    store = SqliteStore(tmp_path / "agentkit.db")
    await store.open()
    try:
        keep = ReadRecorder(store)
        await keep("/calls/cal_1", json.dumps({
            "id": "cal_1", "from": CALLER, "to": "+40264000111", "direction": "inbound",
            "status": "completed", "started_at": "2026-12-01T10:00:00Z"}).encode())
        await keep.aclose()
        api, transport = recorded_client(store, api_key="key", base_url=API,
                                         fallback=httpx.MockTransport(upstream))
        try:
            call = await api.calls.retrieve("cal_1")
            users = await api.users.list().to_list()
            with pytest.raises(ReadOnlyError):
                await api.calls.create(from_="+40264000111", to=CALLER)
        finally:
            await api.aclose()
    finally:
        await store.close()
    assert call.from_ == CALLER and users == []
    assert sent == ["GET /v1/users"]
    assert (transport.hits, transport.misses) == (1, 1)


def test_the_call_of_a_read() -> None:
    """A read names its call by its path; a listing names none."""
    assert call_of("/calls/cal_9/transcript") == "cal_9"
    assert call_of("/calls/cal_9") == "cal_9"
    assert call_of("/calls?from=%2B44") is None and call_of("/users") is None


async def test_a_read_kept_later_replaces_the_earlier(tmp_path: Path) -> None:
    """The latest read of a path is the one kept: a call read again after it ended."""
    store = SqliteStore(tmp_path / "agentkit.db")
    await store.open()
    try:
        keep = ReadRecorder(store)
        await keep("/calls/cal_1", b'{"status": "in_progress"}')
        await keep.flush()
        await keep("/calls/cal_1", b'{"status": "completed"}')
        await keep.aclose()
        kept = await store.api_read("/calls/cal_1")
    finally:
        await store.close()
    assert isinstance(kept, ApiRead) and json.loads(kept.body) == {"status": "completed"}


async def test_reads_wait_and_are_written_together_once(tmp_path: Path) -> None:
    """Reads are written in one go when flushed, not while the bot reads; a read whose body
    is unchanged is not written again."""
    store = SqliteStore(tmp_path / "agentkit.db")
    await store.open()
    try:
        keep = ReadRecorder(store, delay=3600)
        await keep("/calls/cal_1", b'{"v": 1}')
        await keep("/calls/cal_2", b'{"v": 2}')
        waiting = await store.api_read("/calls/cal_1")
        await keep.flush()
        first = await store.api_read("/calls/cal_1")
        await keep("/calls/cal_1", b'{"v": 1}')
        await keep.flush()
        again = await store.api_read("/calls/cal_1")
        second = await store.api_read("/calls/cal_2")
        await keep.aclose()
    finally:
        await store.close()
    assert waiting is None
    assert first is not None and again is not None and second is not None
    assert again.read_at == first.read_at
