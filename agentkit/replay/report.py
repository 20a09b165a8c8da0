"""What a replay found: per-call differences, summary counts, and what each side cost.

One ``ReplayReport`` is built call by call as the replay streams; it keeps
the counts of every call but the detail of only the first ``MAX_SHOWN``
calls that differ, so that its size stays bounded however many calls run.
It is written as JSON (``--report out.json``, and for the console), and
rendered as a terminal table or an HTML page by ``agentkit.replay.render``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from agentkit.replay.compare import CallDifferences, compared, difference_words
from agentkit.store.base import ActionRecord, ModelAnswer

MAX_SHOWN = 500
Source = Literal["replay", "shadow"]


class SideTotals(BaseModel):
    """What one side did over every call: the actions compared, by kind; model answers and
    their cost."""

    actions: dict[str, int] = Field(default_factory=dict)
    model_answers: int = 0
    cached_answers: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, actions: Sequence[ActionRecord], answers: Sequence[ModelAnswer]) -> None:
        """Count one call's compared actions (``compared``) and its model answers."""
        for record in filter(compared, actions):
            self.actions[record.kind] = self.actions.get(record.kind, 0) + 1
        for answer in answers:
            self.model_answers += 1
            self.cached_answers += answer.cached
            self.prompt_tokens += answer.prompt_tokens
            self.completion_tokens += answer.completion_tokens
            self.cost_usd += answer.cost_usd

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class CallReport(BaseModel):
    """One call that differs: when it started, who called, and what differs."""

    call_id: str
    started_at: datetime | None = None
    from_number: str | None = None
    differences: CallDifferences
    errors: list[str] = Field(default_factory=list)


class ReplayReport(BaseModel):
    """Everything a replay (or a shadow comparison) found.

    ``candidate``: the bots replayed (or the shadow bot); ``against``: the live
    bots whose actions they were compared with. ``counts``: differences by
    word (``new-callbacks``, ``changed-fields``, ...), over every call;
    ``differing``: the first ``MAX_SHOWN`` calls that differ (or failed), in
    detail; ``not_shown``: how many more there were.
    ``errors``: handler runs that failed in the replay, over every call.
    ``failing``: the ``fail_on`` words the differences hit; non-empty fails.
    """

    source: Source = "replay"
    candidate: list[str] = Field(default_factory=list)
    against: list[str] = Field(default_factory=list)
    model: str = ""
    since: datetime | None = None
    until: datetime | None = None
    started_at: datetime
    finished_at: datetime | None = None
    calls: int = 0
    calls_differing: int = 0
    counts: dict[str, int] = Field(default_factory=dict)
    live: SideTotals = Field(default_factory=SideTotals)
    replayed: SideTotals = Field(default_factory=SideTotals)
    differing: list[CallReport] = Field(default_factory=list)
    not_shown: int = 0
    errors: int = 0
    fail_on: list[str] = Field(default_factory=list)
    failing: list[str] = Field(default_factory=list)

    @property
    def differences(self) -> int:
        """How many differences in all (actions added, removed or changed; fields changed)."""
        return sum(self.counts.values())

    def add_call(self, found: CallDifferences, *, started_at: datetime | None = None,
                 from_number: str | None = None, errors: Sequence[str] = ()) -> None:
        """Count one compared call; keep its detail while fewer than MAX_SHOWN are kept."""
        self.calls += 1
        self.errors += len(errors)
        if found.empty and not errors:
            return
        if not found.empty:
            self.calls_differing += 1
            counts = Counter(self.counts)
            counts.update(difference_words([found]))
            self.counts = dict(counts)
        if len(self.differing) >= MAX_SHOWN:
            self.not_shown += 1
            return
        self.differing.append(CallReport(call_id=found.call_id, started_at=started_at,
                                         from_number=from_number, differences=found,
                                         errors=list(errors)))
