"""The retry policy as a specification: the table, the backoff, Retry-After, classification."""

from __future__ import annotations

import json

import httpx2
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from voiceagent.llm import (
    AuthenticationError,
    BadRequestError,
    ConcurrencyLimitError,
    ElectronConnectionError,
    ElectronError,
    ElectronTimeoutError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    ServerError,
)
from voiceagent.llm.classify import error_from_failure, failure_from_exception, parse_retry_after
from voiceagent.llm.retry import RETRY_TABLE, Failure, FailureKind

EXPECTED_TABLE: dict[FailureKind, bool] = {
    "bad_request": False,
    "authentication": False,
    "permission": False,
    "client_error": False,
    "rate_limit": True,
    "concurrency_limit": True,
    "unavailable": True,
    "server_error": False,
    "connection": True,
    "timeout": True,
    "stream_error": True,
}


def fixed(value: float) -> RetryPolicy:
    return RetryPolicy(rand=lambda: value)


def test_the_table_has_exactly_the_specified_rows() -> None:
    assert dict(RETRY_TABLE) == EXPECTED_TABLE


@pytest.mark.parametrize(("kind", "retried"), sorted(EXPECTED_TABLE.items()))
def test_each_row_of_the_table_decides_the_first_failure(kind: FailureKind, retried: bool) -> None:
    decision = RetryPolicy().decide(Failure(kind, "boom"), attempts_made=1)
    assert decision.retry is retried


def test_backoff_doubles_from_a_quarter_second_and_caps_at_eight() -> None:
    policy = fixed(0.5)  # the middle of the jitter range: no jitter
    waits = [policy.decide(Failure("unavailable", "x"), n).delay for n in range(1, 5)]
    assert waits == [0.25, 0.5, 1.0, 2.0]
    assert [policy.nominal_backoff(n) for n in range(5, 9)] == [4.0, 8.0, 8.0, 8.0]


@given(attempt=st.integers(1, 12), r=st.floats(0.0, 1.0, exclude_max=True))
def test_jitter_stays_within_its_bounds_and_under_the_cap(attempt: int, r: float) -> None:
    policy = RetryPolicy(rand=lambda: r)
    nominal = policy.nominal_backoff(attempt)
    wait = policy.backoff(attempt)
    assert nominal * (1 - policy.jitter) <= wait <= nominal * (1 + policy.jitter)
    assert wait <= policy.cap


def test_jitter_actually_varies_the_wait() -> None:
    low, high = fixed(0.0).backoff(1), fixed(0.999).backoff(1)
    assert low < 0.25 < high


def test_at_most_five_attempts_in_total() -> None:
    policy = RetryPolicy()
    failure = Failure("unavailable", "x")
    assert [policy.decide(failure, n).retry for n in range(1, 6)] == [True] * 4 + [False]


def test_scale_shrinks_every_wait_but_not_the_decisions() -> None:
    failure = Failure("rate_limit", "x", retry_after=2.0)
    normal, scaled = fixed(0.5).decide(failure, 1), RetryPolicy(scale=0.001).decide(failure, 1)
    assert normal.retry and scaled.retry
    assert normal.delay == 2.0
    assert scaled.delay == pytest.approx(0.002)


def test_retry_after_is_honoured_when_longer_than_the_backoff() -> None:
    assert fixed(0.5).decide(Failure("rate_limit", "x", retry_after=3.0), 1).delay == 3.0
    assert fixed(0.5).decide(Failure("rate_limit", "x", retry_after=0.1), 1).delay == 0.25


def test_retry_after_beyond_the_cap_fails_at_once_saying_when_to_retry() -> None:
    failure = Failure("rate_limit", "slow down", status=429, retry_after=30.0)
    decision = RetryPolicy().decide(failure, 1)
    assert not decision.retry
    error = error_from_failure(failure, attempts=1, reason=decision.reason)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 30.0
    assert "30 s" in str(error)


def test_a_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=1.5)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "Thu, 01 Jan 1970 00:00:10 GMT"}, 5.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_parsing(headers: dict[str, str], seconds: float | None) -> None:
    assert parse_retry_after(headers, now=5.0) == seconds


def status_error(status: int, body: object, headers: dict[str, str] | None = None) -> Exception:
    request = httpx2.Request("POST", "http://127.0.0.1:1/waves/v1/chat/completions")
    response = httpx2.Response(
        status, headers=headers or {}, content=json.dumps(body).encode(), request=request
    )
    client = openai.AsyncOpenAI(api_key="x", base_url="http://127.0.0.1:1/waves/v1")
    return client._make_status_error_from_response(response)


def envelope(message: str, type_: str = "invalid_request_error", rid: str = "req_1") -> object:
    return {"error": {"message": message, "type": type_, "details": [], "request_id": rid}}


@pytest.mark.parametrize(
    ("status", "message", "kind", "error_cls"),
    [
        (400, "bad", "bad_request", BadRequestError),
        (401, "no", "authentication", AuthenticationError),
        (403, "no", "permission", PermissionDeniedError),
        (404, "where", "client_error", ElectronError),
        (429, "Too many requests", "rate_limit", RateLimitError),
        (429, "Concurrency limit reached", "concurrency_limit", ConcurrencyLimitError),
        (500, "oops", "server_error", ServerError),
        (502, "blip", "unavailable", ServerError),
        (503, "busy", "unavailable", ServerError),
    ],
)
def test_status_errors_are_classified_with_their_envelope(
    status: int, message: str, kind: str, error_cls: type[ElectronError]
) -> None:
    exc = status_error(status, envelope(message, rid="req_env"), {"retry-after": "1"})
    assert isinstance(exc, openai.APIStatusError)
    failure = failure_from_exception(exc)
    assert failure.kind == kind
    assert failure.status == status
    assert failure.message == message
    assert failure.request_id == "req_env"  # from the envelope when the header is missing
    assert failure.retry_after == 1.0
    error = error_from_failure(failure, attempts=2)
    assert type(error) is error_cls
    assert error.request_id == "req_env" and error.attempts == 2 and error.status == status


def test_the_header_request_id_wins_over_the_envelope() -> None:
    exc = status_error(503, envelope("busy", rid="req_env"), {"x-request-id": "req_hdr"})
    assert isinstance(exc, openai.APIStatusError)
    assert failure_from_exception(exc).request_id == "req_hdr"


def test_connection_and_timeout_errors_are_classified() -> None:
    request = httpx2.Request("POST", "http://127.0.0.1:1/")
    try:
        raise openai.APIConnectionError(request=request) from ConnectionRefusedError("refused")
    except openai.APIConnectionError as exc:
        failure = failure_from_exception(exc)
    assert failure.kind == "connection" and "refused" in failure.message
    assert failure_from_exception(openai.APITimeoutError(request)).kind == "timeout"
    assert isinstance(error_from_failure(failure, attempts=5), ElectronConnectionError)
    timeout = error_from_failure(Failure("timeout", "slow"), attempts=5)
    assert isinstance(timeout, ElectronTimeoutError)


def test_an_error_event_inside_a_stream_is_classified_by_its_type() -> None:
    request = httpx2.Request("POST", "http://127.0.0.1:1/")
    body = {"message": "context too long", "type": "invalid_request_error", "request_id": "r"}
    bad = openai.APIError("context too long", request, body=body)
    assert failure_from_exception(bad).kind == "bad_request"
    other = openai.APIError("upstream hiccup", request, body={"message": "upstream hiccup"})
    assert failure_from_exception(other).kind == "stream_error"
