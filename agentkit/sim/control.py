"""``/_sim/``: drive the simulator from another process (the CLI, a benchmark, a demo).

These routes are the simulator's own, not phone.systems'. They take no key: the
simulator listens on loopback and holds nothing of value.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, fields
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from quart import Quart, Response, request

from agentkit.odygy.models import (
    E164,
    EventType,
    WebhookEndpoint,
    describe_errors,
    validate_request,
)
from agentkit.sim.calls import Dialogue, InboundOutcome, OutboundOutcome, PlacedCall
from agentkit.sim.config import SimConfig
from agentkit.sim.delivery import DeliveryLog
from agentkit.sim.gate import GateStats, SimApiError
from agentkit.sim.state import SimState


class ControlHost(Protocol):
    """What the ``/_sim/`` routes use of the simulator."""

    @property
    def config(self) -> SimConfig: ...
    @property
    def state(self) -> SimState: ...
    @property
    def stats(self) -> GateStats: ...
    @property
    def deliveries(self) -> DeliveryLog: ...

    def leave_voicemail(
        self, from_: str, to: str | None, words: str, *, ai_features: Sequence[str],
        language: str,
    ) -> PlacedCall: ...

    def inbound_call(
        self, from_: str, to: str | None, *, outcome: InboundOutcome, dialogue: Dialogue,
        user_id: str | None, recording: bool, ai_features: Sequence[str], language: str,
        ring: float | None = None,
    ) -> PlacedCall: ...

    def script_outbound(self, to: str, outcomes: Sequence[OutboundOutcome]) -> None: ...

    def add_webhook(
        self, url: str, secret: str, events: Sequence[str] = ...
    ) -> WebhookEndpoint: ...


class _Control(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class VoicemailScenario(_Control):
    from_: E164 = Field(alias="from")
    to: E164 | None = None
    words: str = Field(min_length=1, max_length=5000)
    language: str = "en-US"
    ai_features: list[Literal["summary", "sentiment", "transcript", "topics"]] = []


class InboundScenario(_Control):
    from_: E164 | Literal["anonymous"] = Field(alias="from")
    to: E164 | None = None
    outcome: InboundOutcome = "answered"
    dialogue: list[tuple[str, str]] = [("caller", "Hello, I have a question.")]
    user_id: str | None = None
    recording: bool = False
    language: str = "en-US"
    ai_features: list[Literal["summary", "sentiment", "transcript", "topics"]] = []
    ring: float | None = Field(default=None, ge=0, le=600)


class OutboundScript(_Control):
    to: E164
    outcomes: list[OutboundOutcome] = Field(min_length=1)


class WebhookRegistration(_Control):
    url: str
    secret: str = Field(min_length=1)
    events: list[EventType] | None = None


class FaultSettings(_Control):
    error_rate: float | None = Field(default=None, ge=0, le=1)
    lost_answer_rate: float | None = Field(default=None, ge=0, le=1)
    timeout_rate: float | None = Field(default=None, ge=0, le=1)
    timeout_hold: float | None = Field(default=None, ge=0, le=600)
    rate_limit_rate: float | None = Field(default=None, ge=0, le=1)
    latency: float | None = Field(default=None, ge=0, le=60)


def _ok(payload: Any, status: int = 200) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def create_control_routes(app: Quart, sim: ControlHost) -> None:
    """Add the ``/_sim/`` routes to the simulator's app."""

    async def body(model: type[BaseModel]) -> Any:
        raw = await request.get_data(as_text=False)
        try:
            return validate_request(model, raw or b"{}")
        except ValidationError as exc:
            raise SimApiError(400, "invalid_request", describe_errors(exc)) from None

    @app.post("/_sim/voicemails")
    async def voicemail() -> Response:
        scenario: VoicemailScenario = await body(VoicemailScenario)
        try:
            placed = sim.leave_voicemail(
                scenario.from_,
                scenario.to,
                scenario.words,
                ai_features=scenario.ai_features,
                language=scenario.language,
            )
        except ValueError as exc:
            raise SimApiError(400, "invalid_request", str(exc)) from None
        return _ok(asdict(placed), 201)

    @app.post("/_sim/inbound_calls")
    async def inbound() -> Response:
        scenario: InboundScenario = await body(InboundScenario)
        try:
            placed = sim.inbound_call(
                scenario.from_,
                scenario.to,
                outcome=scenario.outcome,
                dialogue=scenario.dialogue,
                user_id=scenario.user_id,
                recording=scenario.recording,
                ai_features=scenario.ai_features,
                language=scenario.language,
                ring=scenario.ring,
            )
        except ValueError as exc:
            raise SimApiError(400, "invalid_request", str(exc)) from None
        return _ok(asdict(placed), 201)

    @app.post("/_sim/outbound_scripts")
    async def outbound_script() -> Response:
        script: OutboundScript = await body(OutboundScript)
        sim.script_outbound(script.to, script.outcomes)
        return _ok({"to": script.to, "outcomes": script.outcomes}, 201)

    @app.post("/_sim/webhooks")
    async def register_webhook() -> Response:
        registration: WebhookRegistration = await body(WebhookRegistration)
        kwargs = {"events": registration.events} if registration.events else {}
        info = sim.add_webhook(registration.url, registration.secret, **kwargs)
        return _ok(info.model_dump(mode="json"), 201)

    @app.put("/_sim/faults")
    async def set_faults() -> Response:
        settings: FaultSettings = await body(FaultSettings)
        for name, value in settings.model_dump(exclude_none=True).items():
            setattr(sim.config.faults, name, value)
        return _ok({f.name: getattr(sim.config.faults, f.name) for f in fields(sim.config.faults)})

    @app.get("/_sim/stats")
    async def stats() -> Response:
        log = sim.deliveries
        return _ok(
            {
                **asdict(sim.stats),
                "events": len(log.events),
                "delivery_attempts": len(log.attempts),
                "deliveries_ok": len(log.delivered()),
                "deliveries_given_up": len(log.gave_up),
                "calls": len(sim.state.calls),
            }
        )
