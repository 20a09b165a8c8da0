"""Log lines: secrets masked, bookkeeping kept from people, repeats counted, libraries quiet."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest
import structlog

from agentkit.logs import (
    BOOKKEEPING,
    MASK,
    RateLimitRepeats,
    RedactSecrets,
    configure_logging,
    get_logger,
)


def redact(secrets: list[str], **event: object) -> dict[str, object]:
    return dict(RedactSecrets(secrets)(None, "info", dict(event)))


def test_known_secret_masked_inside_text() -> None:
    """A configured secret is masked wherever it appears in a value."""
    out = redact(["ps_live_abcdef"], event="x", error="bad key ps_live_abcdef given")
    assert out["error"] == f"bad key {MASK} given"


def test_secret_named_fields_masked() -> None:
    """Fields named like keys, secrets, tokens or authorization are masked whatever they hold."""
    out = redact([], event="x", api_key="k1", headers={"Authorization": "Bearer abc"},
                  webhook_secret="s")
    assert out["api_key"] == MASK
    assert out["webhook_secret"] == MASK
    assert out["headers"] == {"Authorization": MASK}


def test_token_counts_are_not_secrets() -> None:
    """Numbers in fields named like tokens (a model call's token use) are logged as they are."""
    out = redact([], event="llm.call", prompt_tokens=312, completion_tokens=0,
                  usage={"total_tokens": 340}, token="t0k3n")
    assert (out["prompt_tokens"], out["completion_tokens"]) == (312, 0)
    assert out["usage"] == {"total_tokens": 340}
    assert out["token"] == MASK


def test_bearer_tokens_masked() -> None:
    """A bearer token in free text is masked."""
    out = redact([], event="x", detail="sent Authorization: Bearer ps_live_zzz123")
    assert "ps_live_zzz123" not in str(out)


def test_rendered_json_line_has_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    """A JSON log line rendered end to end carries no configured secret."""
    configure_logging(secrets=["whsec_topsecret"], level="info", json=True)
    try:
        structlog.get_logger("t").info("delivery.rejected", detail="used whsec_topsecret")
        line = capsys.readouterr().out.strip().splitlines()[-1]
    finally:
        configure_logging(level="info", json=False)
    assert "whsec_topsecret" not in line
    assert json.loads(line)["event"] == "delivery.rejected"


def test_payment_data_masked_in_logs() -> None:
    """A card number in a log value is masked like any secret."""
    out = redact([], event="x", detail="caller read 4111 1111 1111 1111 out")
    assert "4111" not in str(out)


@pytest.fixture
def reconfigured() -> Iterator[None]:
    """Lets a test set logging up its own way, then puts the test session's set-up back."""
    try:
        yield
    finally:
        structlog.contextvars.clear_contextvars()
        configure_logging(level="info", json=False)


def job_line(capsys: pytest.CaptureFixture[str]) -> str:
    """One handler line logged inside a job's bound context, as printed."""
    capsys.readouterr()
    structlog.contextvars.bind_contextvars(job_id=7, job_kind="bot", attempt=1, event_id="evt_1",
                                           event_type="voicemail.received", call_id="cal_1",
                                           bot="voicemail-callback")
    get_logger("agentkit.test").info("join.waiting", handler="call_back")
    return capsys.readouterr().out


def test_terminal_lines_leave_bookkeeping_out(
    reconfigured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """In a terminal at info level, a job's bound bookkeeping is left out of its lines."""
    configure_logging(level="info", json=False)
    line = job_line(capsys)
    assert "bot=" in line and "handler=" in line
    for key in BOOKKEEPING:
        assert f"{key}=" not in line


def test_terminal_lines_keep_fields_given_to_the_call(
    reconfigured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A field passed to the log call itself is printed even when bookkeeping shares its name."""
    configure_logging(level="info", json=False)
    structlog.contextvars.bind_contextvars(attempt=1)
    get_logger("agentkit.test").info("callback.placed", attempt=2)
    assert "attempt=2" in capsys.readouterr().out


def test_terminal_error_lines_keep_bookkeeping(
    reconfigured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """An error line in a terminal keeps the job's bookkeeping, to find the job by."""
    configure_logging(level="info", json=False)
    structlog.contextvars.bind_contextvars(job_id=7, event_id="evt_1")
    get_logger("agentkit.test").error("job.dead_lettered", error="boom")
    out = capsys.readouterr().out
    assert "job_id=7" in out and "event_id=evt_1" in out


def test_debug_level_shows_bookkeeping(
    reconfigured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """At debug level a terminal line carries the job's bookkeeping."""
    configure_logging(level="debug", json=False)
    assert "job_id=7" in job_line(capsys)


def test_json_lines_keep_bookkeeping(
    reconfigured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """JSON lines carry the job's bookkeeping at any level."""
    configure_logging(level="info", json=True)
    line = json.loads(job_line(capsys))
    assert {key: line[key] for key in ("job_id", "attempt", "job_kind")} == {
        "job_id": 7, "attempt": 1, "job_kind": "bot"}


def test_standard_library_record_is_a_json_line(
    reconfigured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A standard-library record becomes one JSON line, with its logger and level."""
    configure_logging(level="info", json=True)
    logging.getLogger("uvicorn.error").warning("Connection refused: %d open", 1000)
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line) | {"timestamp": None} == {
        "event": "Connection refused: 1000 open", "logger": "uvicorn.error",
        "level": "warning", "timestamp": None}


def test_standard_library_traceback_is_one_json_field(
    reconfigured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A standard-library record's traceback is a field of its one JSON line, secrets masked."""
    configure_logging(secrets=["whsec_topsecret"], level="info", json=True)
    try:
        raise ValueError("bad secret whsec_topsecret")
    except ValueError:
        logging.getLogger("asyncpg").exception("Unhandled error")
    (line,) = capsys.readouterr().out.splitlines()
    (error,) = json.loads(line)["exception"]
    assert (error["exc_type"], error["exc_value"]) == ("ValueError", f"bad secret {MASK}")


def test_standard_library_record_masked(
    reconfigured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A standard-library record's message is masked like a structlog line."""
    configure_logging(secrets=["ps_live_abcdef"], level="info", json=False)
    logging.getLogger("uvicorn.error").error("key ps_live_abcdef refused")
    out = capsys.readouterr().out
    assert "refused" in out and "ps_live_abcdef" not in out


def repeats(clock: list[float]) -> RateLimitRepeats:
    return RateLimitRepeats({"agentkit.store_unavailable"}, window=60, clock=lambda: clock[0])


def occur(limiter: RateLimitRepeats, event: str = "agentkit.store_unavailable") -> object:
    try:
        return dict(limiter(None, "error", {"event": event}))
    except structlog.DropEvent:
        return None


def test_first_repeating_warning_logged() -> None:
    """The first occurrence of a repeating warning is logged as it is."""
    assert occur(repeats([0.0])) == {"event": "agentkit.store_unavailable"}


def test_repeats_within_window_dropped() -> None:
    """Occurrences within the window after a logged one are left out."""
    clock = [0.0]
    limiter = repeats(clock)
    occur(limiter)
    clock[0] = 59.0
    assert occur(limiter) is None


def test_line_after_window_counts_left_out_repeats() -> None:
    """The first occurrence after the window is logged with the number left out."""
    clock = [0.0]
    limiter = repeats(clock)
    for now in (0.0, 1.0, 2.0, 60.0):
        clock[0] = now
        logged = occur(limiter)
    assert logged == {"event": "agentkit.store_unavailable", "repeated": 2}


def test_other_events_not_limited() -> None:
    """Events not named as repeating are never left out."""
    limiter = repeats([0.0])
    assert [occur(limiter, "delivery.stored") for _ in range(3)] == [
        {"event": "delivery.stored"}] * 3


def test_store_unavailable_printed_once(
    reconfigured: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store outage reported on every readiness probe prints one line, not one a probe."""
    configure_logging(level="info", json=True)
    for _ in range(5):
        get_logger("agentkit.service").error("agentkit.store_unavailable", error="down")
    assert len(capsys.readouterr().out.splitlines()) == 1


LIBRARY_USE = """
import asyncio, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from agentkit.errors import NotFoundError
from agentkit.odygy import OdygyClient, RetryPolicy

seen = []

class Api(BaseHTTPRequestHandler):
    def do_GET(self):
        seen.append(self.path)
        self.send_response(503 if len(seen) == 1 else 404)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": {"code": "x", "message": "no"}}')

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
threading.Thread(target=server.serve_forever, daemon=True).start()

async def main():
    async with OdygyClient(api_key="ps_test_library_0000",
                           base_url=f"http://127.0.0.1:{server.server_port}/v1",
                           retry=RetryPolicy(backoff_base=0.01, backoff_max=0.01,
                                             reconcile_delay=0.01)) as client:
        try:
            await client.users.retrieve("usr_1")
        except NotFoundError:
            pass

asyncio.run(main())
server.shutdown()
sys.exit(0 if len(seen) == 2 else 3)
"""


def test_client_as_a_library_prints_nothing() -> None:
    """The client used without agentkit's command, through a retry, prints nothing."""
    done = subprocess.run([sys.executable, "-c", LIBRARY_USE], capture_output=True,
                          timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, b"", b"")
