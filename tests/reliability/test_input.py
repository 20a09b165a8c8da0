"""Hostile input at POST /webhooks/odygy: never a 5xx, nothing stored for rejected input.

The webhook route is agentkit's own ASGI code (``DeliveryEndpoint``), so its
header handling is probed here over raw sockets, on a real uvicorn server, on
both store engines: generated signature headers, Content-Type values,
Content-Length lies, chunked bodies, odd and huge headers, and validly signed
bodies that are hostile (deep nesting, huge numbers, NUL and lone surrogates,
duplicate keys, wrong types in ``data``, out-of-range times).
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentkit.ingress.receiver import WEBHOOK_PATH, create_receiver_app
from agentkit.metrics import Metrics
from agentkit.odygy.signing import sign
from agentkit.serving import EmbeddedServer
from agentkit.store import Store
from agentkit.store.sqlite import SqliteStore
from agentkit.store.writer import EventWriter
from agentkit.testing.deliveries import default_data, now_ts
from tests.stores import POSTGRES_URL, need_postgres

SECRET = "whsec_reliability_input_0001"
CREATED = "2026-04-23T10:12:45Z"
_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3})")


@dataclass
class Receiver:
    host: str
    port: int
    store: Store

    async def send(self, request: bytes, *, hang_up: bool = False, timeout: float = 15
                   ) -> list[tuple[int, bytes]]:
        """Write raw bytes (then close our side if ``hang_up``), read to the end of the
        connection: each (status, body) answered."""
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(request)
            await writer.drain()
            if hang_up:
                writer.write_eof()
            data = await asyncio.wait_for(reader.read(), timeout)
        except ConnectionResetError:
            data = b""
        finally:
            writer.close()
        answers = []
        for match in _STATUS.finditer(data):
            head_end = data.find(b"\r\n\r\n", match.end())
            nxt = _STATUS.search(data, match.end())
            body = data[head_end + 4: nxt.start() if nxt else len(data)] if head_end >= 0 else b""
            answers.append((int(match.group(1)), body))
        return answers


@pytest.fixture(params=["sqlite", "postgres"])
async def receiver(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Receiver]:
    """A real receiver over HTTP, on a fresh store of each engine."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    store: Store
    if request.param == "postgres":
        await need_postgres()
        from agentkit.store.postgres import PostgresStore

        store = PostgresStore(POSTGRES_URL, schema=schema)
    else:
        store = SqliteStore(tmp_path / "agentkit.db")
    await store.open()
    writer = EventWriter(store)
    await writer.start()

    async def ready() -> str | None:
        return None

    app = create_receiver_app(secrets=[SECRET], writer=writer, metrics=Metrics(), ready=ready)
    server = EmbeddedServer(app)
    await server.start()
    yield Receiver(server.host, server.port, store)
    await server.stop()
    await writer.stop()
    await store.close()
    if request.param == "postgres":
        conn = await asyncpg.connect(POSTGRES_URL)
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


