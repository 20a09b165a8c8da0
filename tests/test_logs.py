"""Log lines never carry secrets."""

from __future__ import annotations

import json

import pytest
import structlog

from agentkit.logs import MASK, RedactSecrets, configure_logging


def redact(secrets: list[str], **event: object) -> dict[str, object]:
    return dict(RedactSecrets(secrets)(None, "info", dict(event)))


def test_known_secret_masked_inside_text() -> None:
    """A configured secret is masked wherever it appears in a value."""
    out = redact(["ps_live_abcdef"], event="x", error="bad key ps_live_abcdef given")
    assert out["error"] == f"bad key {MASK} given"


def test_secret_named_fields_masked() -> None:
    """Fields named like keys, secrets, tokens or authorization are masked whatever they hold."""
    out = redact([], event="x", api_key="k1", headers={"Authorization": "Bearer abc"},
                  webhook_secret="s")
    assert out["api_key"] == MASK
    assert out["webhook_secret"] == MASK
    assert out["headers"] == {"Authorization": MASK}


def test_token_counts_are_not_secrets() -> None:
    """Numbers in fields named like tokens (a model call's token use) are logged as they are."""
    out = redact([], event="llm.call", prompt_tokens=312, completion_tokens=0,
                  usage={"total_tokens": 340}, token="t0k3n")
    assert (out["prompt_tokens"], out["completion_tokens"]) == (312, 0)
    assert out["usage"] == {"total_tokens": 340}
    assert out["token"] == MASK


def test_bearer_tokens_masked() -> None:
    """A bearer token in free text is masked."""
    out = redact([], event="x", detail="sent Authorization: Bearer ps_live_zzz123")
    assert "ps_live_zzz123" not in str(out)


def test_rendered_json_line_has_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    """A JSON log line rendered end to end carries no configured secret."""
    configure_logging(secrets=["whsec_topsecret"], level="info", json=True)
    try:
        structlog.get_logger("t").info("delivery.rejected", detail="used whsec_topsecret")
        line = capsys.readouterr().out.strip().splitlines()[-1]
    finally:
        configure_logging(level="info", json=False)
    assert "whsec_topsecret" not in line
    assert json.loads(line)["event"] == "delivery.rejected"


def test_payment_data_masked_in_logs() -> None:
    """A card number in a log value is masked like any secret."""
    out = redact([], event="x", detail="caller read 4111 1111 1111 1111 out")
    assert "4111" not in str(out)
