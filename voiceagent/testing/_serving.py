"""What every shipped fake server shares: running in a background thread for synchronous
code, and the command line's life (logging to stderr, serving until SIGINT or SIGTERM)."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any, TypeVar

import anyio
from anyio.from_thread import start_blocking_portal

logger = logging.getLogger(__name__)

_Server = TypeVar("_Server", bound=AbstractAsyncContextManager[Any])


class RunsInThread:
    """Mixin for async-context-manager servers: ``Server.running_in_thread(...)``."""

    @classmethod
    @contextmanager
    def running_in_thread(cls: type[_Server], *args: Any, **kwargs: Any) -> Iterator[_Server]:
        """Run a server on its own event loop in a background thread (for synchronous code)."""
        server = cls(*args, **kwargs)
        with start_blocking_portal() as portal, portal.wrap_async_context_manager(server):
            yield server


def configure_logging(quiet: bool) -> None:
    """The fakes log to stderr (stdout's first line is their URL): INFO, or WARNING if quiet."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("voiceagent")
    root.addHandler(handler)
    root.setLevel(logging.WARNING if quiet else logging.INFO)


async def until_signalled() -> None:
    """Until SIGINT or SIGTERM (or for ever where signals cannot be received)."""
    try:
        signals = anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM)
    except NotImplementedError:  # no signal receivers on this platform: Ctrl-C still works
        await anyio.sleep_forever()
        return
    with signals as received:
        async for signum in received:
            logger.info("stopping on %s", signal.Signals(signum).name)
            return


def run_until_signalled(serve: Callable[[], Awaitable[None]], prog: str, where: str) -> int:
    """Run ``serve`` (which prints the URL, then awaits ``until_signalled``); the exit code."""
    try:
        anyio.run(serve)
    except KeyboardInterrupt:
        pass
    except OSError as error:
        print(f"{prog}: cannot listen on {where}: {error}", file=sys.stderr)
        return 1
    return 0