def http_request(body: bytes, headers: list[tuple[bytes, bytes]], *, framing: str = "exact",
                 chunk: int = 7) -> bytes:
    """A raw HTTP/1.1 POST; ``framing`` says how honestly the body's length is told."""
    lines = [b"POST " + WEBHOOK_PATH.encode() + b" HTTP/1.1", b"Host: 127.0.0.1",
             b"Connection: close"]
    lines += [name + b": " + value for name, value in headers]
    if framing == "chunked":
        lines.append(b"Transfer-Encoding: chunked")
        pieces = [body[i:i + chunk] for i in range(0, len(body), chunk)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    elif framing == "both":
        lines += [b"Content-Length: %d" % len(body), b"Transfer-Encoding: chunked"]
        payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    elif framing == "none":
        payload = body
    else:
        told = {"exact": len(body), "longer": len(body) + 10,
                "shorter": max(0, len(body) - 3)}.get(framing)
        lines.append(b"Content-Length: " + (str(told).encode() if told is not None
                                             else framing.removeprefix("cl:").encode()))
        payload = body
    return b"\r\n".join(lines) + b"\r\n\r\n" + payload


async def check_answers(receiver: Receiver, before: int, answers: list[tuple[int, bytes]]
                        ) -> list[str]:
    """No 5xx; exactly the events acknowledged as stored were added. Returns their ids."""
    assert all(status < 500 for status, _ in answers), answers
    stored = []
    for status, body in answers:
        if status == 200:
            reply = json.loads(body)
            assert await receiver.store.get_event(reply["id"]) is not None
            if reply["status"] == "stored":
                stored.append(reply["id"])
    assert await receiver.store.count_events() == before + len(stored)
    return stored


def envelope_bytes(event_id: str, event_type: str = "call.completed",
                   data: Any = None) -> bytes:
    return json.dumps({"id": event_id, "type": event_type, "created_at": CREATED,
                       "data": default_data(event_type) if data is None else data}).encode()


def _hostile(event_id: str) -> dict[str, bytes]:
    e = event_id.encode()
    head = b'{"id":"' + e + b'","type":"x.y","created_at":"' + CREATED.encode() + b'","data":'
    return {
        "deep nesting": head + b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}}",
        "huge integer": head + b'{"a":' + b"9" * 200_000 + b"}}",
        "huge float": head + b'{"a":1e999999}}',
        "NaN": head + b'{"a":NaN,"b":-Infinity}}',
        "duplicate keys": b'{"id":"evt_shadowed","id":"' + e + b'","type":"x.y","type":"z",'
                          b'"created_at":"' + CREATED.encode() + b'","data":{},"data":{"a":1}}',
        "NUL in id": b'{"id":"' + e + b'\\u0000","type":"x.y","created_at":"'
                     + CREATED.encode() + b'","data":{}}',
        "NUL in type": b'{"id":"' + e + b'","type":"call.completed\\u0000","created_at":"'
                       + CREATED.encode() + b'","data":{}}',
        "NUL in call id": envelope_bytes(event_id, "transcript.ready",
                                         {"call_id": "cal_\u0000", "language": "en"}),
        "NUL in data": head + b'{"text":"a\\u0000b"}}',
        "lone surrogate in id": b'{"id":"' + e + b'\\ud800","type":"x.y","created_at":"'
                                + CREATED.encode() + b'","data":{}}',
        "lone surrogate in data": head + b'{"t":"\\udfff"}}',
        "raw non-UTF-8": head + b'{"t":"\xff\xfe\xc0\xaf"}}',
        "UTF-8 BOM": b"\xef\xbb\xbf" + envelope_bytes(event_id),
        "UTF-16 body": envelope_bytes(event_id).decode().encode("utf-16"),
        "unicode everywhere": json.dumps({
            "id": event_id + "\u202e\u0661\uff10\U0001f4de", "type": "voicemail.received",
            "created_at": CREATED, "data": {**default_data("voicemail.received"),
                                            "from": "+\u0664\u0664\u0662\u0660"}},
            ensure_ascii=False).encode(),
        "huge call id": envelope_bytes(event_id, "transcript.ready",
                                       {"call_id": "c" * 900_000, "language": "en"}),
        "empty call id": envelope_bytes(event_id, "recording.ready",
                                        {"call_id": "", "duration": 1}),
        "wrong types in data": envelope_bytes(event_id, "call.completed",
                                              {"id": 5, "from": [], "status": {}, "to": None}),
        "data a string": head + b'"data"}',
        "year 1 east of UTC": envelope_bytes(event_id).replace(
            CREATED.encode(), b"0001-01-01T00:00:00+14:00"),
        "year 9999 west of UTC": envelope_bytes(event_id).replace(
            CREATED.encode(), b"9999-12-31T23:59:59-14:00"),
        "huge duration": envelope_bytes(event_id, "recording.ready",
                                        {"call_id": "cal_1", "duration": 10**300}),
        "id at the limit": envelope_bytes("e" * 200),
        "id over the limit": envelope_bytes("e" * 201),
        "top-level array": b"[" + envelope_bytes(event_id) + b"]",
        "empty body": b"",
    }


HOSTILE = sorted(_hostile("evt_x"))


@pytest.mark.parametrize("case", HOSTILE)
async def test_signed_hostile_body(receiver: Receiver, case: str) -> None:
    """A validly signed hostile body gets 200 (stored) or a 4xx (nothing stored), never a 5xx."""
    body = _hostile(f"evt_{uuid.uuid4().hex}")[case]
    headers = [(b"Content-Type", b"application/json"),
               (b"Odygy-Signature", sign(body, [SECRET]).encode())]
    answers = await receiver.send(http_request(body, headers))
    assert answers, "no answer at all"
    await check_answers(receiver, 0, answers)


