"""The request id of the Electron request in progress, on every log record made meanwhile."""

from __future__ import annotations

import logging
from contextvars import ContextVar, Token
from typing import Any

_REQUEST_ID: ContextVar[str | None] = ContextVar("voiceagent_llm_request_id", default=None)
_FACTORY_MARK = "_voiceagent_request_id_factory"


def current_request_id() -> str | None:
    """The `x-request-id` of the request open in this context, if any."""
    return _REQUEST_ID.get()


def set_request_id(request_id: str | None) -> Token[str | None]:
    return _REQUEST_ID.set(request_id)


def reset_request_id(token: Token[str | None]) -> None:
    try:
        _REQUEST_ID.reset(token)
    except ValueError:  # reset from another context: leave that context alone
        _REQUEST_ID.set(None)


def install_request_id_logging() -> None:
    """Wrap the log record factory (once) so records carry `record.request_id` while it is set.

    A factory, unlike a filter, reaches records of every logger (openai, httpx2, the
    application's own) without touching their handlers.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, _FACTORY_MARK, False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        request_id = _REQUEST_ID.get()
        if request_id is not None and not hasattr(record, "request_id"):
            record.request_id = request_id
        return record

    setattr(factory, _FACTORY_MARK, True)
    logging.setLogRecordFactory(factory)


class RequestIdFilter(logging.Filter):
    """For handlers formatting `%(request_id)s`: fills it in, "-" outside any request."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _REQUEST_ID.get() or "-"
        return True
