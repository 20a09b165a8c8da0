"""Erasing a number: its forms, and what `erase` removes from a store of each engine."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from agentkit.erasure import erase, number_forms
from agentkit.errors import ConfigError
from agentkit.store import CachedAnswer, ModelAnswer, NewEvent, PlacedCall, Store
from agentkit.store.privacy import ERASED

NUMBER = "+442079460999"


def event(name: str, data: dict[str, str], *, routable: bool = False) -> NewEvent:
    body = {"id": name, "type": "voicemail.received", "created_at": "2026-04-23T10:12:45Z",
            "data": data}
    return NewEvent(id=name, type="voicemail.received", created_at=datetime.now(UTC),
                    call_id=f"cal_{name}", body=json.dumps(body).encode(), routable=routable)


def holds_number(text: str) -> bool:
    return any(form in text for form in number_forms(NUMBER))


# forms


def test_forms_of_a_number_start_with_e164() -> None:
    """A number written with spaces gives its E.164 form first, then its digits, then the rest."""
    forms = number_forms("+44 20 7946 0999")
    assert forms[:2] == [NUMBER, "442079460999"]
    assert {"02079460999", "020 7946 0999", "+44 20 7946 0999"} <= set(forms)


@pytest.mark.parametrize("written", ["+44 (0)20 7946 0999", "0044 20 7946 0999", "442079460999"])
def test_forms_read_the_number_however_it_is_written(written: str) -> None:
    """The same number written another way gives the same forms."""
    assert number_forms(written) == number_forms(NUMBER)


def test_national_number_is_read_in_the_region_given() -> None:
    """A national number is read in the region passed with it."""
    assert number_forms("020 7946 0999", region="GB")[0] == NUMBER


@pytest.mark.parametrize("bad", ["hello", "", "   ", "12", "020 7946 0999"])
def test_forms_refuse_what_is_not_a_phone_number(bad: str) -> None:
    """Input that is not a full phone number raises ConfigError saying how to write one."""
    with pytest.raises(ConfigError, match=r"\+442079460999"):
        number_forms(bad)


# erase


async def test_erase_removes_events_mentioning_the_number_in_any_form(store: Store) -> None:
    """Events naming the number as E.164, as digits or in a transcript's national form all go."""
    await store.add_events([
        event("evt_from", {"from": NUMBER, "to": "+40264000111"}),
        event("evt_digits", {"caller": "442079460999"}),
        event("evt_words", {"text": "Please call me back on 020 7946 0999, thanks"}),
    ])
    counts = await erase(store, NUMBER, requested_by="dpo")
    assert counts["events"] == 3
    assert await store.count_events() == 0


async def test_erase_leaves_other_numbers_events(store: Store) -> None:
    """Events of other numbers stay, even one whose number begins with the erased one's digits."""
    await store.add_events([
        event("evt_other", {"from": "+442079460998", "to": "+40264000111"}),
        event("evt_longer", {"from": "+4420794609991", "to": "+40264000111"}),
    ])
    counts = await erase(store, NUMBER, requested_by="dpo")
    assert counts["events"] == 0
    assert await store.count_events() == 2


async def test_erase_removes_the_events_jobs_open_ones_too(store: Store) -> None:
    """An erased event's pending route job goes with it: no bot runs on it afterwards."""
    await store.add_events([event("evt_from", {"from": NUMBER}, routable=True)])
    counts = await erase(store, NUMBER, requested_by="dpo")
    assert counts["jobs"] == 1
    assert await store.jobs_for_event("evt_from") == []
    assert await store.lease("worker", 10, 30) == []


async def test_erase_replaces_the_number_in_action_details(store: Store) -> None:
    """An action keeps its row with the number replaced by a marker and the caller's words cut."""
    detail = {"to": NUMBER, "caller": "442079460999", "urgency": "high",
              "reason": "Ana on 020 7946 0999 wants a callback", "call_ids": ["cal_1"]}
    await store.claim_action("evt_1:b:callback", event_id="evt_1", bot="b", kind="callback",
                             detail=detail)
    counts = await erase(store, NUMBER, requested_by="dpo")
    record = await store.get_action("evt_1:b:callback")
    assert counts["actions"] == 1
    assert record is not None
    assert (record.detail["to"], record.detail["caller"]) == (ERASED, ERASED)
    assert record.detail["urgency"] == "high" and record.detail["call_ids"] == ["cal_1"]
    assert not holds_number(json.dumps(record.detail))