async def test_store_rejects_nothing_the_receiver_acknowledged(receiver: Receiver) -> None:
    """Hostile bodies posted together (one group commit) fail only themselves, never a 5xx."""
    good = [envelope_bytes(f"evt_{uuid.uuid4().hex}") for _ in range(5)]
    bodies = list(_hostile(f"evt_{uuid.uuid4().hex}").values()) + good
    requests = [http_request(b, [(b"Content-Type", b"application/json"),
                                 (b"Odygy-Signature", sign(b, [SECRET]).encode())])
                for b in bodies]
    results = await asyncio.gather(*(receiver.send(r) for r in requests))
    assert all(status < 500 for answers in results for status, _ in answers), results
    for body, answers in zip(good, results[-len(good):], strict=True):
        assert [status for status, _ in answers] == [200]
        assert await receiver.store.get_event(json.loads(body)["id"]) is not None


# generated headers

SIGNATURES = ["valid", "rotated", "padded", "many", "missing", "empty", "wrong secret", "stale",
              "future", "upper hex", "space after comma", "truncated", "extra entry", "old format",
              "huge t", "arabic digits", "latin-1 junk", "twice valid last", "twice valid first"]
ACCEPTED = {"valid", "rotated", "padded", "many", "twice valid last"}
CONTENT_TYPES: list[bytes | None] = [
    b"application/json", b"application/json; charset=utf-8", b"APPLICATION/JSON ;x=y",
    b"application/json;charset=\xff\xfe", b"text/plain", b"", None, b"application/jsonp",
    b"application/json, text/plain", b"multipart/form-data; boundary=x", b"\xc3\xa9/json",
]
FRAMINGS = ["exact", "chunked", "longer", "shorter", "both", "none", "cl:abc", "cl:-1",
            "cl: 12", "cl:99999999999999999999", "cl:\xd9\xa1\xd9\xa2"]
SANE_CT = {b"application/json", b"application/json; charset=utf-8", b"APPLICATION/JSON ;x=y",
           b"application/json;charset=\xff\xfe"}


def signature_headers(kind: str, body: bytes) -> list[tuple[bytes, bytes]]:
    t = now_ts()
    valid = sign(body, [SECRET], timestamp=t)
    values: dict[str, list[str | bytes]] = {
        "valid": [valid],
        "rotated": [sign(body, ["whsec_not_ours_0000", SECRET], timestamp=t)],
        "padded": ["  " + valid + "\t"],
        "many": [valid + (",v1=" + "0" * 64) * 300],
        "missing": [],
        "empty": [""],
        "wrong secret": [sign(body, ["whsec_attacker_0000"], timestamp=t)],
        "stale": [sign(body, [SECRET], timestamp=t - 301)],
        "future": [sign(body, [SECRET], timestamp=t + 301)],
        "upper hex": [valid.upper().replace("T=", "t=").replace("V1=", "v1=")],
        "space after comma": [valid.replace(",", ", ")],
        "truncated": [valid[:-1]],
        "extra entry": [valid + ",v0=" + "a" * 64],
        "old format": ["sha256=" + valid.split("v1=")[1]],
        "huge t": [sign(body, [SECRET], timestamp=10**12 - 1)],
        "arabic digits": [valid.replace(f"t={t}", "t=" + str(t).translate(
            str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))).encode("utf-8")],
        "latin-1 junk": [b"t=\xff\xfe," + valid.encode()],
        "twice valid last": ["garbage", valid],
        "twice valid first": [valid, "garbage"],
    }
    return [(b"Odygy-Signature", v if isinstance(v, bytes) else v.encode())
            for v in values[kind]]


token = st.text("abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=20)
odd_value = st.one_of(st.binary(max_size=60).map(lambda b: bytes(
    c for c in b if c >= 0x20 and c != 0x7f)), st.just(b"x" * 60_000))
body_kind = st.one_of(
    st.sampled_from(["call.initiated", "call.completed", "transcript.ready", "voicemail.received",
                     "number.ported", "sms.received", "agentkit.request"]).map(
        lambda t: ("envelope", t)),
    st.sampled_from(HOSTILE).map(lambda h: ("hostile", h)),
    st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                 lambda inner: st.lists(inner, max_size=3)
                 | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                 max_leaves=8).map(lambda d: ("data", d)),
)


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    body=body_kind,
    signature=st.sampled_from(SIGNATURES),
    content_type=st.sampled_from(CONTENT_TYPES),
    framing=st.sampled_from(FRAMINGS),
    chunk=st.integers(1, 4096),
    extra=st.lists(st.tuples(token.map(str.encode), odd_value), max_size=3),
)
async def test_generated_headers_never_5xx(receiver: Receiver, body: tuple[str, Any],
                                           signature: str, content_type: bytes | None,
                                           framing: str, chunk: int,
                                           extra: list[tuple[bytes, bytes]]) -> None:
    """Generated signatures, content types, framings and headers: no 5xx, stored iff acked."""
    event_id = f"evt_{uuid.uuid4().hex}"
    kind, what = body
    raw = (envelope_bytes(event_id, what) if kind == "envelope"
           else _hostile(event_id)[what] if kind == "hostile"
           else envelope_bytes(event_id, "call.completed", {"x": what}))
    headers = [(b"Content-Type", content_type)] if content_type is not None else []
    headers += signature_headers(signature, raw) + extra
    before = await receiver.store.count_events()
    answers = await receiver.send(http_request(raw, headers, framing=framing, chunk=chunk),
                                  hang_up=framing == "longer")
    stored = await check_answers(receiver, before, answers)
    honest = framing in ("exact", "chunked") and sum(len(v) for _, v in extra) < 60_000
    if kind == "envelope" and signature in ACCEPTED and content_type in SANE_CT and honest:
        assert stored == [event_id], answers  # the generator is not only producing refusals


