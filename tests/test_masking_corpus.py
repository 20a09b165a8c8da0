"""The labelled corpus: all payment data goes, and text without any comes through as it was."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agentkit.redact import mask_payment_data, mask_segments

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "fixtures" / "payment_corpus.jsonl"
BENCHMARK = ROOT / "benchmarks" / "masking.py"
ROWS: list[dict[str, Any]] = [json.loads(line) for line in CORPUS.read_text().splitlines()]
POSITIVES = [r for r in ROWS if r["label"] == "payment"]
NEGATIVES = [r for r in ROWS if r["label"] == "clean"]
KINDS = {"order", "phone", "date", "amount", "time", "tracking", "reference", "account",
         "postcode", "adversarial", "segments"}
MAX_CHANGED_SHARE = 0.02


def masked(text: str | list[str]) -> str | list[str]:
    """A snippet masked as agentkit masks it: a list of segments as a transcript."""
    return mask_segments(text) if isinstance(text, list) else mask_payment_data(text)


def flat(text: str | list[str]) -> str:
    return text if isinstance(text, str) else " ".join(text)


def test_corpus_is_large_varied_and_well_formed() -> None:
    """60 or more snippets each way, every kind of clean number, each secret in its snippet."""
    assert len(POSITIVES) >= 60 and len(NEGATIVES) >= 60
    assert {r["kind"] for r in NEGATIVES} >= KINDS
    assert any(isinstance(r["text"], list) for r in POSITIVES)
    assert len({r["id"] for r in ROWS}) == len(ROWS)
    for row in POSITIVES:
        assert row["sensitive"], row["id"]
        assert all(s in flat(row["text"]) for s in row["sensitive"] + row.get("kept", [])), row


@pytest.mark.parametrize("row", POSITIVES, ids=[r["id"] for r in POSITIVES])
def test_every_sensitive_substring_is_gone(row: dict[str, Any]) -> None:
    """Each snippet with payment data loses all of it, and keeps what it must keep."""
    out = flat(masked(row["text"]))
    assert [s for s in row["sensitive"] if s in out] == [], out
    assert [k for k in row.get("kept", []) if k not in out] == [], out


def test_snippets_without_payment_data_come_through_unchanged() -> None:
    """At most 2 % of the snippets without payment data change at all."""
    outs = [(r["id"], masked(r["text"]), r["text"]) for r in NEGATIVES]
    changed = [(key, flat(out)) for key, out, text in outs if out != text]
    assert len(changed) <= MAX_CHANGED_SHARE * len(NEGATIVES), changed


def test_benchmark_reports_the_corpus_figures() -> None:
    """benchmarks/masking.py runs the corpus and ends with the figures as one JSON line."""
    done = subprocess.run(
        [sys.executable, str(BENCHMARK), "--repeat", "1"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert len(lines) > 2
    assert (summary["positives"], summary["negatives"]) == (len(POSITIVES), len(NEGATIVES))
    assert summary["recall"] == 1.0
    assert summary["negatives_changed_share"] <= MAX_CHANGED_SHARE
    for key in ("precision", "negatives_changed", "mask_us_per_snippet", "log_string_us"):
        assert key in summary
