"""Live calls: the steps of a call, the records they change and the events they emit."""

from __future__ import annotations

import asyncio
import re
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from agentkit.odygy.models import Call, CallAi, Transcript, TranscriptSegment
from agentkit.sim.config import Timings
from agentkit.sim.state import SimState, Voicemail, utcnow
from agentkit.sim.tasks import BackgroundTasks

OutboundOutcome = Literal["answered", "busy", "no_answer", "failed", "voicemail"]
InboundOutcome = Literal["answered", "voicemail", "missed"]
# The caller ID of a caller who withheld theirs.
WITHHELD = "anonymous"
OUTBOUND_OUTCOMES: tuple[str, ...] = get_args(OutboundOutcome)
INBOUND_OUTCOMES: tuple[str, ...] = get_args(InboundOutcome)

Emit = Callable[[str, dict[str, Any]], object]
Dialogue = Sequence[tuple[str, str]]

_WORDS_PER_SECOND = 2.5
_NEGATIVE = re.compile(
    r"\b(angry|terrible|awful|unacceptable|cancel|complain\w*|lawyer|legal|refund|worst|"
    r"furious|disappointed|broken|still not)\b",
    re.I,
)
_POSITIVE = re.compile(r"\b(thanks|thank you|great|perfect|happy|excellent|appreciate)\b", re.I)
_TOPICS = {
    "billing": re.compile(r"\b(invoice|bill\w*|payment|charge\w*|refund)\b", re.I),
    "technical": re.compile(r"\b(broken|error|outage|not working|down|fault)\b", re.I),
    "sales": re.compile(r"\b(price|quote|buy|purchase|upgrade)\b", re.I),
    "cancellation": re.compile(r"\b(cancel\w*|terminate|leave)\b", re.I),
}


@dataclass(frozen=True)
class PlacedCall:
    """What a scenario started: the call, and the voicemail it left, if any."""

    call_id: str
    voicemail_id: str | None = None


def segments_for(dialogue: Dialogue) -> list[TranscriptSegment]:
    """Time-coded transcript segments for lines of dialogue, one per sentence."""
    segments: list[TranscriptSegment] = []
    t = 0.0
    for speaker, text in dialogue:
        for sentence in re.split(r"(?<=[.!?])\s+", text.strip()):
            if not sentence:
                continue
            segments.append(TranscriptSegment(t=round(t, 2), speaker=speaker, text=sentence))
            t += max(1.0, len(sentence.split()) / _WORDS_PER_SECOND)
    return segments


def spoken_seconds(dialogue: Dialogue) -> int:
    words = sum(len(text.split()) for _, text in dialogue)
    return max(1, round(words / _WORDS_PER_SECOND))


def naive_ai(features: Sequence[str], dialogue: Dialogue) -> CallAi | None:
    """phone.systems' own AI results, as a keyword-matching stand-in computes them."""
    wanted = {"summary", "sentiment", "topics"} & set(features)
    if not wanted:
        return None
    text = " ".join(line for _, line in dialogue)
    ai = CallAi()
    if "summary" in wanted:
        caller = " ".join(line for who, line in dialogue if who == "caller") or text
        sentences = re.split(r"(?<=[.!?])\s+", caller.strip())
        ai.summary = " ".join(sentences[:2])[:300] or None
    if "sentiment" in wanted:
        if _NEGATIVE.search(text):
            ai.sentiment = "negative"
        elif _POSITIVE.search(text):
            ai.sentiment = "positive"
        else:
            ai.sentiment = "neutral"
    if "topics" in wanted:
        ai.topics = [name for name, pattern in _TOPICS.items() if pattern.search(text)]
    return ai