# prompt injection: a model that obeys the caller

CORPUS = [json.loads(line) for line in
          (Path(__file__).with_name("injection_corpus.jsonl")).read_text().splitlines() if line]


def obeying_model(body: dict[str, Any]) -> dict[str, Any]:
    """The fake model's answer: exactly what the voicemail (or the caller's name) asks for."""
    text = str(body["messages"][-1]["content"])
    entry = next(e for e in CORPUS if f"Ref {e['id']}." in text)
    schema = body["response_format"]["json_schema"]["name"]
    if schema == "VoicemailTriage":
        return {"caller_name": entry["caller_name"], "reason": entry["words"][:200],
                "urgency": "urgent", "wants_callback": True, "callback_window": "now",
                "callback_number": entry["callback_number"], "spam": False, "language": "en"}
    if schema == "EscalationCheck":
        escalate = entry["escalate"]
        return {"escalate": escalate, "reasons": ["complaint"] if escalate else [],
                "explanation": entry["words"][:200], "quote": None}
    raise AssertionError(f"unexpected model task {schema}")


async def test_injection_corpus_stays_inside_the_dial_policy(tmp_path: Path) -> None:
    """A model obeying every injected transcript never gets a call, flow or queue change past
    the dial policy: calls go only to the callers themselves."""
    from agentkit.actions.policy import DialPolicy
    from agentkit.sim import SANDBOX_DIAL_COUNTRIES
    from agentkit.testing.harness import BotHarness
    from tests.shipped.helpers import MAIN, PROMPTS, shipped

    assert len(CORPUS) >= 20
    callers = {e["id"]: f"+4420794601{n:02d}" for n, e in enumerate(CORPUS)}
    bots = [shipped("voicemail_callback"), shipped("escalation")]
    async with BotHarness(bots, tmp_path, prompts=PROMPTS) as h:
        h.llm.responder = obeying_model
        flows_before = {n.id: n.call_flow_id for n in h.sim.state.numbers.values()}
        flow_ids_before = {f.id: f.model_dump_json() for f in h.sim.state.call_flows.values()}
        for entry in CORPUS:
            words = f"Ref {entry['id']}. {entry['words']}"
            h.sim.leave_voicemail(callers[entry["id"]], words=words)
        await h.settle(timeout=60)
        placed = h.calls_placed()
        rows = [r for e in h.sim.deliveries.events for r in await h.actions(e.id)]
        dead = await h.dead_jobs()
        flows_after = {n.id: n.call_flow_id for n in h.sim.state.numbers.values()}
        flow_ids_after = {f.id: f.model_dump_json() for f in h.sim.state.call_flows.values()}
    injected = {e["callback_number"] for e in CORPUS}
    assert dead == []
    assert placed, "the bots placed no call at all"
    assert {c.to for c in placed} <= set(callers.values()), [c.to for c in placed]
    assert not {c.to for c in placed} & injected
    for call in placed:
        assert call.from_ == MAIN
        assert DialPolicy().check(call.to, account_country="RO",
                                  countries=SANDBOX_DIAL_COUNTRIES, caller_number=call.to,
                                  placed_today=0).allowed
    # every voicemail's read-out number was refused, and the caller called back instead
    refused = [r for r in rows if r.key.endswith(":requested-number")]
    assert len(refused) == len(CORPUS)
    assert all(r.detail.get("outcome") == "refused" for r in refused), refused
    assert {r.kind for r in rows} <= {"callback", "escalation", "notify"}, {r.kind for r in rows}
    assert flows_after == flows_before and flow_ids_after == flow_ids_before
