"""phone.systems webhook events, typed: the envelope and the ``data`` of each type.

``parse_event`` turns a verified body into one of the event classes below. A
known type whose ``data`` does not fit its model still parses, as
``UnreadableEvent``, so that an authentic event is stored, never refused.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

from agentkit.errors import AgentkitError
from agentkit.odygy.models import EVENT_TYPES, ApiModel, Call, describe_errors

MAX_CALL_ID = 200


class EnvelopeError(AgentkitError, ValueError):
    """A delivery's body is not a valid event envelope."""


class VoicemailData(ApiModel):
    id: str
    call_id: str
    mailbox_id: str
    from_: str = Field(alias="from")
    to: str
    duration: int
    received_at: datetime


class RecordingData(ApiModel):
    call_id: str
    duration: int


class TranscriptData(ApiModel):
    call_id: str
    language: str


class NumberPortedData(ApiModel):
    number_id: str
    number: str
    ported_at: datetime


class ScheduleData(ApiModel):
    bot: str
    handler: str
    state: Literal["open", "closed"]
    at: datetime


class RequestData(ApiModel):
    bot: str
    name: str
    args: dict[str, Any] = Field(default_factory=dict)
    requested_by: str | None = None


class Envelope(BaseModel):
    """What every delivery carries, whatever its type."""

    model_config = ConfigDict(extra="allow")

    id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    type: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    created_at: AwareDatetime
    data: dict[str, Any]

    @field_validator("id", "type")
    @classmethod
    def _printable(cls, value: str) -> str:
        # The store keeps these as text columns; PostgreSQL's text cannot hold NUL.
        if any(ord(c) < 0x20 or c == "\x7f" for c in value):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("created_at")
    @classmethod
    def _in_range(cls, value: datetime) -> datetime:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise ValueError("is out of range once converted to UTC") from None
        return value


class Event(BaseModel):
    """Base of every event: its id, type, creation time and raw ``data``."""

    model_config = ConfigDict(frozen=True)

    id: str
    type: str
    created_at: datetime
    raw_data: dict[str, Any] = Field(repr=False)

    @property
    def call_id(self) -> str | None:
        """The call this event belongs to, if any."""
        return None


class CallEvent(Event):
    data: Call

    @property
    def call_id(self) -> str | None:
        return self.data.id


class CallInitiated(CallEvent):
    type: Literal["call.initiated"]


class CallAnswered(CallEvent):
    type: Literal["call.answered"]


class CallCompleted(CallEvent):
    type: Literal["call.completed"]


class RecordingReady(Event):
    type: Literal["recording.ready"]
    data: RecordingData

    @property
    def call_id(self) -> str | None:
        return self.data.call_id


class TranscriptReady(Event):
    type: Literal["transcript.ready"]
    data: TranscriptData

    @property
    def call_id(self) -> str | None:
        return self.data.call_id


class VoicemailReceived(Event):
    type: Literal["voicemail.received"]
    data: VoicemailData

    @property
    def call_id(self) -> str | None:
        return self.data.call_id


class NumberPorted(Event):
    type: Literal["number.ported"]
    data: NumberPortedData


class ScheduleChanged(Event):
    """agentkit's own: a bot's schedule opened or closed (``@bot.on_schedule``)."""

    type: Literal["agentkit.schedule"]
    data: ScheduleData


class Requested(Event):
    """agentkit's own: an operator asked a bot for something (``agentkit request``)."""

    type: Literal["agentkit.request"]
    data: RequestData


CallbackOutcomeName = Literal[
    "reached", "unreached", "cancelled", "refused", "failed", "expired", "rejected"
]


class CallbackOutcome(BaseModel):
    """How one of a bot's callbacks ended.

    ``outcome``: reached; unreached after ``attempts``; cancelled (the caller
    was reached meanwhile); refused (the dial policy stopped it); expired (it
    could not be placed in time); failed. ``merged`` lists the requests folded
    into this callback (several voicemails from one number).
    """

    model_config = ConfigDict(frozen=True)

    key: str
    outcome: CallbackOutcomeName
    to: str
    attempts: int
    call_ids: tuple[str, ...]
    reason: str
    origin_event_id: str
    escalation: bool
    merged: tuple[str, ...] = ()


class CallbackEnded(Event):
    """agentkit's own: one of a bot's callbacks ended (``@bot.after_callback``).

    ``data`` says how; ``origin`` is the event the callback was asked for on.
    """

    type: Literal["agentkit.callback_ended"] = "agentkit.callback_ended"
    data: CallbackOutcome
    origin: Event

    @property
    def call_id(self) -> str | None:
        return self.origin.call_id


class UnknownEvent(Event):
    """An event type agentkit does not know: stored, acknowledged, not routed."""

    routable: ClassVar[bool] = False


