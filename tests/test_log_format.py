"""Log lines at the default level: an exception is one line naming the real error."""

from __future__ import annotations

import logging
import sys

import pytest

from voiceagent.commands import BriefFormatter
from voiceagent.wire_text import printable


class TaskGroupError(Exception):
    """Shaped as anyio's task groups raise (an exception group: ``exceptions`` inside)."""

    def __init__(self, *errors: BaseException) -> None:
        super().__init__(f"unhandled errors in a TaskGroup ({len(errors)} sub-exception)")
        self.exceptions = errors


def record_of(error: BaseException) -> logging.LogRecord:
    try:
        raise error
    except BaseException:
        return logging.LogRecord("x", logging.ERROR, __file__, 1, "call %s failed", ("CA1",),
                                 sys.exc_info())  # fmt: skip


def test_a_task_group_error_is_named_by_the_error_inside_it() -> None:
    group = TaskGroupError(TaskGroupError(ConnectionError("Pulse gone")))
    line = BriefFormatter(verbose=False).format(record_of(group))
    assert line == "ERROR x: call CA1 failed: ConnectionError: Pulse gone"


def test_at_debug_the_traceback_is_kept() -> None:
    line = BriefFormatter(verbose=True).format(record_of(ValueError("bad")))
    assert "Traceback" in line and "ValueError: bad" in line


def test_a_message_is_one_line_whatever_a_value_from_the_wire_holds() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "call %s started",
                               ("CA1\nWARNING forged\x1b[31m",), None)  # fmt: skip
    line = BriefFormatter(verbose=False).format(record)
    assert line == "WARNING x: call CA1\\x0aWARNING forged\\x1b[31m started"


def test_at_debug_a_traceback_is_inert_lines_whatever_its_messages_hold() -> None:
    try:
        try:
            raise KeyError("inner\x1b[2J")
        except KeyError as inner:
            raise ValueError("call CA1\nWARNING voiceagent: FORGED\x1b[31m red\x07") from inner
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "call %s failed", ("CA1",),
                                   sys.exc_info())  # fmt: skip
    text = BriefFormatter(verbose=True).format(record)
    lines = text.split("\n")
    # no control character but the traceback's own line breaks reaches the terminal
    assert not [line for line in lines if printable(line, None) != line]
    # every line after the record's own is indented: none passes for a log line
    assert lines[0] == "ERROR x: call CA1 failed"
    assert all(line.startswith("  ") for line in lines[1:])
    assert "  WARNING voiceagent: FORGED\\x1b[31m red\\x07" in lines
    # the traceback's layout is kept: both chained exceptions, frames, source
    assert lines.count("  Traceback (most recent call last):") == 2
    assert "  The above exception was the direct cause of the following exception:" in lines
    assert any(line.startswith('    File "') for line in lines)
    # a traceback another handler's formatter cached on the record (unescaped) is redone
    cached = logging.makeLogRecord({**record.__dict__, "exc_text": None})
    logging.Formatter().format(cached)
    assert "\x1b" in (cached.exc_text or "")
    assert BriefFormatter(verbose=True).format(cached) == text


@pytest.mark.skipif(sys.version_info < (3, 11), reason="exception groups and notes: 3.11")
def test_at_debug_an_exception_group_and_a_note_are_inert_too() -> None:
    from builtins import ExceptionGroup  # (anyio's task groups raise these)

    error = OSError("gone\nWARNING forged")
    error.add_note("from the wire:\r\nWARNING forged note\x1b]0;title\x07")
    text = BriefFormatter(verbose=True).format(record_of(ExceptionGroup("calls\x1b[2J", [error])))
    assert "\x1b" not in text and "\r" not in text and "\nWARNING" not in text
    assert "ExceptionGroup: calls\\x1b[2J (1 sub-exception)" in text
    assert all(line.startswith("  ") for line in text.split("\n")[1:])
