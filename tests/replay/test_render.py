"""A replay report rendered for a terminal and as HTML: counts, totals, each call's differences."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from agentkit.replay.compare import ActionDifference, CallDifferences, FieldDifference
from agentkit.replay.render import WIDTH, render_html, render_html_body, render_text
from agentkit.replay.report import ReplayReport, SideTotals

STARTED = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
CALLER = "+442079460000"
SCRIPT = "<script>alert(1)</script>"


def differences(call_id: str = "cal_123", note: str = "Please call me back") -> CallDifferences:
    """A new callback, a callback whose urgency changed, a removed note, a changed field."""
    return CallDifferences(call_id=call_id, actions=[
        ActionDifference(change="new", kind="callback", event_id="evt_1",
                         name="requested-number",
                         candidate={"to": "+442079460999", "urgency": "high",
                                    "team": {"role": "agent"}, "decision": "call"}),
        ActionDifference(change="changed", kind="callback", event_id="evt_1",
                         live={"to": CALLER, "urgency": "normal", "decision": "call"},
                         candidate={"to": CALLER, "urgency": "urgent", "decision": "call"},
                         fields=["urgency"]),
        ActionDifference(change="removed", kind="notify", event_id="evt_2",
                         live={"title": "Voicemail", "text": note}),
    ], fields=[FieldDifference(event_id="evt_1", task="extract", field="urgency",
                               live="normal", candidate="urgent")])


def report(*calls: CallDifferences, **more: object) -> ReplayReport:
    """A replay of voicemail-v2 against voicemail-callback, with ``calls`` added."""
    made = ReplayReport(
        started_at=STARTED, finished_at=datetime(2026, 12, 2, 10, 5, tzinfo=UTC),
        candidate=["voicemail-v2"], against=["voicemail-callback"], model="gpt-4o-mini",
        since=datetime(2026, 11, 1, tzinfo=UTC), until=datetime(2026, 12, 1, tzinfo=UTC),
        live=SideTotals(actions={"callback": 10, "notify": 10}, model_answers=20,
                        prompt_tokens=4000, completion_tokens=234, cost_usd=0.0123),
        replayed=SideTotals(actions={"callback": 12, "notify": 9}, model_answers=20,
                            cached_answers=15, prompt_tokens=4100, completion_tokens=210,
                            cost_usd=0.0045),
        **more,  # type: ignore[arg-type]
    )
    for found in calls:
        made.add_call(found, started_at=datetime(2026, 11, 20, 9, 12, tzinfo=UTC),
                      from_number=CALLER)
    return made


def text_of(html: str) -> str:
    """The page's text, tags dropped and whitespace collapsed, entities left as they are."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_text_header_names_what_was_compared() -> None:
    """The header gives source, candidate, live bots, model, period and the call counts."""
    shown = render_text(report(differences(), differences("cal_456")))
    assert "source           replay" in shown
    assert "candidate        voicemail-v2" in shown
    assert "compared with    voicemail-callback" in shown
    assert "gpt-4o-mini" in shown
    assert "2026-11-01 00:00:00 UTC to 2026-12-01 00:00:00 UTC" in shown
    assert re.search(r"calls replayed\s+2\n", shown)
    assert re.search(r"calls differing\s+2\n", shown)


def test_text_counts_each_difference_word() -> None:
    """Each difference word is listed with its count over every call."""
    shown = render_text(report(differences(), differences("cal_456")))
    for word in ("new-callbacks", "changed-callbacks", "removed-notes", "changed-fields"):
        assert re.search(rf"^  {word}\s+2$", shown, re.M), word


def test_text_shows_both_sides_totals_side_by_side() -> None:
    """Tokens, cache hits, cost and actions by kind have a live and a candidate column."""
    shown = render_text(report(differences()))
    assert re.search(r"^Totals\s+live\s+candidate$", shown, re.M)
    assert re.search(r"^  tokens\s+4,234\s+4,310$", shown, re.M)
    assert re.search(r"^    from cache\s+0\s+15$", shown, re.M)
    assert re.search(r"^  cost USD\s+0\.0123\s+0\.0045$", shown, re.M)
    assert re.search(r"^  note actions\s+10\s+9$", shown, re.M)


