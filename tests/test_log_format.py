"""Log lines at the default level: an exception is one line naming the real error."""

from __future__ import annotations

import logging
import sys

from voiceagent.commands import BriefFormatter


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
