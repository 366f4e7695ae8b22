"""The request id rides on every log record made while a request is open."""

from __future__ import annotations

import logging

import pytest

from voiceagent.llm import RequestIdFilter, current_request_id
from voiceagent.llm.request_id import install_request_id_logging, reset_request_id, set_request_id


def make_record(name: str = "any.library") -> logging.LogRecord:
    return logging.getLogger(name).makeRecord(name, logging.INFO, __file__, 1, "msg", (), None)


def test_install_is_idempotent() -> None:
    install_request_id_logging()
    factory = logging.getLogRecordFactory()
    install_request_id_logging()
    assert logging.getLogRecordFactory() is factory


def test_records_of_any_logger_carry_the_id_while_it_is_set() -> None:
    install_request_id_logging()
    assert current_request_id() is None
    assert not hasattr(make_record(), "request_id")
    token = set_request_id("req_abc")
    try:
        assert current_request_id() == "req_abc"
        for name in ("openai._base_client", "httpx2", "voiceagent.turn", "app"):
            assert make_record(name).request_id == "req_abc"  # type: ignore[attr-defined]
    finally:
        reset_request_id(token)
    assert current_request_id() is None
    assert not hasattr(make_record(), "request_id")


def test_records_reach_caplog_with_the_id(caplog: pytest.LogCaptureFixture) -> None:
    install_request_id_logging()
    token = set_request_id("req_log")
    try:
        with caplog.at_level(logging.INFO):
            logging.getLogger("some.other.lib").info("hello")
    finally:
        reset_request_id(token)
    assert [getattr(r, "request_id", None) for r in caplog.records] == ["req_log"]


def test_filter_lets_handlers_format_the_id_inside_and_outside_requests() -> None:
    formatter = logging.Formatter("[%(request_id)s] %(message)s")
    filt = RequestIdFilter()
    outside = make_record()
    assert filt.filter(outside)
    assert formatter.format(outside) == "[-] msg"
    token = set_request_id("req_f")
    try:
        inside = make_record()
        assert filt.filter(inside)
        assert formatter.format(inside) == "[req_f] msg"
    finally:
        reset_request_id(token)
