"""The store's side of dialling, on every engine: claims under the caps, the do-not-call list,
the calls switch, one open callback per number."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from agentkit.store import Store
from agentkit.store.base import CALLS_PAUSED, DialClaim
from tests.stores import StoreFactory

NUMBER = "+442079460999"
NOW = datetime.now(UTC)
OTHER = "+442079460998"


def claim(key: str, attempt: int = 1, *, number: str = NUMBER, number_limit: int = 3,
          daily_limit: int = 500) -> DialClaim:
    return DialClaim(action_key=key, attempt=attempt, number=number, bot="b",
                     number_limit=number_limit, daily_limit=daily_limit,
                     since=datetime.now(UTC) - timedelta(days=1))


async def test_claims_stop_at_the_number_limit(store: Store) -> None:
    """The fourth call to one number in a day is refused, naming the cap."""
    grants = [await store.claim_dial(claim(f"k{n}")) for n in range(4)]
    assert [g.granted for g in grants] == [True, True, True, False]
    assert grants[3].refusal == "number_cap" and grants[3].number_count == 3
    assert await store.count_dial_claims(NUMBER, datetime.now(UTC) - timedelta(days=1)) == 3


async def test_claims_are_counted_in_a_window(store: Store) -> None:
    """Claims counted before a moment leave out the later ones, as a replay reads the caps as
    they stood when an event arrived."""
    before = datetime.now(UTC) - timedelta(seconds=1)
    for n in range(2):
        await store.claim_dial(claim(f"k{n}"))
    after = datetime.now(UTC) + timedelta(seconds=1)
    since = before - timedelta(days=1)
    assert await store.count_dial_claims(NUMBER, since, until=before) == 0
    assert await store.count_dial_claims(NUMBER, since, until=after) == 2
    assert await store.count_dial_claims(NUMBER, since) == 2


async def test_each_attempt_counts(store: Store) -> None:
    """Retries of one callback are claims of their own, counted against the cap."""
    assert (await store.claim_dial(claim("k", 1, number_limit=2))).granted
    assert (await store.claim_dial(claim("k", 2, number_limit=2))).granted
    refused = await store.claim_dial(claim("k", 3, number_limit=2))
    assert refused.refusal == "number_cap"


async def test_a_claim_made_again_is_granted_without_counting(store: Store) -> None:
    """The same action and attempt claimed twice (a run that died) is one call, not two."""
    first = await store.claim_dial(claim("k", 1, number_limit=1))
    again = await store.claim_dial(claim("k", 1, number_limit=1))
    assert first.granted and again.granted
    assert await store.count_dial_claims(NUMBER, datetime.now(UTC) - timedelta(days=1)) == 1


async def test_daily_limit_counts_every_number(store: Store) -> None:
    """The deployment's limit counts calls to every number together."""
    grants = [await store.claim_dial(claim(f"k{n}", number=f"+44207946{n:04d}", daily_limit=3))
              for n in range(4)]
    assert [g.refusal for g in grants] == [None, None, None, "daily_max"]


async def test_claims_before_the_window_do_not_count(store: Store) -> None:
    """Only claims since ``since`` count: yesterday's calls do not hold today's back."""
    assert (await store.claim_dial(claim("old", number_limit=1))).granted
    later = DialClaim(action_key="new", attempt=1, number=NUMBER, bot="b", number_limit=1,
                      daily_limit=500, since=datetime.now(UTC) + timedelta(seconds=1))
    assert (await store.claim_dial(later)).granted


async def test_concurrent_claims_from_many_stores_stay_within_the_cap(
    make_store: StoreFactory,
) -> None:
    """Ten claims at once, from four stores on one database, grant exactly the cap."""
    stores = [await make_store() for _ in range(4)]
    grants = await asyncio.gather(*(
        stores[n % 4].claim_dial(claim(f"k{n}", number_limit=3)) for n in range(10)
    ))
    assert sum(g.granted for g in grants) == 3
    assert {g.refusal for g in grants if not g.granted} == {"number_cap"}


async def test_paused_calls_are_refused(store: Store) -> None:
    """While the calls switch is on, no claim is granted; off again, they are."""
    assert await store.set_switch(CALLS_PAUSED, True, changed_by="ops")
    assert (await store.claim_dial(claim("k"))).refusal == "paused"
    assert await store.set_switch(CALLS_PAUSED, False, changed_by="ops")
    assert (await store.claim_dial(claim("k"))).granted


async def test_switch_reports_only_changes(store: Store) -> None:
    """Setting a switch to what it is reports no change; it starts off."""
    assert await store.switch(CALLS_PAUSED) is False
    assert await store.set_switch(CALLS_PAUSED, False, changed_by="ops") is False
    assert await store.set_switch(CALLS_PAUSED, True, changed_by="ops") is True
    assert await store.set_switch(CALLS_PAUSED, True, changed_by="ops") is False
    assert await store.switch(CALLS_PAUSED) is True


