"""One streamed chat completion: attempts, transparent retry before first use, clean close."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Callable, Mapping
from contextvars import Token
from types import TracebackType
from typing import Any

import anyio
import openai
import pydantic
from anyio.lowlevel import checkpoint_if_cancelled
from openai.types.chat import ChatCompletionChunk

from voiceagent.fleet import FleetLimiter, Lease

from .classify import error_from_failure, failure_from_exception
from .errors import StreamInterruptedError
from .request_id import reset_request_id, set_request_id
from .retry import Failure, RetryPolicy
from .usage import Usage

logger = logging.getLogger(__name__)


def chunk_from_wire(data: object) -> ChatCompletionChunk:
    """One SSE event's JSON as a ``ChatCompletionChunk``: validated by pydantic-core (~3 µs),
    or, for a server that strays from the schema, built leniently as openai would (~75 µs:
    openai's own type-driven build was ~5% of a phone bot's CPU in bench/phone_load.py)."""
    if not isinstance(data, dict):
        raise _AttemptFailed(
            Failure("stream_error", f"a chunk that is not a JSON object: {data!r:.80}")
        )
    try:
        return ChatCompletionChunk.model_validate(data)
    except pydantic.ValidationError:
        return ChatCompletionChunk.construct(**data)


def is_role_only(chunk: ChatCompletionChunk) -> bool:
    """A chunk that uses nothing of the reply (the opening role chunk): safe to send twice."""
    if chunk.usage is not None:
        return False
    for choice in chunk.choices:
        delta = choice.delta
        if delta.content or delta.tool_calls or delta.refusal or choice.finish_reason:
            return False
    return True


class _AttemptFailed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


async def next_event(events: openai.AsyncStream[object]) -> object:
    """The next SSE event's JSON; a ``data:`` line that is not JSON is a stream error
    (openai lets ``json.JSONDecodeError`` out, untyped)."""
    try:
        return await events.__anext__()
    except json.JSONDecodeError as exc:
        message = f"an SSE data line that is not valid JSON ({exc.msg} at char {exc.pos})"
        raise _AttemptFailed(Failure("stream_error", message)) from None


class ElectronStream:
    """Async iterator of `ChatCompletionChunk`s; use as `async with client.stream(...)`.

    The request holds a concurrency slot from before it is sent until the stream closes:
    its process's, then, with a fleet (``fleet``), a lease in Redis; one that has to wait
    for either says so once (a warning with the wait), whatever its retries.
    Failures before the first content or tool-call delta is handed on are retried by the
    policy; after that a failure ends the stream with `StreamInterruptedError`. Each
    attempt must bring its first token within ``first_token_timeout`` (else a timeout,
    retried), and then each next chunk within ``stall_timeout`` (see `ElectronClient`).
    """

    def __init__(
        self,
        *,
        openai_client: Callable[[], openai.AsyncOpenAI],
        limiter: Callable[[], anyio.CapacityLimiter],
        request: Mapping[str, Any],
        policy: RetryPolicy,
        first_byte_timeout: float,
        redact: Callable[[str], str],
        auth_hint: str | None,
        on_usage: Callable[[Usage], None],
        first_token_timeout: float = math.inf,
        stall_timeout: float = math.inf,
        on_send: Callable[[float], None] | None = None,
        limit_note: str = "",
        fleet: Callable[[], FleetLimiter | None] | None = None,
    ) -> None:
        self._openai_client = openai_client
        self._limiter_factory = limiter
        self._fleet_factory = fleet
        self._lease: Lease | None = None
        self._request = request
        self._policy = policy
        self._first_byte_timeout = first_byte_timeout
        self._first_token_timeout = first_token_timeout
        self._stall_timeout = stall_timeout
        self._token_deadline = math.inf  # the serving attempt's first-token deadline
        self._token_seen = False  # the serving attempt sent more than its role chunk
        self._redact = redact
        self._auth_hint = auth_hint
        self._on_usage = on_usage
        self._on_send = on_send
        self._limit_note = limit_note  # e.g. "for https://…, plan='standard'", for the log
        self.waited_s = 0.0  # how long the request waited for its concurrency slot
        self.request_id: str | None = None
        self.usage: Usage | None = None
        self.attempts = 0
        self._limiter: anyio.CapacityLimiter | None = None
        self._borrower = object()
        self._token: Token[str | None] | None = None
        self._chunks: openai.AsyncStream[object] | None = None  # each event's JSON
        self._pending: ChatCompletionChunk | None = None
        self._entered = False
        self._finished = False
        self._finish_seen = False
        self._role_sent = False
        self._committed = False
        self._handed_chunks = 0
        self._content_chars = 0
        self._tool_fragments = 0
        self._completion_chars = 0  # content and tool-call text received, for an estimate
        self._answered = False  # an attempt got a 200: the server began generating

    async def __aenter__(self) -> ElectronStream:
        if self._entered:
            raise RuntimeError("an ElectronStream can be entered only once")
        self._entered = True
        self._token = set_request_id(None)
        try:
            self._limiter = self._limiter_factory()
            await self._take_slot(self._limiter)
            if self._on_send is not None:
                self._on_send(self.waited_s)
            self._pending = await self._connect(None)
        except BaseException:
            await self._close()
            raise
        return self

    async def _take_slot(self, limiter: anyio.CapacityLimiter) -> None:
        """A concurrency slot (the process's, then the fleet's lease when there is a
        fleet): at once when free, else after a wait, logged once."""
        await checkpoint_if_cancelled()
        started = anyio.current_time()
        waited = False

        def waiting() -> None:
            nonlocal waited
            waited = True

        try:
            try:
                limiter.acquire_on_behalf_of_nowait(self._borrower)
            except anyio.WouldBlock:
                waiting()
                await limiter.acquire_on_behalf_of(self._borrower)
            fleet = self._fleet_factory() if self._fleet_factory is not None else None
            if fleet is not None:
                self._lease = await fleet.acquire(on_wait=waiting)
        except BaseException:
            if waited:
                logger.info(
                    "LLM request abandoned after waiting %.0f ms for a concurrency slot "
                    "(%g in flight allowed %s)",
                    (anyio.current_time() - started) * 1000.0,
                    limiter.total_tokens,
                    self._limit_note,
                )
            raise
        if not waited:
            return
        self.waited_s = anyio.current_time() - started
        logger.warning(
            "LLM request waited %.0f ms for a concurrency slot: %g in flight allowed %s%s, "
            "all taken. If the account allows more, raise it: ElectronClient(plan=...) "
            "('enterprise', a number, or 0 for no limit)",
            self.waited_s * 1000.0,
            limiter.total_tokens,
            self._limit_note,
            " across the fleet" if self._lease is not None else "",
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    def usage_to_bill(self) -> Usage | None:
        """The server's usage when its usage chunk came; else an estimate (characters / 4,
        marked estimated) if the server accepted the request (a 200); else None: a request
        never sent (cut waiting for a slot), never connected, or refused is not billed."""
        if self.usage is not None:
            return self.usage
        if not self._answered:
            return None
        body = self._request.get("extra_body") or {}
        prompt = len(json.dumps(body, ensure_ascii=False)) // 4
        return Usage(prompt, self._completion_chars // 4, 0, estimated=True)

    @property
    def contended(self) -> bool:
        """Other requests wait for a concurrency slot (this stream holds one): in this
        process, or in the fleet's queue as Redis last said (see `voiceagent.fleet`)."""
        limiter = self._limiter
        if limiter is not None and limiter.statistics().tasks_waiting > 0:
            return True
        return self._lease is not None and self._lease.contended

    def __aiter__(self) -> ElectronStream:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        if not self._entered:
            raise RuntimeError("use `async with client.stream(...) as stream:` before iterating")
        while True:
            if self._pending is not None:
                chunk, self._pending = self._pending, None
            elif self._finished or self._chunks is None:
                raise StopAsyncIteration
            else:
                next_chunk = await self._next_from_wire()
                if next_chunk is None:
                    self._finished = True
                    raise StopAsyncIteration
                chunk = next_chunk
            if is_role_only(chunk):
                if self._role_sent:
                    continue  # a retried attempt's role chunk: the caller has one already
                self._role_sent = True
            else:
                self._committed = True
                self._count(chunk)
            self._handed_chunks += 1
            return chunk

    async def _connect(self, failure: Failure | None) -> ChatCompletionChunk:
        """Run attempts until one yields its first chunk; raise the typed error otherwise."""
        while True:
            if failure is not None:
                set_request_id(failure.request_id)
                decision = self._policy.decide(failure, self.attempts)
                if not decision.retry:
                    raise self._error(failure, decision.reason)
                logger.info(
                    "LLM attempt %d of %d failed (%s: %s); retrying in %.3f s",
                    self.attempts,
                    self._policy.max_attempts,
                    failure.kind,
                    failure.message,
                    decision.delay,
                )
                await anyio.sleep(decision.delay)
            self.attempts += 1
            self.request_id = None
            set_request_id(None)
            try:
                return await self._attempt()
            except _AttemptFailed as failed:
                failure = failed.failure

    async def _attempt(self) -> ChatCompletionChunk:
        self._finish_seen = False
        self._token_seen = False
        self._token_deadline = anyio.current_time() + self._first_token_timeout
        create = self._openai_client().chat.completions.with_raw_response.create
        logger.debug("LLM attempt %d: POST chat/completions", self.attempts)
        first_byte = min(self._first_byte_timeout, self._first_token_timeout)
        try:
            with anyio.fail_after(first_byte):
                raw = await create(**self._request)
                self._answered = True  # openai raised for any status but 2xx
                self.request_id = raw.headers.get("x-request-id")
                set_request_id(self.request_id)
                self._chunks = raw.parse(to=openai.AsyncStream[object])
                first = chunk_from_wire(await next_event(self._chunks))
        except TimeoutError:
            await self._close_response()
            if self._first_byte_timeout <= self._first_token_timeout:
                message = f"no first byte within first_byte_timeout={first_byte:g} s"
            else:
                message = f"no first token within first_token_timeout={first_byte:g} s"
            raise _AttemptFailed(Failure("timeout", message, request_id=self.request_id)) from None
        except StopAsyncIteration:
            await self._close_response()
            failure = Failure("connection", "the stream ended before its first chunk")
            raise _AttemptFailed(failure) from None
        except openai.OpenAIError as exc:
            await self._close_response()
            raise _AttemptFailed(self._failure(exc)) from exc
        except _AttemptFailed as failed:  # the first chunk was not a chunk, or not JSON
            await self._close_response()
            raise _AttemptFailed(self._identified(failed.failure)) from None
        logger.debug("LLM attempt %d: first chunk received", self.attempts)
        self._received(first)
        return first

    async def _next_from_wire(self) -> ChatCompletionChunk | None:
        """The next chunk of the serving attempt, retrying while nothing has been used."""
        assert self._chunks is not None
        if self._token_seen:  # the clock runs only while we wait on the server
            deadline = anyio.current_time() + self._stall_timeout
        else:
            deadline = self._token_deadline
        try:
            with anyio.fail_after(max(0.0, deadline - anyio.current_time())):
                chunk = chunk_from_wire(await next_event(self._chunks))
        except TimeoutError:
            if self._finish_seen:  # the reply is whole; only its usage chunk is missing
                logger.warning(
                    "LLM stream: nothing for %g s after its finish_reason; ended without usage",
                    self._stall_timeout,
                )
                await self._close_response()
                return None
            failure = self._deadline_missed()
        except StopAsyncIteration:
            if self._finish_seen or self.usage is not None:
                return None
            failure = Failure("connection", "the stream ended before its finish_reason")
        except openai.OpenAIError as exc:
            failure = self._failure(exc)
        except _AttemptFailed as failed:
            failure = self._identified(failed.failure)
        else:
            self._received(chunk)
            return chunk
        await self._close_response()
        if self._committed:
            raise self._interrupted(failure)
        return await self._connect(failure)

    def _deadline_missed(self) -> Failure:
        if self._token_seen:
            message = f"no chunk within stall_timeout={self._stall_timeout:g} s"
        else:
            message = f"no first token within first_token_timeout={self._first_token_timeout:g} s"
        return Failure("timeout", message, request_id=self.request_id)

    def _received(self, chunk: ChatCompletionChunk) -> None:
        if not self._token_seen and not is_role_only(chunk):
            self._token_seen = True
        for choice in chunk.choices:
            self._completion_chars += len(choice.delta.content or "")
            for call in choice.delta.tool_calls or ():
                function = call.function
                if function is not None:
                    self._completion_chars += len(function.name or "")
                    self._completion_chars += len(function.arguments or "")
        if any(choice.finish_reason for choice in chunk.choices):
            self._finish_seen = True
        if chunk.usage is not None and self.usage is None:
            self.usage = Usage.from_openai(chunk.usage)
            self._on_usage(self.usage)

    def _count(self, chunk: ChatCompletionChunk) -> None:
        for choice in chunk.choices:
            self._content_chars += len(choice.delta.content or "")
            self._tool_fragments += len(choice.delta.tool_calls or ())

    def _failure(self, exc: openai.OpenAIError) -> Failure:
        return self._identified(failure_from_exception(exc, self._redact))

    def _identified(self, failure: Failure) -> Failure:
        """The failure with the attempt's x-request-id when it carries none of its own."""
        if failure.request_id is None and self.request_id is not None:
            return dataclasses.replace(failure, request_id=self.request_id)
        return failure

    def _error(self, failure: Failure, reason: str) -> Exception:
        hint = self._auth_hint if failure.kind == "authentication" else None
        error = error_from_failure(failure, attempts=self.attempts, reason=reason, hint=hint)
        logger.warning("LLM request failed: %s", error)
        return error

    def _interrupted(self, failure: Failure) -> StreamInterruptedError:
        error = StreamInterruptedError(
            f"the stream broke after use ({failure.kind}: {failure.message})",
            chunks=self._handed_chunks,
            content_chars=self._content_chars,
            tool_call_fragments=self._tool_fragments,
            status=failure.status,
            error_type=failure.error_type,
            request_id=failure.request_id,
            attempts=self.attempts,
        )
        logger.warning("LLM stream interrupted: %s", error)
        return error

    async def _close_response(self) -> None:
        chunks, self._chunks = self._chunks, None
        if chunks is not None:
            with anyio.CancelScope(shield=True):
                await chunks.close()

    async def _close(self) -> None:
        await self._close_response()
        self._finished = True
        if self._limiter is not None:
            limiter, self._limiter = self._limiter, None
            try:
                limiter.release_on_behalf_of(self._borrower)
            except RuntimeError:
                pass  # never acquired (cancelled while waiting for a slot)
        if self._lease is not None:
            lease, self._lease = self._lease, None
            await lease.release()  # shielded and bounded
        if self._token is not None:
            token, self._token = self._token, None
            reset_request_id(token)
