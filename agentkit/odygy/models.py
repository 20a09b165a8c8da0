"""Typed models of the phone.systems API: what it answers and what it accepts.

Answers are parsed leniently (unknown fields are kept, so a newer API does not
break an older client). Requests are strict: ``validate_request`` refuses
unknown fields and mistyped values, as the API itself does.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar, get_args

import phonenumbers
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

Role = Literal["admin", "supervisor", "agent"]
NumberType = Literal["local", "mobile", "tollfree"]
NumberFeature = Literal["voice", "sms", "fax"]
AiFeature = Literal["summary", "sentiment", "transcript", "topics"]
Direction = Literal["inbound", "outbound"]
CallStatus = Literal[
    "ringing", "in_progress", "completed", "missed", "voicemail", "busy", "no_answer", "failed"
]
FINAL_CALL_STATUSES: frozenset[str] = frozenset(
    {"completed", "missed", "voicemail", "busy", "no_answer", "failed"}
)
EventType = Literal[
    "call.initiated",
    "call.answered",
    "call.completed",
    "recording.ready",
    "transcript.ready",
    "voicemail.received",
    "number.ported",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
SCOPES: tuple[str, ...] = (
    "read:*",
    "calls:write",
    "recordings:read",
    "webhooks:write",
    "users:write",
    "numbers:write",
    "call_flows:write",
)

# The form of an E.164 number, for fullmatch: + and up to 15 digits, the first not 0.
E164_PATTERN = re.compile(r"\+[1-9][0-9]{1,14}")
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def check_e164(value: str) -> str:
    """Return ``value`` if it is a phone number in E.164 format, else raise ValueError.

    Only the form is checked, as the API does: + and up to 15 digits, and
    where libphonenumber knows the country code, no national trunk prefix
    (+44 0...). Whether the number may be dialled is the dial policy's question.
    """
    if not E164_PATTERN.fullmatch(value):
        raise ValueError(f"{value!r} is not an E.164 number: write it as + country code digits")
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value  # a country code libphonenumber does not know: the form is all we check
    if phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164) != value:
        raise ValueError(f"{value!r} is not an E.164 number: drop the national trunk prefix")
    return value


def _check_email(value: str) -> str:
    if not _EMAIL_SHAPE.fullmatch(value):
        raise ValueError(f"{value!r} is not an email address")
    return value


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may not be null: leave the field out instead")
    return value


T = TypeVar("T")
# An optional request field: it may be left out, but not sent as null.
Omittable = Annotated[T | None, BeforeValidator(_refuse_null)]

E164 = Annotated[str, AfterValidator(check_e164)]
Email = Annotated[str, AfterValidator(_check_email)]
Extension = Annotated[str, StringConstraints(pattern=r"^[0-9]{3,6}$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
NonEmpty = Annotated[str, StringConstraints(min_length=1, max_length=200)]
BlockName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,64}$")]
ResourceId = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Url = Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2000)]


class ApiModel(BaseModel):
    """Base of every model: lenient by default, strict through ``validate_request``."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


M = TypeVar("M", bound=BaseModel)


def validate_request(model: type[M], data: Any) -> M:
    """Validate a request body as the API does: unknown fields and wrong types fail."""
    if isinstance(data, (str, bytes)):
        return model.model_validate_json(data, strict=True, extra="forbid")
    return model.model_validate(data, strict=True, extra="forbid")


def describe_errors(exc: ValidationError) -> str:
    """One phrase per problem, naming the field, as the API words ``error.message``."""
    problems = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-"))
        if err["type"] == "extra_forbidden":
            problems.append(f"unknown field '{where}'")
        elif err["type"] == "missing":
            problems.append(f"'{where}' is required")
        else:
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"'{where}': {message}" if where else message)
    return "; ".join(problems)


def request_body(body: BaseModel) -> dict[str, Any]:
    """The JSON body for a request model: API field names, unset fields left out."""
    return body.model_dump(mode="json", by_alias=True, exclude_unset=True)


# Account


class Account(ApiModel):
    id: str
    name: str
    country: str
    currency: str
    created_at: datetime


# Users


class User(ApiModel):
    id: str
    name: str
    email: str
    extension: str
    role: Role = "agent"
    caller_id_number: str | None = None
    created_at: datetime


class UserCreate(ApiModel):
    name: NonEmpty
    email: Email
    extension: Extension
    role: Role = "agent"
    caller_id_number: Omittable[E164] = None


class UserUpdate(ApiModel):
    """A change to a user: only ``caller_id_number`` may be set to null (cleared)."""

    name: Omittable[NonEmpty] = None
    email: Omittable[Email] = None
    extension: Omittable[Extension] = None
    role: Omittable[Role] = None
    caller_id_number: E164 | None = None


