"""Chat-ops notifications: payloads, retries, isolation of channels, masking, secrecy."""

from __future__ import annotations

import asyncio
import io
import time

import httpx
import pytest
from structlog.testing import capture_logs

from agentkit.actions.notify import (
    ADAPTIVE_CARD,
    Channel,
    ChatMessage,
    ConsoleChannel,
    Notifier,
    NotifyError,
    SlackChannel,
    TeamsChannel,
    WebhookChannel,
)
from agentkit.errors import ConfigError
from agentkit.redact import CARD_MARK, IBAN_MARK
from agentkit.settings import Secret, Settings
from agentkit.testing.recorder import HttpRecorder

SECRET_PATH = "/services/T0001/B0002/s3cr3tWebhookToken"
MESSAGE = ChatMessage(
    title="Callback requested",
    text="Caller asked to be called back about invoice 4011.",
    fields={"Caller": "+44 20 7946 0000", "Bot": "voicemail-callback"},
    urgency="high",
    reference="evt_01J9Z3",
    links={"Call record": "https://console.example/calls/cal_1"},
)


def fast(*channels: Channel, retries: int = 3) -> Notifier:
    """A notifier whose backoff is a millisecond, for tests."""
    return Notifier(channels, retries=retries, backoff_base=0.001, backoff_max=0.01)


def mock_client(
    *answers: httpx.Response | Exception,
) -> tuple[httpx.AsyncClient, list[httpx.Request]]:
    """An httpx client that answers each request with the next of ``answers`` (then 200)."""
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0) if queue else httpx.Response(200, text="ok")
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.AsyncClient(transport=httpx.MockTransport(handle)), seen


async def test_slack_payload_has_blocks_and_a_text_fallback(recorder: HttpRecorder) -> None:
    """Slack gets a header, the text as mrkdwn, the fields, links and a context line, plus text."""
    [delivery] = await fast(SlackChannel(recorder.url + SECRET_PATH)).send(MESSAGE)
    assert delivery.ok
    body = recorder.requests[0].json()
    assert body["text"] == "[HIGH] Callback requested: " + MESSAGE.text
    assert [b["type"] for b in body["blocks"]] == ["header", "section", "section", "section",
                                                   "context"]
    header, text, fields, links, context = body["blocks"]
    assert header["text"] == {"type": "plain_text", "text": ":warning: Callback requested",
                              "emoji": True}
    assert text["text"] == {"type": "mrkdwn", "text": MESSAGE.text}
    assert [f["text"] for f in fields["fields"]] == [
        "*Caller*\n+44 20 7946 0000", "*Bot*\nvoicemail-callback"]
    assert links["text"]["text"] == "<https://console.example/calls/cal_1|Call record>"
    assert context["elements"][0]["text"] == "Urgency: *high*  ·  Ref: `evt_01J9Z3`"
    assert recorder.requests[0].headers["content-type"] == "application/json"


async def test_slack_escapes_mentions_and_links_from_untrusted_text() -> None:
    """A transcript's <!channel> or <url|label> cannot ping or disguise a link in Slack."""
    message = ChatMessage(title="t", text="<!channel> see <https://evil.example|your bank> & co")
    body = SlackChannel("https://hooks.slack.test/x").render(message)
    assert body["blocks"][1]["text"]["text"] == (
        "&lt;!channel&gt; see &lt;https://evil.example|your bank&gt; &amp; co")
    assert "<!channel>" not in body["text"]


async def test_slack_splits_more_than_ten_fields_into_sections() -> None:
    """Block Kit allows ten fields a section; more go into further sections."""
    message = ChatMessage(title="t", text="", fields={f"k{i}": "v" for i in range(12)})
    blocks = SlackChannel("https://hooks.slack.test/x").render(message)["blocks"]
    assert [len(b.get("fields", [])) for b in blocks] == [0, 10, 2, 0]


