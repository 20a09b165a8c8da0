"""What model calls cost: tokens, US dollars, and how many answers came from the cache."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

# USD per million (input, output) tokens, as OpenAI lists them (standard tier, 2025).
# A model not listed costs 0.0: local servers are free, and a wrong price is worse
# than none. Dated names ("gpt-4o-mini-2024-07-18") take the price of their base name.
DEFAULT_PRICES: Mapping[str, tuple[float, float]] = MappingProxyType({
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
})


def price_of(model: str, prices: Mapping[str, tuple[float, float]]) -> tuple[float, float]:
    """The (input, output) price of ``model``: its own entry, else its longest dated base name."""
    if model in prices:
        return prices[model]
    bases = [name for name in prices if model.startswith(name + "-")]
    return prices[max(bases, key=len)] if bases else (0.0, 0.0)


def cost_of(
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    prices: Mapping[str, tuple[float, float]],
) -> float:
    """US dollars for one call."""
    per_input, per_output = price_of(model, prices)
    return (prompt_tokens * per_input + completion_tokens * per_output) / 1_000_000


@dataclass
class Usage:
    """Running totals for one bot run: ``calls`` counts every answer, ``cached_calls`` those
    the cache gave (at no cost)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    calls: int = 0
    cached_calls: int = 0

    def add(
        self,
        *,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cost_usd: float = 0.0,
        cached: bool = False,
    ) -> None:
        """Count one answer."""
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.cost_usd += cost_usd
        self.calls += 1
        if cached:
            self.cached_calls += 1