# Numbers


class Number(ApiModel):
    id: str
    number: str
    country: str
    type: NumberType
    features: list[NumberFeature] = Field(default_factory=list)
    call_flow_id: str | None = None


class AvailableNumber(ApiModel):
    number: str
    country: str
    type: NumberType
    features: list[NumberFeature] = Field(default_factory=list)


class NumberSearch(ApiModel):
    country: CountryCode
    type: Omittable[NumberType] = None
    prefix: Omittable[Annotated[str, StringConstraints(pattern=r"^[0-9]{1,12}$")]] = None
    features: Omittable[list[NumberFeature]] = None


class NumberAttach(ApiModel):
    call_flow_id: ResourceId


# Call flows


class GreetingBlock(ApiModel):
    type: Literal["greeting"]
    audio_url: Url
    next: BlockName | None = None


class IvrBlock(ApiModel):
    type: Literal["ivr"]
    prompt_tts: NonEmpty
    choices: dict[Annotated[str, StringConstraints(pattern=r"^[0-9*#]$")], BlockName]
    timeout_next: BlockName | None = None


class QueueBlock(ApiModel):
    type: Literal["queue"]
    queue_id: ResourceId


class VoicemailBlock(ApiModel):
    type: Literal["voicemail"]
    mailbox_id: ResourceId


Block = Annotated[
    GreetingBlock | IvrBlock | QueueBlock | VoicemailBlock, Field(discriminator="type")
]


def block_targets(block: GreetingBlock | IvrBlock | QueueBlock | VoicemailBlock) -> list[str]:
    """The names of the blocks a block can lead to."""
    if isinstance(block, GreetingBlock):
        return [block.next] if block.next else []
    if isinstance(block, IvrBlock):
        targets = list(block.choices.values())
        if block.timeout_next:
            targets.append(block.timeout_next)
        return targets
    return []


def flow_problems(entry: str, blocks: dict[str, Any]) -> list[str]:
    """What is wrong with a flow's wiring: an entry or target that names no block."""
    problems = []
    if entry not in blocks:
        problems.append(f"entry {entry!r} names no block")
    for name, block in blocks.items():
        for target in block_targets(block):
            if target not in blocks:
                problems.append(f"block {name!r} leads to {target!r}, which names no block")
    return problems


class CallFlow(ApiModel):
    id: str
    name: str
    entry: str
    blocks: dict[str, Block]
    created_at: datetime
    updated_at: datetime


FlowBlocks = Annotated[dict[BlockName, Block], Field(min_length=1, max_length=200)]


class CallFlowCreate(ApiModel):
    name: NonEmpty
    entry: BlockName
    blocks: FlowBlocks


class CallFlowUpdate(ApiModel):
    name: Omittable[NonEmpty] = None
    entry: Omittable[BlockName] = None
    blocks: Omittable[FlowBlocks] = None


# Calls


class CallAi(ApiModel):
    summary: str | None = None
    sentiment: str | None = None
    topics: list[str] | None = None


class Call(ApiModel):
    """A call record (CDR), as ``GET /v1/calls/{id}`` and the call events carry it."""

    id: str
    direction: Direction
    from_: str = Field(alias="from")
    to: str
    user_id: str | None = None
    call_flow_id: str | None = None
    status: CallStatus
    started_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    duration: int = 0
    recording: bool = False
    ai_features: list[AiFeature] = Field(default_factory=list)
    ai: CallAi | None = None


class CallCreate(ApiModel):
    from_: E164 = Field(alias="from")
    to: E164
    user_id: Omittable[ResourceId] = None
    recording: Omittable[bool] = None
    ai_features: Omittable[list[AiFeature]] = None


class Recording(ApiModel):
    url: str
    expires_at: datetime


class TranscriptSegment(ApiModel):
    t: float
    speaker: str
    text: str


class Transcript(ApiModel):
    call_id: str
    language: str
    segments: list[TranscriptSegment]


# Webhooks


class WebhookEndpoint(ApiModel):
    id: str
    url: str
    events: list[EventType]
    created_at: datetime
    secret: str | None = None


class WebhookCreate(ApiModel):
    url: Url
    events: Annotated[list[EventType], Field(min_length=1)]
    secret: Omittable[Annotated[str, StringConstraints(min_length=16, max_length=200)]] = None


# Errors and pages


class ErrorDetail(ApiModel):
    code: str
    message: str
    request_id: str | None = None


class ErrorBody(ApiModel):
    error: ErrorDetail


class Page(ApiModel):
    data: list[dict[str, Any]]
    next_cursor: str | None = None