async def test_teams_payload_is_an_adaptive_card_envelope(recorder: HttpRecorder) -> None:
    """Teams gets a message envelope holding an Adaptive Card 1.4 with facts and link actions."""
    [delivery] = await fast(TeamsChannel(recorder.url + "/teams")).send(MESSAGE)
    assert delivery.ok
    body = recorder.requests[0].json()
    assert body["type"] == "message"
    [attachment] = body["attachments"]
    assert attachment["contentType"] == ADAPTIVE_CARD == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    title, text, facts, context = card["body"]
    assert (title["text"], title["weight"], title["color"]) == (
        "Callback requested", "Bolder", "Warning")
    assert text["text"] == MESSAGE.text
    assert facts == {"type": "FactSet", "facts": [
        {"title": "Caller", "value": "+44 20 7946 0000"},
        {"title": "Bot", "value": "voicemail-callback"}]}
    assert context["text"] == "Urgency: high · Ref: evt_01J9Z3"
    assert card["actions"] == [{"type": "Action.OpenUrl", "title": "Call record",
                                "url": "https://console.example/calls/cal_1"}]


async def test_generic_webhook_posts_the_message_as_json(recorder: HttpRecorder) -> None:
    """A generic webhook receives the message's own fields as JSON."""
    await fast(WebhookChannel(recorder.url + "/hook")).send(MESSAGE)
    assert recorder.requests[0].json() == {
        "title": "Callback requested",
        "text": MESSAGE.text,
        "fields": {"Caller": "+44 20 7946 0000", "Bot": "voicemail-callback"},
        "urgency": "high",
        "reference": "evt_01J9Z3",
        "links": {"Call record": "https://console.example/calls/cal_1"},
    }


async def test_retries_after_server_errors_then_succeeds(recorder: HttpRecorder) -> None:
    """Two 500s then a 200: delivered on the third attempt."""
    recorder.fail_next(2, 500)
    [delivery] = await fast(SlackChannel(recorder.url + "/slack")).send(MESSAGE)
    assert (delivery.ok, delivery.attempts) == (True, 3)
    assert [r.answered for r in recorder.requests] == [500, 500, 200]


async def test_gives_up_after_the_retries(recorder: HttpRecorder) -> None:
    """A receiver that keeps failing is tried 1 + retries times, then reported failed."""
    recorder.fail_next(10, 503)
    [delivery] = await fast(WebhookChannel(recorder.url + "/hook"), retries=2).send(MESSAGE)
    assert (delivery.ok, delivery.attempts, delivery.status) == (False, 3, 503)
    assert len(recorder.requests) == 3


async def test_rate_limited_request_is_retried(recorder: HttpRecorder) -> None:
    """A 429 is retried."""
    recorder.fail_next(1, 429)
    [delivery] = await fast(SlackChannel(recorder.url + "/slack")).send(MESSAGE)
    assert (delivery.ok, delivery.attempts) == (True, 2)


async def test_retry_after_is_honoured() -> None:
    """After a 429 with Retry-After, the next attempt waits that long, not the tiny backoff."""
    client, seen = mock_client(httpx.Response(429, headers={"Retry-After": "0.3"}))
    async with client:
        started = time.monotonic()
        [delivery] = await fast(SlackChannel("https://hooks.slack.test/x", client=client)
                                ).send(MESSAGE)
        elapsed = time.monotonic() - started
    assert delivery.ok
    assert len(seen) == 2
    assert elapsed >= 0.3


async def test_retry_after_is_capped() -> None:
    """A Retry-After longer than max_retry_after waits only max_retry_after."""
    client, _ = mock_client(httpx.Response(429, headers={"Retry-After": "3600"}))
    async with client:
        notifier = Notifier([SlackChannel("https://hooks.slack.test/x", client=client)],
                            backoff_base=0.001, max_retry_after=0.01)
        with capture_logs() as logs:
            # Uncapped, it would wait an hour: the deadline turns that into a failure.
            [delivery] = await asyncio.wait_for(notifier.send(MESSAGE), 30)
    assert delivery.ok
    assert [e["wait_s"] for e in logs if e["event"] == "notify.retry"] == [0.01]