def test_text_shows_a_changed_urgency_as_before_and_after() -> None:
    """A changed callback and a changed answer field each show their value before -> after."""
    shown = render_text(report(differences()))
    assert "  changed callback: urgency normal -> urgent\n" in shown
    assert '  changed field extract.urgency: "normal" -> "urgent"\n' in shown


def test_text_lists_new_and_removed_actions_under_their_call() -> None:
    """A call's line is followed by its new and removed actions with what they do."""
    shown = render_text(report(differences()))
    call_line = f"cal_123  2026-11-20 09:12:00 UTC  from {CALLER}"
    assert call_line in shown
    after = shown.split(call_line, 1)[1]
    assert '  new callback "requested-number": to +442079460999, urgency high,' in after
    assert '  removed note: title Voicemail, text "Please call me back"' in after


def test_text_says_no_differences_when_there_are_none() -> None:
    """A replay where nothing differs says so, and lists no calls."""
    shown = render_text(report(CallDifferences(call_id="cal_1")))
    assert "no differences" in shown
    assert "Calls that differ" not in shown


def test_text_says_how_many_calls_were_not_shown() -> None:
    """Calls beyond those kept in detail are counted in a line of their own."""
    shown = render_text(report(differences(), not_shown=12))
    assert "12 more calls differ, not shown" in shown


def test_text_gives_the_fail_on_verdict() -> None:
    """Failing words are named with their counts; a clean run says it passes --fail-on."""
    failed = report(differences(), fail_on=["new-callbacks", "removed-flow-changes"],
                    failing=["new-callbacks"])
    passed = report(fail_on=["new-callbacks", "changed-fields"])
    assert render_text(failed).rstrip().endswith("fails on: new-callbacks (1)")
    assert render_text(passed).rstrip().endswith("passes --fail-on new-callbacks,changed-fields")
    assert "fail" not in render_text(report()).split("Totals", 1)[1]


def test_text_lines_fit_the_width_and_carry_no_control_characters() -> None:
    """A long note and a caller's escape sequence stay within WIDTH, shown as codes."""
    long_note = "call me back " * 30 + "\x1b[2J"
    shown = render_text(report(differences(note=long_note), not_shown=123456))
    assert max(len(line) for line in shown.splitlines()) <= WIDTH
    assert "\x1b" not in shown


def test_text_shows_handler_errors() -> None:
    """A call's handler errors are listed under it."""
    made = report()
    made.add_call(CallDifferences(call_id="cal_9"), errors=["RuntimeError: boom"])
    assert "  handler error: RuntimeError: boom" in render_text(made)


def test_html_shows_counts_totals_and_changes() -> None:
    """The page has the counts, both sides' tokens and the changed urgency before → after."""
    page = text_of(render_html(report(differences(), differences("cal_456"))))
    assert "new-callbacks 2" in page and "changed-fields 2" in page
    assert "tokens 4,234 4,310" in page
    assert "urgency normal → urgent" in page
    assert "field extract.urgency evt_1 &#34;normal&#34; → &#34;urgent&#34;" in page


def test_html_escapes_a_callers_words() -> None:
    """A note's text with a script tag is escaped, never markup."""
    page = render_html(report(differences(note=f"Caller said {SCRIPT}")))
    assert SCRIPT not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_html_says_no_differences_not_shown_and_verdict() -> None:
    """An empty replay says "No differences"; not_shown and the fail-on verdict are shown."""
    assert "No differences." in render_html(report())
    page = text_of(render_html(report(differences(), not_shown=7, fail_on=["new-callbacks"],
                                      failing=["new-callbacks"])))
    assert "7 more calls differ, not shown" in page
    assert "fails on: new-callbacks (1)" in page


def test_html_page_is_self_contained_and_the_body_embeds() -> None:
    """The page carries its styles inline and fetches nothing; the body is the page's content
    without html, head or styles."""
    made = report(differences())
    page, body = render_html(made), render_html_body(made)
    assert page.startswith("<!doctype html>") and "<style>" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<html" not in body and "<style" not in body
    assert body.strip() in page


def test_html_body_links_calls_when_given_a_url() -> None:
    """With calls_url, each call id links to its page there."""
    body = render_html_body(report(differences()), calls_url="/console/calls/")
    assert '<a href="/console/calls/cal_123">cal_123</a>' in body
