"""The simulator: one phone.systems account in memory, its API, its calls and its webhooks."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Callable, Sequence
from types import TracebackType

from quart import Quart

from agentkit.odygy.models import (
    EVENT_TYPES,
    SCOPES,
    Call,
    CallAi,
    Number,
    NumberType,
    WebhookEndpoint,
    check_e164,
)
from agentkit.serving import EmbeddedServer
from agentkit.sim.api import create_api_app
from agentkit.sim.calls import (
    WITHHELD,
    CallEngine,
    Dialogue,
    InboundOutcome,
    OutboundOutcome,
    PlacedCall,
)
from agentkit.sim.config import FaultKind, ScriptedFault, SimConfig
from agentkit.sim.control import create_control_routes
from agentkit.sim.delivery import DeliveryLog, Dispatcher, SimEvent
from agentkit.sim.gate import Gate, GateStats
from agentkit.sim.state import Endpoint, SimState, new_state, utcnow


class Simulator:
    """A phone.systems account, its REST API and its webhook deliveries, in one process.

    Drive it from tests through its methods (``leave_voicemail``,
    ``script_outbound``, ...) and from other processes through ``/_sim/``.
    """

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or SimConfig()
        self._rng = random.Random(self.config.random_seed)
        self.state: SimState = new_state(self.config.api_key, seed_data=self.config.seed_data)
        self.gate = Gate(self.state.keys, self.config.limits, self.config.faults, self._rng)
        self.dispatcher = Dispatcher(
            self.config.delivery,
            lambda: list(self.state.endpoints.values()),
            time_scale=self.config.time_scale,
            rng=self._rng,
        )
        self.engine = CallEngine(
            self.state, self.emit, self.config.timings, time_scale=self.config.time_scale
        )
        self.recording_key = os.urandom(32)
        self.app: Quart = create_api_app(self)
        self.app.before_serving(self.dispatcher.start)
        self.app.after_serving(self._close)
        create_control_routes(self.app, self)
        self._server: EmbeddedServer | None = None

    # serving

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the API on ``host:port`` (0: any free port); return the base URL with /v1."""
        self._server = EmbeddedServer(self.app, host=host, port=port)
        await self._server.start()
        return self.base_url

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.stop()
            self._server = None

    async def _close(self) -> None:
        await self.engine.close()
        await self.dispatcher.close()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the simulator is not serving: await start() first")
        return self._server.url

    @property
    def base_url(self) -> str:
        """The API base URL, as ODYGY_BASE_URL takes it."""
        return f"{self.url}/v1"

    @property
    def api_key(self) -> str:
        return self.config.api_key

    @property
    def stats(self) -> GateStats:
        return self.gate.stats

    @property
    def deliveries(self) -> DeliveryLog:
        return self.dispatcher.log

    # keys and webhooks

    def add_api_key(self, key: str, scopes: Sequence[str]) -> None:
        """Issue another key with the given scopes (``"*"`` for full access)."""
        unknown = set(scopes) - set(SCOPES) - {"*"}
        if unknown:
            raise ValueError(f"unknown scope(s) {sorted(unknown)}: use some of {SCOPES}")
        self.state.keys[key] = frozenset(scopes)

    def add_webhook(
        self, url: str, secret: str, events: Sequence[str] = EVENT_TYPES
    ) -> WebhookEndpoint:
        """Register an endpoint directly, as ``POST /v1/webhooks`` would."""
        unknown = set(events) - set(EVENT_TYPES)
        if unknown:
            raise ValueError(f"unknown event type(s) {sorted(unknown)}")
        info = WebhookEndpoint.model_validate(
            {
                "id": self.state.ids.new("whk"),
                "url": url,
                "events": list(events),
                "created_at": utcnow(),
            }
        )
        self.state.endpoints[info.id] = Endpoint(info=info, secrets=[secret])
        return info

    def rotate_secret(self, webhook_id: str, new_secret: str, *, keep_old: bool = True) -> None:
        """Sign with ``new_secret`` from now on, and with the old one too while ``keep_old``."""
        endpoint = self.state.endpoints[webhook_id]
        endpoint.secrets = [new_secret, *(endpoint.secrets[:1] if keep_old else [])]

    # events

    def emit(self, event_type: str, data: dict[str, object]) -> SimEvent:
        """Emit one event to every endpoint subscribed to its type."""
        event = SimEvent(
            id=self.state.ids.new("evt"), type=event_type, created_at=utcnow(), data=data
        )
        self.dispatcher.emit(event)
        return event

    def hold_deliveries(self) -> None:
        """Keep events back until ``release_deliveries``."""
        self.dispatcher.hold()

    def release_deliveries(
        self, order: Callable[[list[SimEvent]], list[SimEvent]] | None = None
    ) -> None:
        """Deliver the held events, in the order ``order`` returns (default: as emitted)."""
        self.dispatcher.release(order)

    # faults

    def inject_fault(
        self,
        kind: FaultKind,
        *,
        method: str | None = None,
        path: str | None = None,
        status: int = 503,
        hold: float = 30.0,
        retry_after: int = 1,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` requests matching ``method`` and ``path`` fail as ``kind``.

        ``path`` is the full request path, e.g. ``/v1/calls``.
        """
        for _ in range(times):
            self.config.faults.scripted.append(
                ScriptedFault(kind, method, path, status=status, hold=hold,
                              retry_after=retry_after)
            )

    # scenarios

    def script_outbound(
        self, to: str, outcomes: Sequence[OutboundOutcome], *, dialogue: Dialogue | None = None
    ) -> None:
        """The next outbound calls to ``to`` end as ``outcomes`` says, in turn."""
        self.engine.script_outbound(check_e164(to), outcomes, dialogue=dialogue)

    def leave_voicemail(
        self,
        from_: str,
        to: str | None = None,
        words: str = "Hi, please call me back.",
        *,
        ai_features: Sequence[str] = (),
        ai: CallAi | None = None,
        language: str = "en-US",
    ) -> PlacedCall:
        """A caller rings ``to`` (default: the account's first number) and leaves ``words``."""
        return self.inbound_call(
            from_,
            to,
            outcome="voicemail",
            dialogue=[("caller", words)],
            ai_features=ai_features,
            ai=ai,
            language=language,
        )

    def inbound_call(
        self,
        from_: str,
        to: str | None = None,
        *,
        outcome: InboundOutcome = "answered",
        dialogue: Dialogue = (("caller", "Hello, I have a question."), ("agent", "Sure.")),
        user_id: str | None = None,
        recording: bool = False,
        ai_features: Sequence[str] = (),
        ai: CallAi | None = None,
        language: str = "en-US",
        ring: float | None = None,
    ) -> PlacedCall:
        """A caller rings one of the account's numbers; the call runs to its end by itself.

        ``from_``: an E.164 number, or ``anonymous`` for a withheld caller ID. ``ring``:
        simulated seconds it rings before it is answered or missed (default: the timings').
        """
        if from_ != WITHHELD:
            check_e164(from_)
        if to is None:
            to = self.main_number
        return self.engine.place_inbound(
            from_=from_,
            to=check_e164(to),
            outcome=outcome,
            dialogue=dialogue,
            user_id=user_id,
            recording=recording,
            ai_features=ai_features,
            ai=ai,
            language=language,
            ring=ring,
        )

    def port_in(self, number: str, country: str, type: NumberType = "local") -> Number:
        """A number finishes porting in: it joins the account and number.ported is emitted."""
        check_e164(number)
        info = Number(
            id=self.state.ids.new("num"),
            number=number,
            country=country,
            type=type,
            features=["voice"],
        )
        self.state.numbers[info.id] = info
        self.emit(
            "number.ported",
            {
                "number_id": info.id,
                "number": number,
                "ported_at": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
        return info

    @property
    def main_number(self) -> str:
        """The account's first number: where scenarios ring by default."""
        if not self.state.numbers:
            raise ValueError("the account has no numbers: port_in() one first")
        return next(iter(self.state.numbers.values())).number

    def calls(self, *, to: str | None = None, direction: str | None = None) -> list[Call]:
        """The calls on record, oldest first, optionally only those to ``to``."""
        return [
            call
            for call in self.state.calls.values()
            if (to is None or call.to == to) and (direction is None or call.direction == direction)
        ]

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until every call has ended and every delivery has finished."""
        async with asyncio.timeout(timeout):
            while self.engine.busy or self.dispatcher.busy:
                await self.engine.wait_idle(timeout)
                await self.dispatcher.wait_idle(timeout)
