"""Request ids on log records and errors, and no key anywhere, with every logger at DEBUG."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from voiceagent.llm import (
    BadRequestError,
    ElectronClient,
    RetryPolicy,
    StreamInterruptedError,
    current_request_id,
)
from voiceagent.testing.electron import ElectronServer

KEY = "sk-test-DO-NOT-LOG-1234"
FAST = RetryPolicy(scale=0.001)
HELLO = [{"role": "user", "content": "hello"}]
LOGGERS = ("", "openai", "httpx2", "httpcore2", "httpx", "httpcore", "voiceagent")


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    yield caplog


async def drain(client: ElectronClient) -> str | None:
    async with client.stream(HELLO) as stream:
        async for _ in stream:
            pass
    return stream.request_id


def ids_of(caplog: pytest.LogCaptureFixture, logger_prefix: str) -> set[object]:
    return {
        getattr(r, "request_id", None) for r in caplog.records if r.name.startswith(logger_prefix)
    }


async def test_records_of_a_request_carry_the_servers_request_id(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    async with ElectronServer() as server:
        client = ElectronClient(server.base_url, KEY, retry=FAST)
        request_id = await drain(client)
    assert request_id == server.requests[0].request_id
    assert current_request_id() is None  # reset once the stream closed
    markers = ("HTTP Request:", "HTTP Response:", "request_id:", "LLM usage", "first chunk")
    after_headers = [r for r in debug_logs.records if r.getMessage().startswith(markers)]
    assert {r.name.split(".")[0] for r in after_headers} >= {"openai", "httpx2", "voiceagent"}
    assert {getattr(r, "request_id", None) for r in after_headers} == {request_id}


async def test_each_attempt_logs_under_its_own_request_id(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    async with ElectronServer() as server:
        server.faults.fail_next(1, status=503)
        request_id = await drain(ElectronClient(server.base_url, retry=FAST))
    failed_id, served_id = (r.request_id for r in server.requests)
    assert request_id == served_id
    retry_logs = [r for r in debug_logs.records if "retrying" in r.getMessage()]
    assert [getattr(r, "request_id", None) for r in retry_logs] == [failed_id]
    assert ids_of(debug_logs, "openai") == {None, failed_id, served_id}


async def test_errors_and_their_log_records_carry_the_request_id(
    debug_logs: pytest.LogCaptureFixture,
) -> None:
    async with ElectronServer() as server:
        server.faults.fail_next(1, status=400, message="messages[0] is malformed")
        with pytest.raises(BadRequestError) as caught:
            await drain(ElectronClient(server.base_url, retry=FAST))
    request_id = server.requests[0].request_id
    assert caught.value.request_id == request_id
    warnings = [r for r in debug_logs.records if r.levelno == logging.WARNING]
    assert [getattr(r, "request_id", None) for r in warnings] == [request_id]


async def test_no_key_in_any_log_error_or_repr(debug_logs: pytest.LogCaptureFixture) -> None:
    texts: list[str] = []
    async with ElectronServer(api_key=KEY) as server:
        client = ElectronClient(server.base_url, KEY, retry=FAST)
        texts.append(repr(client))
        await drain(client)  # a success
        server.faults.fail_next(1, status=503)
        await drain(client)  # a retried failure
        server.faults.fail_next(1, status=400, message=f"the key {KEY} is not allowed here")
        with pytest.raises(BadRequestError) as echoed:  # a server message echoing the key
            await drain(client)
        server.faults.cut_after(chunks=3)
        with pytest.raises(StreamInterruptedError) as interrupted:
            await drain(client)
        stream = client.stream(HELLO)
        texts += [repr(stream), repr(vars(stream))]
        wrong = ElectronClient(server.base_url, "sk-wrong-DO-NOT-LOG-5678", retry=FAST)
        with pytest.raises(Exception) as unauthorised:
            await drain(wrong)
    for error in (echoed.value, interrupted.value, unauthorised.value):
        texts += [str(error), repr(error), repr(vars(error))]
    assert "***" in str(echoed.value)
    for record in debug_logs.records:
        texts += [record.getMessage(), repr(record.args), repr(vars(record))]
    texts += [repr(r) for r in server.requests]
    assert len(debug_logs.records) > 50  # the loggers really were talking
    leaks = [t for t in texts if KEY in t or "sk-wrong-DO-NOT-LOG-5678" in t]
    assert leaks == []
