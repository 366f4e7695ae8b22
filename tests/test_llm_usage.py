"""Usage per request and its accumulation over turns and sessions."""

from __future__ import annotations

import dataclasses

import pytest
from openai.types import CompletionUsage

from voiceagent.llm import Usage, UsageTotals


def test_usage_reads_cached_tokens_from_prompt_details() -> None:
    raw = CompletionUsage.model_validate(
        {
            "prompt_tokens": 20,
            "completion_tokens": 8,
            "total_tokens": 28,
            "prompt_tokens_details": {"cached_tokens": 16},
        }
    )
    assert Usage.from_openai(raw) == Usage(prompt=20, completion=8, cached=16)


@pytest.mark.parametrize("details", [None, {}, {"cached_tokens": None}])
def test_missing_cached_tokens_count_as_zero(details: object) -> None:
    data = {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}
    if details is not None:
        data["prompt_tokens_details"] = details
    assert Usage.from_openai(CompletionUsage.model_validate(data)).cached == 0


def test_usage_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Usage(1, 2, 3).prompt = 5  # type: ignore[misc]


def test_totals_sum_requests_and_report_the_cache_hit_ratio() -> None:
    totals = UsageTotals()
    assert totals.cache_hit_ratio is None
    totals.add(Usage(prompt=100, completion=10, cached=0))
    totals += Usage(prompt=100, completion=20, cached=80, estimated=True)
    assert (totals.requests, totals.prompt, totals.completion, totals.cached) == (2, 200, 30, 80)
    assert totals.total == 230
    assert totals.cache_hit_ratio == pytest.approx(0.4)
    assert totals.estimated