class CallEngine:
    """Moves calls through their states on the simulator's clock and emits events."""

    def __init__(
        self, state: SimState, emit: Emit, timings: Timings, *, time_scale: float
    ) -> None:
        self._state = state
        self._emit = emit
        self.timings = timings
        self.time_scale = time_scale
        self._outcomes: defaultdict[str, deque[tuple[OutboundOutcome, Dialogue | None]]] = (
            defaultdict(deque)
        )
        self._tasks = BackgroundTasks()

    # scripting

    def script_outbound(
        self,
        to: str,
        outcomes: Sequence[OutboundOutcome],
        *,
        dialogue: Dialogue | None = None,
    ) -> None:
        """The next calls to ``to`` end, in turn, as ``outcomes`` says; later ones are answered."""
        for outcome in outcomes:
            if outcome not in OUTBOUND_OUTCOMES:
                raise ValueError(f"unknown outcome {outcome!r}: use one of {OUTBOUND_OUTCOMES}")
            self._outcomes[to].append((outcome, dialogue))

    # outbound

    def place_outbound(self, call: Call) -> None:
        """Start the life of an outbound call just created through the API."""
        self._emit_call("call.initiated", call)
        script = self._outcomes[call.to]
        outcome, dialogue = script.popleft() if script else ("answered", None)
        lines = dialogue or (
            ("agent", "Hello, this is a call back from Sandbox Ltd about your message."),
            ("caller", "Thanks for calling back, that is sorted now."),
        )
        self._spawn(self._run_outbound(call, outcome, lines))

    async def _run_outbound(self, call: Call, outcome: OutboundOutcome, lines: Dialogue) -> None:
        await self._pause(self.timings.ring)
        if outcome == "answered":
            await self._answer_and_talk(call, lines)
            return
        call.status = outcome
        call.ended_at = call.started_at + timedelta(seconds=self.timings.ring)
        if outcome == "voicemail":
            call.answered_at = call.ended_at
        self._emit_call("call.completed", call)

    # inbound

    def place_inbound(
        self,
        *,
        from_: str,
        to: str,
        outcome: InboundOutcome,
        dialogue: Dialogue,
        user_id: str | None,
        recording: bool,
        ai_features: Sequence[str],
        ai: CallAi | None,
        language: str,
        ring: float | None = None,
    ) -> PlacedCall:
        number = self._state.number_by_e164(to)
        if number is None:
            owned = ", ".join(n.number for n in self._state.numbers.values()) or "none"
            raise ValueError(f"{to} is not a number of this account (its numbers: {owned})")
        if outcome not in INBOUND_OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}: use one of {INBOUND_OUTCOMES}")
        call = Call.model_validate(
            {
                "id": self._state.ids.new("cal"),
                "direction": "inbound",
                "from": from_,
                "to": to,
                "user_id": None,
                "call_flow_id": number.call_flow_id,
                "status": "ringing",
                "started_at": utcnow(),
                "recording": recording or outcome == "voicemail",
                "ai_features": list(ai_features),
            }
        )
        self._state.calls[call.id] = call
        self._emit_call("call.initiated", call)
        voicemail_id = None
        if outcome == "voicemail":
            voicemail_id = self._state.ids.new("vmm")
            self._spawn(self._run_voicemail(call, voicemail_id, dialogue, ai, language))
        elif outcome == "missed":
            self._spawn(self._run_missed(call, self.timings.ring if ring is None else ring))
        else:
            agent = user_id or self._first_agent()
            self._spawn(self._run_inbound_answered(call, agent, dialogue, ai, language))
        return PlacedCall(call.id, voicemail_id)

    def _first_agent(self) -> str | None:
        for user in self._state.users.values():
            if user.role == "agent":
                return user.id
        return None

    async def _run_missed(self, call: Call, ring: float) -> None:
        await self._pause(ring)
        call.status = "missed"
        call.ended_at = call.started_at + timedelta(seconds=ring)
        self._emit_call("call.completed", call)

    async def _run_inbound_answered(
        self,
        call: Call,
        user_id: str | None,
        lines: Dialogue,
        ai: CallAi | None,
        language: str,
    ) -> None:
        await self._pause(self.timings.ring)
        call.user_id = user_id
        await self._answer_and_talk(call, lines, ai=ai, language=language)

    async def _run_voicemail(
        self,
        call: Call,
        voicemail_id: str,
        lines: Dialogue,
        ai: CallAi | None,
        language: str,
    ) -> None:
        await self._pause(self.timings.ring)
        length = spoken_seconds(lines)
        await self._pause(length)
        answered = call.started_at + timedelta(seconds=self.timings.ring)
        call.status = "voicemail"
        call.answered_at = None
        call.ended_at = answered + timedelta(seconds=length)
        call.duration = length
        number = self._state.number_by_e164(call.to)
        mailbox = self._state.mailbox_for(number) if number else "vm_unknown"
        voicemail = Voicemail(
            id=voicemail_id,
            call_id=call.id,
            mailbox_id=mailbox,
            from_=call.from_,
            to=call.to,
            duration=length,
            received_at=call.ended_at,
        )
        self._state.voicemails[voicemail_id] = voicemail
        self._emit_call("call.completed", call)
        self._emit(
            "voicemail.received",
            {
                "id": voicemail.id,
                "call_id": voicemail.call_id,
                "mailbox_id": voicemail.mailbox_id,
                "from": voicemail.from_,
                "to": voicemail.to,
                "duration": voicemail.duration,
                "received_at": _stamp(voicemail.received_at),
            },
        )
        await self._after_hangup(call, lines, ai=ai, language=language)

    # shared steps

    async def _answer_and_talk(
        self,
        call: Call,
        lines: Dialogue,
        *,
        ai: CallAi | None = None,
        language: str = "en-US",
    ) -> None:
        call.status = "in_progress"
        call.answered_at = call.started_at + timedelta(seconds=self.timings.ring)
        self._emit_call("call.answered", call)
        talk = max(self.timings.talk, spoken_seconds(lines))
        await self._pause(talk)
        call.status = "completed"
        call.ended_at = call.answered_at + timedelta(seconds=talk)
        call.duration = int(talk)
        self._emit_call("call.completed", call)
        await self._after_hangup(call, lines, ai=ai, language=language)

    async def _after_hangup(
        self, call: Call, lines: Dialogue, *, ai: CallAi | None, language: str
    ) -> None:
        jobs: list[Coroutine[Any, Any, None]] = []
        if call.recording:
            jobs.append(self._recording_ready(call))
        if call.recording or "transcript" in call.ai_features or call.status == "voicemail":
            jobs.append(self._transcript_ready(call, lines, ai, language))
        elif call.ai_features:
            jobs.append(self._ai_ready(call, lines, ai))
        await asyncio.gather(*jobs)

    async def _recording_ready(self, call: Call) -> None:
        await self._pause(self.timings.recording_delay)
        self._state.recordings.add(call.id)
        self._emit("recording.ready", {"call_id": call.id, "duration": call.duration})

    async def _transcript_ready(
        self, call: Call, lines: Dialogue, ai: CallAi | None, language: str
    ) -> None:
        await self._pause(self.timings.transcript_delay)
        self._state.transcripts[call.id] = Transcript(
            call_id=call.id, language=language, segments=segments_for(lines)
        )
        call.ai = ai or naive_ai(call.ai_features, lines)
        self._emit("transcript.ready", {"call_id": call.id, "language": language})

    async def _ai_ready(self, call: Call, lines: Dialogue, ai: CallAi | None) -> None:
        await self._pause(self.timings.transcript_delay)
        call.ai = ai or naive_ai(call.ai_features, lines)

    def _emit_call(self, event_type: str, call: Call) -> None:
        self._emit(event_type, call.model_dump(mode="json", by_alias=True))

    async def _pause(self, simulated_seconds: float) -> None:
        await asyncio.sleep(simulated_seconds * self.time_scale)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        self._tasks.spawn(coro)

    @property
    def busy(self) -> bool:
        return self._tasks.busy

    async def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until every call in progress has reached its end (events emitted)."""
        await self._tasks.wait_idle(timeout)

    async def close(self) -> None:
        await self._tasks.cancel_all()


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