async def test_do_not_call_refuses_claims(store: Store) -> None:
    """A number on the do-not-call list is refused; off the list, it may be called."""
    assert await store.add_do_not_call(NUMBER, reason="asked us to stop", added_by="ops")
    assert not await store.add_do_not_call(NUMBER, reason="again", added_by="ops")
    entry = await store.do_not_call(NUMBER)
    assert entry is not None and (entry.reason, entry.added_by) == ("asked us to stop", "ops")
    assert (await store.claim_dial(claim("k"))).refusal == "do_not_call"
    assert [e.number for e in await store.do_not_call_list()] == [NUMBER]
    assert await store.remove_do_not_call(NUMBER)
    assert not await store.remove_do_not_call(NUMBER)
    assert (await store.claim_dial(claim("k"))).granted


async def test_one_open_callback_per_number(store: Store) -> None:
    """The first callback holds the number; others get its key until it is released."""
    for key in ("a", "b"):
        await store.claim_action(key, event_id=f"evt_{key}", bot="b", kind="callback", detail={})
    assert await store.hold_callback(NUMBER, "callback", "a", asked_at=NOW) == "a"
    assert await store.hold_callback(NUMBER, "callback", "b", asked_at=NOW) == "a"
    assert await store.hold_callback(NUMBER, "callback", "a", asked_at=NOW) == "a"
    assert await store.hold_callback(NUMBER, "escalation", "b", asked_at=NOW) == "b"
    await store.release_callback(NUMBER, "callback", "a", reached=False)
    assert await store.hold_callback(NUMBER, "callback", "b", asked_at=NOW) == "b"


async def test_a_finished_holder_gives_way(store: Store) -> None:
    """A holder whose action has finished (or was never recorded) no longer holds the number."""
    await store.claim_action("a", event_id="evt_a", bot="b", kind="callback", detail={})
    await store.claim_action("b", event_id="evt_b", bot="b", kind="callback", detail={})
    assert await store.hold_callback(NUMBER, "callback", "a", asked_at=NOW) == "a"
    await store.settle_action("a", "done", {"outcome": "reached"})
    assert await store.hold_callback(NUMBER, "callback", "b", asked_at=NOW) == "b"
    assert await store.hold_callback(OTHER, "callback", "ghost", asked_at=NOW) == "ghost"
    assert await store.hold_callback(OTHER, "callback", "b", asked_at=NOW) == "b"


async def test_a_callback_that_reached_the_caller_answers_earlier_requests(store: Store) -> None:
    """A request made before a callback reached the caller joins it; a later one starts anew."""
    for key in ("a", "b", "c"):
        await store.claim_action(key, event_id=f"evt_{key}", bot="b", kind="callback", detail={})
    before = datetime.now(UTC) - timedelta(seconds=5)
    assert await store.hold_callback(NUMBER, "callback", "a", asked_at=before) == "a"
    await store.settle_action("a", "done", {"outcome": "reached"})
    await store.release_callback(NUMBER, "callback", "a", reached=True)
    assert await store.hold_callback(NUMBER, "callback", "b", asked_at=before) == "a"
    after = datetime.now(UTC) + timedelta(seconds=5)
    assert await store.hold_callback(NUMBER, "callback", "c", asked_at=after) == "c"


async def test_concurrent_holds_leave_one_holder(make_store: StoreFactory) -> None:
    """Ten callbacks to one number asked at once, from four stores, find one holder."""
    stores = [await make_store() for _ in range(4)]
    for n in range(10):
        await stores[0].claim_action(f"k{n}", event_id=f"evt_{n}", bot="b", kind="callback",
                                     detail={})
    holders = await asyncio.gather(*(
        stores[n % 4].hold_callback(NUMBER, "callback", f"k{n}", asked_at=NOW) for n in range(10)
    ))
    assert len(set(holders)) == 1


async def test_append_to_action_keeps_every_item(make_store: StoreFactory) -> None:
    """Items appended at once from several stores are all kept, beside the rest of the detail."""
    stores = [await make_store() for _ in range(3)]
    await stores[0].claim_action("k", event_id="evt_k", bot="b", kind="callback",
                                 detail={"to": NUMBER})
    await asyncio.gather(*(
        stores[n % 3].append_to_action("k", "merged", {"n": n}) for n in range(9)
    ))
    record = await stores[0].get_action("k")
    assert record is not None
    assert sorted(item["n"] for item in record.detail["merged"]) == list(range(9))
    assert record.detail["to"] == NUMBER