async def test_client_error_is_not_retried(recorder: HttpRecorder) -> None:
    """A 400 means the payload is wrong: one attempt, reported failed."""
    recorder.fail_next(1, 400)
    [delivery] = await fast(SlackChannel(recorder.url + "/slack")).send(MESSAGE)
    assert (delivery.ok, delivery.attempts, delivery.status) == (False, 1, 400)
    assert len(recorder.requests) == 1


async def test_timeout_is_retried() -> None:
    """A timed-out request is tried again."""
    client, seen = mock_client(httpx.ReadTimeout("timed out"))
    async with client:
        [delivery] = await fast(WebhookChannel("https://hooks.test/x", client=client)
                                ).send(MESSAGE)
    assert (delivery.ok, len(seen)) == (True, 2)


async def test_teams_failure_hidden_in_a_200_is_retried() -> None:
    """A Teams connector's 200 reporting HTTP error 429 in its body is retried."""
    throttled = httpx.Response(200, text="Webhook message delivery failed with error: Microsoft "
                                         "Teams endpoint returned HTTP error 429 with ContextId x")
    client, seen = mock_client(throttled, httpx.Response(200, text="1"))
    async with client:
        [delivery] = await fast(TeamsChannel("https://example.webhook.office.test/x",
                                             client=client)).send(MESSAGE)
    assert (delivery.ok, delivery.attempts, len(seen)) == (True, 2, 2)


async def test_one_failing_channel_does_not_stop_another(recorder: HttpRecorder) -> None:
    """A channel that cannot connect fails alone; the other delivers and send does not raise."""
    dead = SlackChannel("http://127.0.0.1:1" + SECRET_PATH)
    alive = TeamsChannel(recorder.url + "/teams")
    slack, teams = await fast(dead, alive, retries=1).send(MESSAGE)
    assert (slack.channel, slack.ok, slack.attempts) == ("slack", False, 2)
    assert "ConnectError" in (slack.error or "")
    assert (teams.channel, teams.ok) == ("teams", True)
    assert len(recorder.accepted()) == 1


async def test_unexpected_channel_error_is_reported_not_raised() -> None:
    """A channel raising something other than NotifyError is reported failed, not raised."""

    class Broken:
        name = "broken"

        async def send(self, message: ChatMessage) -> None:
            raise RuntimeError("boom")

    [delivery] = await fast(Broken()).send(MESSAGE)
    assert (delivery.ok, delivery.attempts, delivery.error) == (False, 1, "unexpected RuntimeError")


async def test_payment_data_is_masked_in_what_is_sent(recorder: HttpRecorder) -> None:
    """Card numbers and IBANs in title, text and fields never reach the chat."""
    message = ChatMessage(
        title="Card 4111 1111 1111 1111 read out",
        text="The caller said four one one one one one one one one one one one one one one one.",
        fields={"IBAN": "GB82 WEST 1234 5698 7654 32"},
    )
    await fast(SlackChannel(recorder.url + "/slack"), TeamsChannel(recorder.url + "/teams"),
               WebhookChannel(recorder.url + "/hook")).send(message)
    assert len(recorder.requests) == 3
    for sent in recorder.requests:
        raw = sent.body.decode()
        assert "4111" not in raw
        assert "one one one one" not in raw
        assert "WEST" not in raw
        assert CARD_MARK in raw
        assert IBAN_MARK in raw


