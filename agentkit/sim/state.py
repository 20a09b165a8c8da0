"""The simulator's account, held in memory: users, numbers, flows, calls, webhooks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from agentkit.odygy.models import (
    Account,
    AvailableNumber,
    Call,
    CallFlow,
    Number,
    Transcript,
    User,
    WebhookEndpoint,
)
from agentkit.sim.ids import IdFactory

FULL_ACCESS = frozenset({"*"})
DEFAULT_MAILBOX_ID = "vm_01SANDBOXDEFAULTMAILBOX0"


def utcnow() -> datetime:
    """Now, in UTC, to the second, as the API writes timestamps."""
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Endpoint:
    """A registered webhook endpoint and the secrets it signs with (newest first)."""

    info: WebhookEndpoint
    secrets: list[str]


@dataclass
class Voicemail:
    id: str
    call_id: str
    mailbox_id: str
    from_: str
    to: str
    duration: int
    received_at: datetime


@dataclass
class SimState:
    """All the data of one simulated account."""

    ids: IdFactory
    account: Account
    keys: dict[str, frozenset[str]] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    numbers: dict[str, Number] = field(default_factory=dict)
    catalogue: list[AvailableNumber] = field(default_factory=list)
    call_flows: dict[str, CallFlow] = field(default_factory=dict)
    calls: dict[str, Call] = field(default_factory=dict)
    transcripts: dict[str, Transcript] = field(default_factory=dict)
    recordings: set[str] = field(default_factory=set)
    voicemails: dict[str, Voicemail] = field(default_factory=dict)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)

    def number_by_e164(self, e164: str) -> Number | None:
        for number in self.numbers.values():
            if number.number == e164:
                return number
        return None

    def mailbox_for(self, number: Number) -> str:
        """The voicemail box an inbound call to ``number`` ends in."""
        flow = self.call_flows.get(number.call_flow_id or "")
        if flow is not None:
            for block in flow.blocks.values():
                if block.type == "voicemail":
                    return block.mailbox_id
        return DEFAULT_MAILBOX_ID


def new_state(api_key: str, *, seed_data: bool) -> SimState:
    """A fresh account; with ``seed_data``, the sandbox's numbers, team and flow."""
    ids = IdFactory()
    now = utcnow()
    state = SimState(
        ids=ids,
        account=Account(
            id=ids.new("acc"), name="Sandbox Ltd", country="RO", currency="EUR", created_at=now
        ),
        keys={api_key: FULL_ACCESS},
        catalogue=_catalogue(),
    )
    if seed_data:
        _seed(state, now)
    return state


def _seed(state: SimState, now: datetime) -> None:
    ids = state.ids
    for e164, country in (
        ("+40264000111", "RO"),
        ("+40264000222", "RO"),
        ("+442079460123", "GB"),
    ):
        nid = ids.new("num")
        state.numbers[nid] = Number(
            id=nid, number=e164, country=country, type="local", features=["voice", "sms"]
        )
    for name, email, ext, role in (
        ("Ivy Bennett", "ivy@sandbox.example", "1244", "agent"),
        ("Radu Pop", "radu@sandbox.example", "1245", "agent"),
        ("Maria Ionescu", "maria@sandbox.example", "1300", "supervisor"),
    ):
        uid = ids.new("usr")
        state.users[uid] = User(
            id=uid, name=name, email=email, extension=ext, role=role, created_at=now
        )
    fid = ids.new("cfl")
    state.call_flows[fid] = CallFlow.model_validate(
        {
            "id": fid,
            "name": "Main IVR",
            "entry": "greeting_1",
            "blocks": {
                "greeting_1": {
                    "type": "greeting",
                    "audio_url": "https://assets.sandbox.example/welcome.mp3",
                    "next": "ivr_1",
                },
                "ivr_1": {
                    "type": "ivr",
                    "prompt_tts": "Press 1 for sales, 2 for support.",
                    "choices": {"1": "queue_sales", "2": "queue_support"},
                    "timeout_next": "voicemail_1",
                },
                "queue_sales": {"type": "queue", "queue_id": "que_01SANDBOXSALES000000000"},
                "queue_support": {"type": "queue", "queue_id": "que_01SANDBOXSUPPORT0000000"},
                "voicemail_1": {"type": "voicemail", "mailbox_id": DEFAULT_MAILBOX_ID},
            },
            "created_at": now,
            "updated_at": now,
        }
    )
    main = next(iter(state.numbers.values()))
    main.call_flow_id = fid


def _catalogue() -> list[AvailableNumber]:
    """Numbers on offer to ``POST /v1/numbers/search``: a few per country and type."""
    offers: list[AvailableNumber] = []
    ranges = {
        ("RO", "local"): ["+4026400", "+4021310"],
        ("RO", "mobile"): ["+4074100"],
        ("RO", "tollfree"): ["+4080080"],
        ("GB", "local"): ["+4420794", "+4411796"],
        ("GB", "mobile"): ["+4477009"],
        ("GB", "tollfree"): ["+4480001"],
        ("US", "local"): ["+1212555", "+1415555"],
        ("US", "tollfree"): ["+1800555"],
        ("DE", "local"): ["+4930901"],
        ("FR", "local"): ["+3314000"],
    }
    lengths = {"RO": 12, "GB": 13, "US": 12, "DE": 13, "FR": 12}
    for (country, kind), prefixes in ranges.items():
        for prefix in prefixes:
            width = lengths[country] - len(prefix)
            for i in range(12):
                number = prefix + str(1000 + i * 7).zfill(width)[-width:]
                features: list[str] = ["voice"] if kind == "tollfree" else ["voice", "sms"]
                if kind == "local" and i % 3 == 0:
                    features.append("fax")
                offers.append(
                    AvailableNumber.model_validate(
                        {"number": number, "country": country, "type": kind, "features": features}
                    )
                )
    return offers
