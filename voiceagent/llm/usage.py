"""Token usage of one request (`Usage`) and a running sum over many (`UsageTotals`)."""

from __future__ import annotations

from dataclasses import dataclass

from openai.types import CompletionUsage


@dataclass(frozen=True)
class Usage:
    """Tokens of one request; `cached` is the part of `prompt` served from the prefix cache."""

    prompt: int
    completion: int
    cached: int
    estimated: bool = False

    @classmethod
    def from_openai(cls, usage: CompletionUsage) -> Usage:
        details = usage.prompt_tokens_details
        cached = details.cached_tokens if details is not None else None
        return cls(
            prompt=usage.prompt_tokens or 0,
            completion=usage.completion_tokens or 0,
            cached=cached or 0,
        )

    @property
    def total(self) -> int:
        return self.prompt + self.completion


@dataclass
class UsageTotals:
    """Sums `Usage` over requests (a turn, a session, a client)."""

    requests: int = 0
    prompt: int = 0
    completion: int = 0
    cached: int = 0
    estimated: bool = False

    def add(self, usage: Usage) -> None:
        self.requests += 1
        self.prompt += usage.prompt
        self.completion += usage.completion
        self.cached += usage.cached
        self.estimated = self.estimated or usage.estimated

    def __iadd__(self, usage: Usage) -> UsageTotals:
        self.add(usage)
        return self

    @property
    def total(self) -> int:
        return self.prompt + self.completion

    @property
    def cache_hit_ratio(self) -> float | None:
        """Cached ÷ prompt tokens, or None before any prompt token was counted."""
        if self.prompt <= 0:
            return None
        return self.cached / self.prompt