async def test_erase_leaves_other_actions_alone(store: Store) -> None:
    """An action about another number keeps its detail as it was."""
    detail = {"to": "+442079460998", "reason": "wants a callback"}
    await store.claim_action("evt_2:b:callback", event_id="evt_2", bot="b", kind="callback",
                             detail=detail)
    await erase(store, NUMBER, requested_by="dpo")
    record = await store.get_action("evt_2:b:callback")
    assert record is not None and record.detail == detail


async def test_erase_removes_model_answers_naming_the_number(store: Store) -> None:
    """A cached model answer holding the number goes; one that does not stays."""
    for key, text in (("k_with", f'{{"callback_number": "{NUMBER}"}}'),
                      ("k_without", '{"urgency": "normal"}')):
        await store.cache_answer(CachedAnswer(key=key, model="m", answer=text,
                                              prompt_tokens=1, completion_tokens=1))
    counts = await erase(store, NUMBER, requested_by="dpo")
    assert counts["llm_cache"] == 1
    assert await store.cached_answer("k_with") is None
    assert await store.cached_answer("k_without") is not None


async def test_erase_replaces_the_number_of_placed_calls(store: Store) -> None:
    """A call agentkit placed to the number is kept, with the number replaced by the marker."""
    await store.record_placed_call(PlacedCall(call_id="cal_9", action_key="evt_1:b:callback",
                                              number=NUMBER, attempt=1,
                                              created_at=datetime.now(UTC)))
    counts = await erase(store, NUMBER, requested_by="dpo")
    placed = await store.placed_call("cal_9")
    assert counts["placed_calls"] == 1
    assert placed is not None and placed.number == ERASED


async def test_erase_replaces_the_number_in_the_calls_list(store: Store) -> None:
    """A call from the number stays listed, with the number replaced by the marker."""
    await store.add_events([NewEvent(
        id="evt_from", type="call.completed", created_at=datetime.now(UTC), call_id="cal_1",
        body=json.dumps({"data": {"from": NUMBER}}).encode(), routable=False,
        from_number=NUMBER, to_number="+40264000111", direction="inbound",
    )])
    counts = await erase(store, NUMBER, requested_by="dpo")
    call = await store.get_call("cal_1")
    assert counts["calls"] == 1
    assert call is not None and (call.from_number, call.to_number) == (ERASED, "+40264000111")


async def test_erase_removes_recorded_model_answers_naming_the_number(store: Store) -> None:
    """A model answer kept for a call's timeline goes if it holds the number."""
    await store.add_events([event("evt_1", {"to": "+40264000111"})])
    for text in (f'{{"callback_number": "{NUMBER}"}}', '{"urgency": "normal"}'):
        await store.record_model_answer(ModelAnswer(
            event_id="evt_1", bot="b", task="extract", model="m", prompt_tokens=1,
            completion_tokens=1, cost_usd=0.0, cached=False, answer=text,
            created_at=datetime.now(UTC)))
    counts = await erase(store, NUMBER, requested_by="dpo")
    kept = await store.model_answers_of_call("cal_evt_1")
    assert counts["model_answers"] == 1
    assert [a.answer for a in kept] == ['{"urgency": "normal"}']


async def test_erase_records_itself_without_the_number(store: Store) -> None:
    """The erase is an action of its own: who asked, what went, the last digits, not the number."""
    await store.add_events([event("evt_from", {"from": NUMBER})])
    counts = await erase(store, "+44 20 7946 0999", requested_by="dpo")
    (record,) = await store.actions_of_kind("erase")
    assert record.state == "done"
    assert record.detail["removed"] == counts
    assert record.detail["requested_by"] == "dpo"
    assert (record.detail["region"], record.detail["number_ending"]) == ("GB", "999")
    assert not holds_number(json.dumps(record.detail))


async def test_erase_of_bad_input_changes_nothing(store: Store) -> None:
    """Erasing what is not a number raises ConfigError and records nothing."""
    with pytest.raises(ConfigError):
        await erase(store, "hello", requested_by="dpo")
    assert await store.actions_of_kind("erase") == []