class UnreadableEvent(Event):
    """A known type whose ``data`` does not fit its model: stored, not routed."""

    routable: ClassVar[bool] = False
    problem: str


KnownEvent = (
    CallInitiated
    | CallAnswered
    | CallCompleted
    | RecordingReady
    | TranscriptReady
    | VoicemailReceived
    | NumberPorted
)
EVENT_CLASSES: dict[str, type[Event]] = {
    "call.initiated": CallInitiated,
    "call.answered": CallAnswered,
    "call.completed": CallCompleted,
    "recording.ready": RecordingReady,
    "transcript.ready": TranscriptReady,
    "voicemail.received": VoicemailReceived,
    "number.ported": NumberPorted,
}
assert set(EVENT_CLASSES) == set(EVENT_TYPES)
INTERNAL_EVENT_CLASSES: dict[str, type[Event]] = {
    "agentkit.schedule": ScheduleChanged,
    "agentkit.request": Requested,
}
INTERNAL_EVENT_TYPES: tuple[str, ...] = tuple(INTERNAL_EVENT_CLASSES)
CALLBACK_ENDED = "agentkit.callback_ended"
# The ids agentkit gives its own events; a delivery with one is refused, so that no
# webhook can take the place of a schedule or an operator's request.
SCHEDULE_ID_PREFIX = "evt_schedule_"
REQUEST_ID_PREFIX = "evt_request_"
INTERNAL_ID_PREFIXES = (SCHEDULE_ID_PREFIX, REQUEST_ID_PREFIX)


def is_internal_id(event_id: str) -> bool:
    """Whether ``event_id`` has the form of one of agentkit's own events."""
    return event_id.lower().startswith(INTERNAL_ID_PREFIXES)


def read_envelope(body: bytes) -> Envelope:
    """Parse a body as an envelope, or raise EnvelopeError saying what is wrong.

    Strict: a field of the wrong JSON type (a number for ``created_at``, say)
    is refused rather than coerced.
    """
    try:
        return Envelope.model_validate_json(body, strict=True)
    except ValidationError as exc:
        if any(err["type"] == "json_invalid" for err in exc.errors()):
            raise EnvelopeError("the body is not valid JSON") from None
        raise EnvelopeError(f"the event envelope is invalid: {describe_errors(exc)}") from None


def event_from_envelope(envelope: Envelope, *, internal: bool = False) -> Event:
    """The typed event for an envelope: known, unknown or unreadable.

    agentkit's own event types are read only with ``internal``: from a webhook
    they are unknown types, stored and never routed.
    """
    common = {
        "id": envelope.id,
        "type": envelope.type,
        "created_at": envelope.created_at,
        "raw_data": envelope.data,
    }
    cls = EVENT_CLASSES.get(envelope.type)
    if cls is None and internal:
        cls = INTERNAL_EVENT_CLASSES.get(envelope.type)
    if cls is None:
        return UnknownEvent(**common)
    try:
        event = cls.model_validate({**common, "data": envelope.data})
    except ValidationError as exc:
        return UnreadableEvent(**common, problem=describe_errors(exc))
    call_id = event.call_id
    if call_id is not None and (not call_id or len(call_id) > MAX_CALL_ID
                                or any(ord(c) < 0x20 for c in call_id)):
        # The call id is an indexed text column: an empty, huge or control-character one
        # cannot be stored as such (PostgreSQL refuses NUL and index rows over 8 KiB).
        return UnreadableEvent(**common, problem=f"data: the call id is not usable "
                                                 f"({len(call_id)} characters)")
    return event


def parse_event(body: bytes, *, internal: bool = False) -> Event:
    """Parse a verified delivery body (or, with ``internal``, a stored one) into its event."""
    return event_from_envelope(read_envelope(body), internal=internal)


def internal_body(event_id: str, event_type: str, data: dict[str, Any]) -> bytes:
    """The stored body of one of agentkit's own events, shaped like a delivery."""
    from datetime import UTC

    return json.dumps({
        "id": event_id,
        "type": event_type,
        "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": data,
    }).encode()


def event_type_of(cls: type[Event]) -> str | None:
    """The ``type`` string an event class stands for, or None for a base class."""
    field = cls.model_fields.get("type")
    args = get_args(field.annotation) if field is not None else ()
    return args[0] if len(args) == 1 and isinstance(args[0], str) else None


def call_parties(event: Event) -> tuple[str | None, str | None, str | None]:
    """The call's from number, to number and direction, where the event's data says them.

    Call events say all three, a voicemail its numbers; other events none.
    """
    data = getattr(event, "data", None)
    said = (getattr(data, "from_", None), getattr(data, "to", None),
            getattr(data, "direction", None))
    from_, to, direction = (value if isinstance(value, str) else None for value in said)
    return from_, to, direction


def is_routable(event: Event) -> bool:
    """Whether bots may be given this event (known type, readable data)."""
    return getattr(type(event), "routable", True)
