"""A call's words as delimited, masked, bounded data for a prompt.

What a caller said is data, never instructions: it goes to the model between
``<transcript>`` and ``</transcript>``, with payment data masked and anything
that could pass for a tag neutralised, so no caller can close the block early.
Payment data is masked over the whole transcript at once, so a card number or
a security code read across several segments is masked in each of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agentkit.odygy.models import Transcript, TranscriptSegment
from agentkit.redact import mask_payment_data, mask_segments

OPEN = "<transcript>"
CLOSE = "</transcript>"
CHARS_PER_TOKEN = 4
HEAD_SHARE = 0.4
# The omission line and the delimiters must fit in the budget too.
_RESERVE = 80
# Angle brackets and their look-alikes become single guillemets: a caller's
# "</transcript>" stays readable but cannot end the block.
_BRACKETS = str.maketrans({
    "<": "\u2039", "\uff1c": "\u2039", "\ufe64": "\u2039", "\u2329": "\u2039", "\u27e8": "\u2039",
    ">": "\u203a", "\uff1e": "\u203a", "\ufe65": "\u203a", "\u232a": "\u203a", "\u27e9": "\u203a",
})
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c\x85]+")


def chars_for_tokens(tokens: int) -> int:
    """The characters that fit in ``tokens``, at the usual ~4 characters a token."""
    return tokens * CHARS_PER_TOKEN


def clean(text: str, *, one_line: bool = False) -> str:
    """Caller text made safe to embed: payment data masked, tag look-alikes neutralised.

    ``one_line`` also folds line breaks into spaces, so a segment cannot forge
    a line of its own (a fake ``[00:01.0] agent:`` turn).
    """
    return _neutralise(mask_payment_data(text), one_line=one_line)


def _neutralise(text: str, *, one_line: bool) -> str:
    text = text.translate(_BRACKETS)
    return _LINE_BREAKS.sub(" ", text).strip() if one_line else text


def timestamp(seconds: float) -> str:
    """``mm:ss.s``; minutes run past 59 rather than adding hours."""
    tenths = max(0, round(seconds * 10))
    minutes, rest = divmod(tenths, 600)
    return f"{minutes:02d}:{rest // 10:02d}.{rest % 10}"


def segment_line(
    segment: TranscriptSegment, *, size: int | None = None, keep_end: bool = False
) -> str:
    """``[mm:ss.s] speaker: text``; with ``size``, the text is cut to fit (keeping its end
    when ``keep_end``). The segment is masked on its own: ``render_transcript`` masks a
    transcript's segments together."""
    return _line(segment, mask_payment_data(segment.text), size=size, keep_end=keep_end)


def _line(
    segment: TranscriptSegment, masked: str, *, size: int | None = None, keep_end: bool = False
) -> str:
    """``segment_line`` for a segment whose text is ``masked`` already."""
    speaker = clean(segment.speaker, one_line=True) or "unknown"
    prefix = f"[{timestamp(segment.t)}] {speaker}: "
    text = _neutralise(masked, one_line=True)
    if size is not None:
        room = max(size - len(prefix), 20)
        text = _clip_start(text, room) if keep_end else _clip_end(text, room)
    return prefix + text


def render_transcript(source: Transcript | str | None, *, max_chars: int) -> str:
    """The delimited block for a transcript (one line per segment) or a plain text.

    Cutting rule, when the block would exceed ``max_chars``: keep whole
    segments from the start while they fit in 40 % of the budget, and whole
    segments from the end while they fit in 60 %; the middle becomes one line
    ``[... N segments, M seconds omitted ...]``. A first or last segment too
    long for its share is cut itself (keeping its start, or its end). A plain
    text is cut the same way by characters, at a space where it can be, with
    ``[... N characters omitted ...]``. None renders as an empty block.
    Payment data is masked before any cut, over all the segments at once.
    """
    budget = max(max_chars - _RESERVE, 40)
    if source is None:
        body: list[str] = []
    elif isinstance(source, str):
        body = _cut_text(clean(source).strip(), budget)
    else:
        body = _cut_segments(source.segments, budget)
    return "\n".join([OPEN, *body, CLOSE])


def _cut_segments(segments: Sequence[TranscriptSegment], budget: int) -> list[str]:
    texts = mask_segments([s.text for s in segments])
    lines = [_line(s, t) for s, t in zip(segments, texts, strict=True)]
    if sum(len(line) + 1 for line in lines) <= budget:
        return lines
    head_budget = int(budget * HEAD_SHARE)
    tail_budget = budget - head_budget
    head: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > head_budget:
            break
        head.append(line)
        used += len(line) + 1
    tail: list[str] = []
    used = 0
    for line in reversed(lines[len(head):]):
        if used + len(line) + 1 > tail_budget:
            break
        tail.insert(0, line)
        used += len(line) + 1
    start, end = len(head), len(lines) - len(tail)
    if not head and start < end:
        head, start = [_line(segments[0], texts[0], size=head_budget)], 1
    if not tail and start < end:
        tail, end = [_line(segments[-1], texts[-1], size=tail_budget, keep_end=True)], end - 1
    if start >= end:
        return [*head, *tail]
    omitted = segments[start:end]
    resume = segments[end].t if end < len(segments) else omitted[-1].t
    seconds = max(0, round(resume - omitted[0].t))
    marker = f"[... {len(omitted)} segments, {seconds} seconds omitted ...]"
    return [*head, marker, *tail]


def _cut_text(text: str, budget: int) -> list[str]:
    if not text:
        return []
    if len(text) <= budget:
        return [text]
    head = _clip_end(text, int(budget * HEAD_SHARE), mark=False)
    tail = _clip_start(text, budget - len(head), mark=False)
    omitted = len(text) - len(head) - len(tail)
    return [head, f"[... {omitted} characters omitted ...]", tail]


def _clip_end(text: str, size: int, *, mark: bool = True) -> str:
    """The start of ``text`` in ``size`` characters, cut at a space if one is near."""
    if len(text) <= size:
        return text
    room = size - (2 if mark else 0)
    cut = text.rfind(" ", 0, room + 1)
    kept = text[: cut if cut > room // 2 else room].rstrip()
    return kept + " \u2026" if mark else kept


def _clip_start(text: str, size: int, *, mark: bool = True) -> str:
    """The end of ``text`` in ``size`` characters, cut at a space if one is near."""
    if len(text) <= size:
        return text
    room = size - (2 if mark else 0)
    start = len(text) - room
    space = text.find(" ", start)
    begin = space + 1 if space != -1 and space - start < room // 2 else start
    kept = text[begin:].lstrip()
    return "\u2026 " + kept if mark else kept
