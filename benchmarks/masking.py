"""Payment-data masking: how much of the labelled corpus it gets right, and what it costs.

Runs ``agentkit.redact`` over ``tests/fixtures/payment_corpus.jsonl`` (one JSON
object a line: ``text``, a string or a list of transcript segments; ``label``,
``payment`` or ``clean``; for payment snippets the ``sensitive`` substrings that
must be gone and the ``kept`` ones that must stay). A list of segments is masked
with ``mask_segments``, as a transcript is; a string with ``mask_payment_data``.

Figures:

- ``recall``: the share of payment snippets with every sensitive substring gone;
- ``precision``: of the snippets masking changed, the share that hold payment data;
- ``negatives_changed`` (and its share): clean snippets that came out different;
- ``mask_us_per_snippet``: microseconds to mask one snippet, the corpus's mean;
- ``log_string_us``: microseconds per string of typical log lines (event names, ids,
  timestamps, URLs, error messages), what ``agentkit.logs.RedactSecrets`` pays for
  each string field; ``log_line_us``: the whole processor on one such log line.

``--baseline FILE`` also runs another ``redact.py`` (``git show
HEAD:agentkit/redact.py > /tmp/redact_head.py``) through the same corpus and
timings, reported with a ``baseline_`` prefix. Progress lines go to stdout as it
runs; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agentkit import logs, redact  # noqa: E402

CORPUS = ROOT / "tests" / "fixtures" / "payment_corpus.jsonl"
LOG_LINES: list[dict[str, Any]] = [
    {"event": "delivery.stored", "event_type": "voicemail.received",
     "call_id": "cal_01M8DQC1XW3F0Z9K2Y7B5N4R6T", "event_id": "evt_01J9Z3P8QK4M2N6R8T0V1W3X5Y",
     "timestamp": "2026-03-14T10:22:31.482913Z", "level": "info"},
    {"event": "join.waiting", "bot": "voicemail-callback", "handler": "call_back",
     "have": ["voicemail.received"], "timestamp": "2026-03-14T10:22:31.501277Z", "level": "info"},
    {"event": "callback.placed", "call_id": "cal_01M8DQC5B7V2K9W4X1Z3N8R6T0",
     "agent": "usr_01M8DQBYF3K7N2P5R8T1V4X6Z9", "attempt": 1, "to": "+442079460000",
     "timestamp": "2026-03-14T10:22:32.017730Z", "level": "info"},
    {"event": "llm.call", "task": "extract", "model": "gpt-4o-mini", "attempt": 1,
     "outcome": "answered", "prompt_tokens": 812, "completion_tokens": 64, "cost_usd": 0.000161,
     "cached": False, "ms": 912.4, "timestamp": "2026-03-14T10:22:31.998114Z", "level": "info"},
    {"event": "job.failed_will_retry", "level": "warning",
     "error": "cannot reach the model server at http://127.0.0.1:11434/v1 (2 retries): "
              "check OPENAI_BASE_URL and that the server is running", "retry_in_s": 1.5},
    {"event": "voicemail.triaged", "urgency": "normal", "wants_callback": True, "spam": False,
     "model": True, "bot": "voicemail-callback", "level": "info"},
    {"event": "callback.finished", "outcome": "reached", "reason": "answered, talked 20 s",
     "call_id": "cal_01M8DQC5B7V2K9W4X1Z3N8R6T0", "level": "info"},
    {"event": "voicemail.fallback", "reason": "LlmUnavailable", "llm": True, "level": "warning"},
]


def say(message: str) -> None:
    print(message, flush=True)


def load_corpus(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("redact_baseline", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def masker(module: ModuleType) -> Callable[[str | list[str]], str | list[str]]:
    """How ``module`` masks a snippet; a module with no ``mask_segments`` masks each segment."""
    one: Callable[[str], str] = module.mask_payment_data
    many: Callable[[Sequence[str]], list[str]] | None = getattr(module, "mask_segments", None)

    def mask(text: str | list[str]) -> str | list[str]:
        if isinstance(text, str):
            return one(text)
        return many(text) if many is not None else [one(t) for t in text]

    return mask


def flat(text: str | list[str]) -> str:
    return text if isinstance(text, str) else " ".join(text)


def evaluate(
    rows: list[dict[str, Any]], mask: Callable[[str | list[str]], str | list[str]],
    *, name: str, repeat: int,
) -> dict[str, Any]:
    positives = [r for r in rows if r["label"] == "payment"]
    negatives = [r for r in rows if r["label"] == "clean"]
    recalled, substrings, left, kept_lost, changed_pos, changed_neg = 0, 0, 0, 0, 0, []
    for n, row in enumerate(rows, 1):
        out = flat(mask(row["text"]))
        changed = out != flat(row["text"])
        if row["label"] == "payment":
            gone = [s for s in row["sensitive"] if s not in out]
            substrings += len(row["sensitive"])
            left += len(row["sensitive"]) - len(gone)
            recalled += len(gone) == len(row["sensitive"])
            kept_lost += sum(k not in out for k in row.get("kept", []))
            changed_pos += changed
        elif changed:
            changed_neg.append(row["id"])
        if n % 25 == 0 or n == len(rows):
            say(f"{name}: masked {n}/{len(rows)} snippets, {recalled} payment snippets fully "
                f"masked, {len(changed_neg)} clean snippets changed")
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        for row in rows:
            mask(row["text"])
        timings.append((time.perf_counter() - started) / len(rows) * 1e6)
    changed_all = changed_pos + len(changed_neg)
    return {
        "positives": len(positives),
        "negatives": len(negatives),
        "recall": round(recalled / len(positives), 4),
        "precision": round(changed_pos / changed_all, 4) if changed_all else 1.0,
        "negatives_changed": len(changed_neg),
        "negatives_changed_share": round(len(changed_neg) / len(negatives), 4),
        "mask_us_per_snippet": round(statistics.median(timings), 2),
        "sensitive_substrings": substrings,
        "sensitive_substrings_left": left,
        "kept_substrings_lost": kept_lost,
        "negatives_changed_ids": changed_neg,
    }


def log_timings(module: ModuleType, *, name: str, repeat: int) -> dict[str, float]:
    """Microseconds per string field and per whole log line through the log processor."""
    strings = [v for line in LOG_LINES for v in line.values() if isinstance(v, str)]
    mask: Callable[[str], str] = module.mask_payment_data
    rounds = max(1, 2000 // len(strings))
    per_string = []
    for _ in range(repeat):
        started = time.perf_counter()
        for _ in range(rounds):
            for s in strings:
                mask(s)
        per_string.append((time.perf_counter() - started) / (rounds * len(strings)) * 1e6)
    processor = logs.RedactSecrets(["ps_live_0123456789abcdef", "whsec_0123456789abcdef0123"])
    # The processor looks the function up in its module on each call: swap it in there.
    namespace = vars(logs)
    original = namespace["mask_payment_data"]
    namespace["mask_payment_data"] = mask
    try:
        per_line = []
        for _ in range(repeat):
            started = time.perf_counter()
            for _ in range(rounds):
                for line in LOG_LINES:
                    processor(None, "info", dict(line))
            per_line.append((time.perf_counter() - started) / (rounds * len(LOG_LINES)) * 1e6)
    finally:
        namespace["mask_payment_data"] = original
    result = {
        "log_string_us": round(statistics.median(per_string), 2),
        "log_line_us": round(statistics.median(per_line), 2),
    }
    say(f"{name}: {result['log_string_us']} us per log string, "
        f"{result['log_line_us']} us per log line through RedactSecrets")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--repeat", type=int, default=7,
                        help="timing rounds; the median is reported (default 7)")
    parser.add_argument("--baseline", type=Path,
                        help="another redact.py to measure the same way (say HEAD's)")
    args = parser.parse_args()
    rows = load_corpus(args.corpus)
    say(f"corpus: {len(rows)} snippets from {args.corpus}")
    summary = evaluate(rows, masker(redact), name="agentkit.redact", repeat=args.repeat)
    summary |= log_timings(redact, name="agentkit.redact", repeat=args.repeat)
    if args.baseline is not None:
        base = load_module(args.baseline)
        figures = evaluate(rows, masker(base), name="baseline", repeat=args.repeat)
        figures |= log_timings(base, name="baseline", repeat=args.repeat)
        summary |= {f"baseline_{k}": v for k, v in figures.items()
                    if k not in ("positives", "negatives")}
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
