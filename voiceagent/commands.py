"""What the ``chat``, ``demo``, ``phone`` and ``web`` commands share: usage errors and how a
failure is reported, the LLM endpoint
(the simulator started in-process when none is configured), agent overrides, output paths,
logging to stderr, and the terminal's width."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import shutil
import sys
from collections.abc import Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from voiceagent import NotAvailableYet
from voiceagent.agent import Agent
from voiceagent.agent_ref import AgentRefError
from voiceagent.llm import LLMEndpoint
from voiceagent.wire_text import printable

LOG_ENV = "VOICEAGENT_LOG"  # e.g. VOICEAGENT_LOG=info; debug also shows tracebacks
INTERRUPTED = 130  # the shell's code for a process ended by Ctrl-C (128 + SIGINT)


class CommandError(ValueError):
    """A usage error of a command; the message says what to do."""


def user_errors() -> tuple[type[Exception], ...]:
    from voiceagent.adapters.config import ConfigError
    from voiceagent.listen import ListenError

    return (AgentRefError, NotAvailableYet, CommandError, ConfigError, ListenError)


async def start_llm(endpoint: LLMEndpoint, stack: AsyncExitStack) -> str:
    """The LLM's base URL; with no endpoint configured, the simulator started in-process."""
    print(endpoint.describe(), file=sys.stderr)
    if endpoint.base_url is not None:
        return endpoint.base_url
    from voiceagent.testing.electron import ElectronServer

    server = await stack.enter_async_context(ElectronServer())
    print(
        f"     serving {server.base_url} in this process: a rule-based simulator, not a model",
        file=sys.stderr,
    )
    return server.base_url


def with_overrides(agent: Agent, args: argparse.Namespace) -> Agent:
    """The agent with --model, --temperature, --seed and --language applied."""
    changes: dict[str, Any] = {
        key: value
        for key, value in (
            ("model", args.model),
            ("temperature", args.temperature),
            ("seed", args.seed),
            ("language", args.language),
        )
        if value is not None
    }
    return dataclasses.replace(agent, **changes) if changes else agent


def writable(value: str | None, option: str) -> Path | None:
    """The path of an output file, if its folder exists (checked now, not after a turn)."""
    if value is None:
        return None
    path = Path(value)
    if not path.parent.is_dir():
        raise CommandError(f"{option} {value}: the folder {path.parent} does not exist")
    if path.is_dir():
        raise CommandError(f"{option} {value} is a folder; give a file name")
    return path


def terminal_width() -> int:
    return max(60, min(160, shutil.get_terminal_size((100, 24)).columns))


def isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def first_leaf(error: BaseException) -> BaseException:
    """The first real error inside (possibly nested) exception groups."""
    # duck-typed: BaseExceptionGroup is not a builtin on Python 3.10
    while isinstance(children := getattr(error, "exceptions", None), tuple) and children:
        error = children[0]
    return error


def report_failure(
    error: BaseException,
    prog: str,
    verbose: bool,
    usage_errors: tuple[type[BaseException], ...] = (),
) -> int:
    """A command's exit code for ``error``, said on stderr: 2 with the message for a usage
    error (``user_errors()`` and ``usage_errors``), else 1 with the error's type, and a hint
    to ``VOICEAGENT_LOG=debug`` for the traceback (logged at DEBUG)."""
    leaf = first_leaf(error)
    if isinstance(leaf, (*user_errors(), *usage_errors)):
        print(f"{prog}: error: {leaf}", file=sys.stderr)
        return 2
    logging.getLogger("voiceagent").debug("%s failed", prog, exc_info=error)
    hint = "" if verbose else f" (set {LOG_ENV}=debug for the traceback)"
    print(f"{prog}: error: {type(leaf).__name__}: {leaf}{hint}", file=sys.stderr)
    return 1


class BriefFormatter(logging.Formatter):
    """Tracebacks only at DEBUG; otherwise a record's exception is one line of gist: the first
    real error, not the task group around it ("unhandled errors in a TaskGroup" says nothing
    of what failed in a call). A message is always one line: a control character in it
    (a newline, ESC from a value off the wire that a log call let through) is escaped; so is
    every line of a traceback, indented under the record (``_inert_lines``)."""

    def __init__(self, verbose: bool) -> None:
        super().__init__("%(levelname)s %(name)s: %(message)s")
        self.verbose = verbose

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and record.exc_info[1] is not None and not self.verbose:
            error = first_leaf(record.exc_info[1])
            record = logging.makeLogRecord(record.__dict__)
            record.msg = f"{record.getMessage()}: {type(error).__name__}: {error}"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        elif (cached := record.exc_text) is not None:  # another handler's formatter's
            record = logging.makeLogRecord(record.__dict__)
            record.exc_text = None if record.exc_info else _inert_lines(cached)
        message = record.getMessage()
        if (safe := printable(message, None)) != message:
            record = logging.makeLogRecord(record.__dict__)
            record.msg, record.args = safe, None
        return super().format(record)

    def formatException(
        self,
        ei: tuple[type[BaseException], BaseException, TracebackType | None]
        | tuple[None, None, None],
    ) -> str:
        return _inert_lines(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _inert_lines(super().formatStack(stack_info))


def _inert_lines(text: str) -> str:
    """A traceback (at DEBUG) as inert lines: each escaped (control characters as ``\\xNN``)
    and indented under its record, so that no line of it, not even one an exception's message
    broke off with a newline from the wire ("ValueError: a\\nWARNING forged"), can pass for
    a log line of its own: those start in the first column with their level."""
    return "\n".join("  " + printable(line, None) for line in text.split("\n"))


def configure_logging(environ: Mapping[str, str]) -> bool:
    """Logs to stderr at WARNING, or at the level VOICEAGENT_LOG names; True at DEBUG."""
    name = environ.get(LOG_ENV, "").strip().upper() or "WARNING"
    level = logging.getLevelName(name)
    if not isinstance(level, int):
        level = logging.WARNING
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(BriefFormatter(verbose=level <= logging.DEBUG))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    # the in-process simulator logs every request at INFO: noise beside the agent's own logs
    logging.getLogger("voiceagent.testing").setLevel(max(level, logging.WARNING))
    return level <= logging.DEBUG
