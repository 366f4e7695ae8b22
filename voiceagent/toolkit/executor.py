"""ToolExecutor: runs ToolCalls to an end, under a timeout and a cap on calls in flight."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import anyio.to_thread

from .call import ToolCall
from .content import describe_exception, encode_result, format_seconds, truncate
from .context import ToolContext
from .decorator import Tool, ToolArgumentsError
from .inflight import InFlightSlot
from .registry import ToolRegistry

logger = logging.getLogger(__name__)

DEFAULT_MAX_IN_FLIGHT = 8
DEFAULT_RESULT_CAP = 4000


class ToolExecutor:
    """Runs the calls the model makes; a tool's failure becomes a tool message, never a crash.

    Cancellation: a call cancelled before it started never runs; an async tool is
    cancelled; a sync tool cannot be killed, so it is abandoned: its result is dropped,
    but its thread keeps its in-flight slot until it really ends. ``shield`` protects a
    started call from the enclosing scope's cancellation (still bounded by its timeout);
    by default a non-interruptible (side-effecting) tool is shielded.
    """

    def __init__(
        self,
        registry: ToolRegistry,
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        result_cap: int = DEFAULT_RESULT_CAP,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        if result_cap < 1:
            raise ValueError(f"result_cap must be >= 1, got {result_cap}")
        self.registry = registry
        self.max_in_flight = max_in_flight
        self.result_cap = result_cap
        self._limiter = anyio.CapacityLimiter(max_in_flight)
        # Worker threads of sync tools come from a pool of our own, so tools never wait
        # behind anyio's default pool (shared with everything else). The in-flight cap,
        # taken first and kept by abandoned threads, is always the tighter bound.
        self._threads = anyio.CapacityLimiter(max_in_flight)

    @property
    def in_flight(self) -> int:
        """Calls holding a slot now, abandoned sync tools still running included."""
        return int(self._limiter.borrowed_tokens)

    def start(
        self,
        call: ToolCall,
        task_group: anyio.abc.TaskGroup,
        ctx: ToolContext | None = None,
        *,
        shield: bool | None = None,
    ) -> None:
        """Start running ``call`` now, as a task of the caller's task group."""
        task_group.start_soon(
            functools.partial(self.run, call, ctx, shield=shield),
            name=f"tool {call.name} ({call.id})",
        )

    async def run(
        self,
        call: ToolCall,
        ctx: ToolContext | None = None,
        *,
        shield: bool | None = None,
        on_start: Callable[[ToolCall], None] | None = None,
    ) -> None:
        """Run ``call`` to a terminal state. Tool errors never raise; cancellation propagates.

        ``ctx`` is handed to tools that ask for it, with its ``call_id`` set to this
        call's. ``shield=None`` follows the tool: shielded unless ``interruptible``. A
        call that has already ended (e.g. cancelled before it started) is left as it is.
        ``on_start`` is told the moment the call starts running (it has its slot).
        """
        if call.is_terminal:
            return
        tool = self.registry.get(call.name)
        if tool is None:
            known = ", ".join(self.registry.names) or "none"
            self._reject(call, f"unknown tool {call.name!r}; the tools are: {known}")
            return
        try:
            call.args = tool.parse_arguments(call.arguments)
        except ToolArgumentsError as exc:
            self._reject(call, str(exc))
            return
        if ctx is None or ctx.call_id != call.id:
            ctx = (ctx or ToolContext()).for_call(call.id)
        # The tool's timeout covers the wait for a slot too: abandoned sync tools can hold
        # every slot for as long as they hang, and a call must not wait on them forever.
        deadline = anyio.current_time() + tool.timeout
        slot = InFlightSlot(self._limiter)
        try:
            with anyio.move_on_after(tool.timeout) as waiting:
                await slot.acquire()
        except anyio.get_cancelled_exc_class():
            call.cancel()  # it never started, and now never will
            raise
        if waiting.cancelled_caught:
            self._reject(
                call,
                f"timed out after {format_seconds(tool.timeout)} waiting for a free tool slot "
                f"(all {self.max_in_flight} are held, by tools still running or by sync tools "
                "that timed out or were cancelled but have not returned)",
            )
            return
        try:
            if anyio.current_effective_deadline() == -math.inf:
                # Cancelled while taking the slot (whose last step is shielded): a call of a
                # discarded generation that had not started never runs.
                call.cancel()
                await anyio.lowlevel.checkpoint()  # raises the cancellation
                return
            with anyio.CancelScope(shield=not tool.interruptible if shield is None else shield):
                call.start()
                if on_start is not None:
                    on_start(call)
                await self._execute(call, tool, tool.bind(call.args, ctx), slot, deadline)
        finally:
            slot.task_leaves()

    def _reject(self, call: ToolCall, error: str) -> None:
        logger.warning("tool call %s (%s) rejected: %s", call.id, call.name, error)
        call.start()
        call.fail(error)

    async def _execute(
        self,
        call: ToolCall,
        tool: Tool[..., Any],
        kwargs: dict[str, Any],
        slot: InFlightSlot,
        deadline: float,
    ) -> None:
        """Run the tool until ``deadline`` (the call's timeout, counted from its slot wait)."""
        result: Any = None
        try:
            with anyio.CancelScope(deadline=deadline) as timer:
                result = await self._invoke(tool, kwargs, slot)
        except anyio.get_cancelled_exc_class():
            self._note_abandoned(call, slot, "cancelled")
            call.cancel()
            raise
        except Exception as exc:
            logger.warning("tool call %s (%s) raised", call.id, call.name, exc_info=True)
            call.fail(describe_exception(exc))
            return
        if timer.cancelled_caught:
            self._note_abandoned(call, slot, "timed out")
            call.fail(f"timed out after {format_seconds(tool.timeout)}")
            return
        try:
            content = encode_result(result)
        except Exception as exc:
            # The tool ran (its effects happened); only its answer is lost: say so in the log,
            # and tell the model plainly rather than leave it to guess.
            logger.warning("tool call %s (%s): its result (%s) could not be encoded as JSON",
                           call.id, call.name, type(result).__name__, exc_info=True)  # fmt: skip
            call.fail(
                f"the tool ran, but its result ({type(result).__name__}) could not be encoded "
                f"as JSON: {describe_exception(exc)}"
            )
            return
        call.finish(truncate(content, self.result_cap))

    async def _invoke(
        self, tool: Tool[..., Any], kwargs: dict[str, Any], slot: InFlightSlot
    ) -> Any:
        if tool.is_async:
            return await tool.fn(**kwargs)

        def in_thread() -> Any:
            if not slot.thread_begins():
                return None  # abandoned before it started: must not run at all
            try:
                return tool.fn(**kwargs)
            finally:
                slot.thread_ends()

        slot.lend_to_thread()
        return await anyio.to_thread.run_sync(
            in_thread, abandon_on_cancel=True, limiter=self._threads
        )

    def _note_abandoned(self, call: ToolCall, slot: InFlightSlot, why: str) -> None:
        if slot.thread_running:
            logger.warning(
                "tool call %s (%s) %s: a sync tool cannot be stopped; its result will be "
                "dropped and its thread keeps an in-flight slot until it returns",
                call.id,
                call.name,
                why,
            )
