"""A voicemail reading out a card over several sentences: no digit of it reaches model or chat."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.shipped.helpers import CALLER, harness, shipped, titled

# The simulator makes one transcript segment per sentence: the card spans two, the code a third.
WORDS = "My card number is 4929 7815. 3624 5819, and the CVV is... 739. Please call me back."
SECRETS = ["4929", "7815", "3624", "5819", "739"]


def leaked(value: Any) -> list[str]:
    text = json.dumps(value)
    return [s for s in SECRETS if s in text]


async def test_card_the_model_repeats_reaches_no_chat_note(tmp_path: Path) -> None:
    """The model sees the card masked; repeating card and code, it reaches the note masked."""
    async with harness(shipped("voicemail_callback"), tmp_path) as h:
        h.llm.reply({
            "caller_name": None, "urgency": "normal", "wants_callback": True,
            "reason": "gave card 4929 7815 3624 5819 and CVV 739 to pay",
            "callback_window": None, "callback_number": "+442079460999", "spam": False,
            "language": "en",
        })
        h.sim.leave_voicemail(CALLER, words=WORDS)
        await h.settle()
        (request,) = h.llm.requests
        (note,) = titled(h, "Voicemail from")
        assert [c.to for c in h.calls_placed()] == ["+442079460999"]
    assert leaked(request) == []
    assert "[card number removed]" in request["messages"][-1]["content"]
    assert leaked(note) == []
    assert note["text"] == "gave card [card number removed] and CVV [security code removed] to pay"


async def test_card_quoted_when_the_model_is_down_reaches_no_chat_note(tmp_path: Path) -> None:
    """With no model answer the note quotes the voicemail, card and code masked."""
    async with harness(shipped("voicemail_callback"), tmp_path) as h:
        h.llm.fail_next(1000, status=503)
        h.sim.leave_voicemail(CALLER, words=WORDS)
        await h.settle()
        (note,) = titled(h, "Voicemail from")
    assert leaked(note) == []
    assert "[card number removed]" in note["text"] and "[security code removed]" in note["text"]
