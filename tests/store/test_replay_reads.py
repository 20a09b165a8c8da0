"""What a replay reads from the store, on every engine: recorded API reads, calls oldest
first, a call's events with bodies, and how retention and erasure treat the reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from agentkit.erasure import number_forms
from agentkit.store import ApiRead, CallCursor, NewEvent, Store

T0 = datetime(2026, 4, 23, 10, 0, 0, tzinfo=UTC)
CALLER = "+442079460999"
OURS = "+40264000111"


def call_event(name: str, call: str, *, at: int = 0, type: str = "call.completed",
               data: dict[str, Any] | None = None, from_: str | None = None) -> NewEvent:
    """An event of ``call`` created ``at`` seconds after T0, its body holding ``data``."""
    body = {"id": name, "type": type, "data": {"id": call, **(data or {})}}
    return NewEvent(id=name, type=type, created_at=T0 + timedelta(seconds=at), call_id=call,
                    body=json.dumps(body).encode(), routable=False, from_number=from_)


def read(path: str, *, call_id: str | None = None, body: Any = None,
         at: datetime = T0) -> ApiRead:
    """A read of ``path`` made at ``at``, its body ``body`` as JSON."""
    return ApiRead(path=path, call_id=call_id, body=json.dumps(body or {}).encode(), read_at=at)


async def replayed(store: Store, **query: Any) -> list[str]:
    return [row.call_id for row in await store.replay_calls(**query)]


# recorded API reads


async def test_api_read_gives_back_what_was_recorded(store: Store) -> None:
    """A recorded read comes back whole: path, call, body bytes and time."""
    kept = read("/v1/calls/cal_1/transcript?format=json", call_id="cal_1",
                body={"segments": [{"text": "hello"}]})
    await store.record_api_reads([kept])
    assert await store.api_read("/v1/calls/cal_1/transcript?format=json") == kept


async def test_latest_read_of_a_path_replaces_the_earlier(store: Store) -> None:
    """Recording a path again keeps only the later read."""
    await store.record_api_reads([read("/v1/calls/cal_1", call_id="cal_1", body={"v": 1})])
    later = read("/v1/calls/cal_1", call_id="cal_1", body={"v": 2},
                 at=T0 + timedelta(seconds=5))
    await store.record_api_reads([later])
    assert await store.api_read("/v1/calls/cal_1") == later


async def test_an_older_read_recorded_late_does_not_replace_a_newer(store: Store) -> None:
    """A read made before the one kept (a slow writer) leaves the kept one as it is."""
    newer = read("/v1/calls/cal_1", call_id="cal_1", body={"v": 2},
                 at=T0 + timedelta(seconds=5))
    await store.record_api_reads([newer])
    await store.record_api_reads([read("/v1/calls/cal_1", call_id="cal_1", body={"v": 1})])
    assert await store.api_read("/v1/calls/cal_1") == newer


async def test_api_read_of_an_unknown_path_is_none(store: Store) -> None:
    """A path never read gives None, even when only its query differs from one read."""
    await store.record_api_reads([read("/v1/calls/cal_1?page=1")])
    assert await store.api_read("/v1/calls/cal_1?page=2") is None


# calls in time order


async def test_replay_calls_lists_oldest_first(store: Store) -> None:
    """Calls come by when they started, oldest first, whatever order they were stored in."""
    await store.add_events([call_event("e3", "cal_c", at=30), call_event("e1", "cal_a", at=10),
                            call_event("e2", "cal_b", at=20)])
    await store.add_events([call_event("e0", "cal_b", at=5)])
    assert await replayed(store) == ["cal_b", "cal_a", "cal_c"]


async def test_replay_calls_keeps_since_and_leaves_out_until(store: Store) -> None:
    """``since`` is included and ``until`` is not."""
    await store.add_events([call_event(f"e{i}", f"cal_{i}", at=10 * i) for i in range(5)])
    window = {"since": T0 + timedelta(seconds=10), "until": T0 + timedelta(seconds=30)}
    assert await replayed(store, **window) == ["cal_1", "cal_2"]


async def test_replay_calls_pages_through_ties_on_start(store: Store) -> None:
    """Pages after a cursor walk every call once, calls starting together ordered by id."""
    await store.add_events([call_event("e9", "cal_z", at=20), call_event("e1", "cal_d", at=0),
                            call_event("e2", "cal_c", at=10), call_event("e3", "cal_a", at=10),
                            call_event("e4", "cal_b", at=10)])
    seen: list[str] = []
    after: CallCursor | None = None
    while page := await store.replay_calls(after=after, limit=2):
        seen += [row.call_id for row in page]
        after = CallCursor(page[-1].started_at, page[-1].call_id)
    assert seen == ["cal_d", "cal_a", "cal_b", "cal_c", "cal_z"]


# a call's events


async def test_call_events_gives_bodies_in_the_order_received(store: Store) -> None:
    """A call's events come in the order they were stored, bodies whole; others' are left out."""
    first = call_event("evt_b", "cal_1", at=50, type="call.initiated")
    second = call_event("evt_a", "cal_1", at=10, type="call.completed")
    await store.add_events([first])
    await store.add_events([call_event("evt_x", "cal_2"), second])
    events = await store.call_events("cal_1")
    assert [(e.id, e.body) for e in events] == [("evt_b", first.body), ("evt_a", second.body)]
    assert events[0].seq < events[1].seq


# retention and erasure


async def test_purge_removes_reads_made_before_the_cutoff(store: Store) -> None:
    """Reads made before the cutoff go and are counted; later ones stay."""
    await store.record_api_reads([read("/v1/old", at=T0 - timedelta(seconds=1))])
    await store.record_api_reads([read("/v1/new", at=T0 + timedelta(seconds=1))])
    counts = await store.purge_older_than(T0)
    assert counts["api_reads"] == 1
    assert await store.api_read("/v1/old") is None
    assert await store.api_read("/v1/new") is not None


async def test_erase_removes_reads_mentioning_the_number(store: Store) -> None:
    """A read whose body holds the number in any form goes, whatever call it is of."""
    await store.record_api_reads([read("/v1/numbers", body={"numbers": ["442079460999"]})])
    await store.record_api_reads([read("/v1/other", body={"numbers": ["+442079460998"]})])
    counts = await store.erase_number(number_forms(CALLER))
    assert counts["api_reads"] == 1
    assert await store.api_read("/v1/numbers") is None
    assert await store.api_read("/v1/other") is not None


async def test_erase_removes_reads_of_calls_whose_events_went(store: Store) -> None:
    """The reads of a call whose events named the number go, though they do not name it."""
    await store.add_events([call_event("e1", "cal_1", data={"from": CALLER})])
    await store.record_api_reads([read("/v1/calls/cal_1/transcript", call_id="cal_1",
                                     body={"text": "call me on oh two oh seven"})])
    counts = await store.erase_number(number_forms(CALLER))
    assert (counts["events"], counts["api_reads"]) == (1, 1)
    assert await store.api_read("/v1/calls/cal_1/transcript") is None


async def test_erase_removes_reads_of_calls_from_the_number(store: Store) -> None:
    """The reads of a call the calls list has from the number go, though no body names it."""
    await store.add_events([call_event("e1", "cal_1", from_=CALLER)])
    await store.record_api_reads([read("/v1/calls/cal_1", call_id="cal_1")])
    counts = await store.erase_number(number_forms(CALLER))
    assert (counts["events"], counts["calls"], counts["api_reads"]) == (0, 1, 1)
    assert await store.api_read("/v1/calls/cal_1") is None


async def test_erase_keeps_reads_of_other_calls(store: Store) -> None:
    """Reads of calls the number had no part in, and reads of no call, stay."""
    await store.add_events([call_event("e1", "cal_1", data={"from": CALLER}),
                            call_event("e2", "cal_2", data={"from": OURS}, from_=OURS)])
    await store.record_api_reads([read("/v1/calls/cal_2", call_id="cal_2", body={"from": OURS})])
    await store.record_api_reads([read("/v1/flows", body={"flows": []})])
    counts = await store.erase_number(number_forms(CALLER))
    assert counts["api_reads"] == 0
    assert await store.api_read("/v1/calls/cal_2") is not None
    assert await store.api_read("/v1/flows") is not None