async def test_webhook_url_never_logged(recorder: HttpRecorder) -> None:
    """Retries and failures are logged with the channel name, never the secret webhook URL."""
    recorder.fail_next(10, 500)
    channels = [SlackChannel(recorder.url + SECRET_PATH),
                TeamsChannel("http://127.0.0.1:1" + SECRET_PATH)]
    with capture_logs() as logs:
        deliveries = await fast(*channels, retries=1).send(MESSAGE)
    assert [e["event"] for e in logs if e["event"] == "notify.failed"] == ["notify.failed"] * 2
    assert {e["channel"] for e in logs if e["event"] == "notify.failed"} == {"slack", "teams"}
    assert any(e["event"] == "notify.retry" for e in logs)
    for text in (repr(logs), repr(deliveries), repr(channels)):
        assert "s3cr3tWebhookToken" not in text


async def test_tokens_and_query_strings_in_chat_errors_are_scrubbed() -> None:
    """An error quoting another URL's query string or a Slack token is logged and kept without
    them."""
    body = ("invalid_token xoxb-1111-2222-SECRETSLACKTOKEN; moved to "
            "https://hooks.slack.com/services/T1/B2/OTHERSECRET?token=QUERYSECRET")
    client, _ = mock_client(httpx.Response(403, text=body))
    channel = SlackChannel("https://hooks.slack.com" + SECRET_PATH, client=client)
    with capture_logs() as logs:
        (delivery,) = await fast(channel, retries=1).send(MESSAGE)
    assert not delivery.ok and delivery.error is not None
    assert "answered 403" in delivery.error
    for text in (repr(logs), delivery.error):
        for secret in ("SECRETSLACKTOKEN", "OTHERSECRET", "QUERYSECRET", "s3cr3tWebhookToken"):
            assert secret not in text


async def test_console_output_is_readable() -> None:
    """The console shows urgency, title, text, aligned fields, links and the reference."""
    stream = io.StringIO()
    [delivery] = await fast(ConsoleChannel(stream)).send(MESSAGE)
    assert delivery.ok
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("--- notification (high) ---")
    assert lines[1:3] == ["Callback requested", MESSAGE.text]
    assert "  Caller  +44 20 7946 0000" in lines
    assert "  Bot     voicemail-callback" in lines
    assert "  Call record: https://console.example/calls/cal_1" in lines
    assert "  reference: evt_01J9Z3" in lines


@pytest.mark.parametrize(
    ("slack", "teams", "names"),
    [
        ("https://hooks.slack.com/services/x", "https://example.webhook.office.com/y",
         ["slack", "teams"]),
        ("https://hooks.slack.com/services/x", None, ["slack"]),
        (None, None, ["console"]),
    ],
)
def test_from_settings_builds_the_configured_channels(
    slack: str | None, teams: str | None, names: list[str]
) -> None:
    """Slack and Teams channels come from the settings; the console when neither is set."""
    settings = Settings(api_key=Secret("k"),
                        slack_webhook_url=Secret(slack) if slack else None,
                        teams_webhook_url=Secret(teams) if teams else None)
    assert [c.name for c in Notifier.from_settings(settings).channels] == names


def test_bad_webhook_url_is_a_config_error_that_hides_it() -> None:
    """A webhook URL that is not http(s) is refused without being repeated."""
    with pytest.raises(ConfigError) as caught:
        SlackChannel("hooks.slack.com" + SECRET_PATH)
    assert "s3cr3t" not in str(caught.value)


def test_links_must_be_http_urls() -> None:
    """A link that is not an http(s) URL is refused when the message is built."""
    with pytest.raises(ValueError, match="must be an http"):
        ChatMessage(title="t", text="x", links={"open": "javascript:alert(1)"})


async def test_channel_alone_raises_notify_error(recorder: HttpRecorder) -> None:
    """Used directly, a channel makes one attempt and raises NotifyError on failure."""
    recorder.fail_next(1, 404)
    with pytest.raises(NotifyError) as caught:
        await WebhookChannel(recorder.url + "/hook").send(MESSAGE)
    assert (caught.value.status, caught.value.retryable) == (404, False)

