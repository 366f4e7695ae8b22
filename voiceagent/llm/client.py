"""`ElectronClient`: streamed chat completions with our retry policy, limiter and usage."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio

from voiceagent.fleet import FleetLimiter, fleet_limiter
from voiceagent.redact import key_fingerprint, redact

from .endpoint import display_url
from .limiter import default_plan, plan_limit, shared_limiter
from .pool import request_headers, shared_openai_client
from .request_id import install_request_id_logging
from .retry import RetryPolicy
from .streaming import ElectronStream
from .usage import Usage, UsageTotals

logger = logging.getLogger(__name__)

Message = Mapping[str, Any]


class ElectronClient:
    """A client of one OpenAI-compatible endpoint (Electron by default) for one key.

    Cheap to create: the HTTP pool and the concurrency limiter are shared by every client
    of the same (endpoint, key) in the process; with ``VOICEAGENT_REDIS_URL`` set (``voiceagent
    phone --redis URL``) the limit holds across the fleet too (see `voiceagent.fleet`).

    ``plan`` bounds the requests in flight, process-wide, for this (endpoint, key):
    ``"standard"`` (3), ``"enterprise"`` (20), a number, or 0 for no limit. Left None, it is
    Electron's standard plan on Electron's host (``*.smallest.ai``) and no limit on any
    other endpoint (its own rules are not Electron's). A request that has to wait for a
    slot logs it once, with the wait (``on_send`` of `stream` tells a caller how long).
    ``headers`` are sent on every request beside X-Source, and never logged.

    Deadlines of each attempt, in seconds (a caller hears every one of them as silence):

    - ``first_byte_timeout``: from sending the request to its first SSE event.
    - ``first_token_timeout`` (default 8): from sending the request to its first content or
      tool-call delta (the role chunk does not count). Electron's first token comes well
      within a second or two even for a long prompt; 8 s of dead air is about as long as a
      caller waits before saying "hello?", so beyond it a fresh attempt is the better bet.
      Missed, it is a timeout before use: retried by the policy like a late first byte.
    - ``stall_timeout`` (default 4): the longest wait for the next chunk once the reply
      began. Tokens come tens of milliseconds apart; a multi-second gap is a stuck
      server, and by then the caller already hears silence mid-sentence. Missed, the
      stream breaks with ``StreamInterruptedError`` (part of it was used: not retried)
      and the turn speaks its apology. The clock runs only while waiting on the server,
      never while the reader is busy. A gap after the finish chunk (a usage chunk that
      never comes) just ends the stream, its usage unknown.
    - ``timeout``: openai's own per-request timeout (connect, each read).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        model: str = "electron",
        plan: str | int | None = None,
        headers: Mapping[str, str] | None = None,
        first_byte_timeout: float = 10.0,
        first_token_timeout: float = 8.0,
        stall_timeout: float = 4.0,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not base_url:
            raise ValueError("base_url is required (e.g. https://api.smallest.ai/waves/v1)")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key or None
        self._key_id = key_fingerprint(self._api_key)
        self.model = model
        self.plan = plan if plan is not None else default_plan(self.base_url)  # in effect
        self.max_in_flight = plan_limit(self.plan)
        self._headers = _checked_headers(headers)
        for name, value in (
            ("first_byte_timeout", first_byte_timeout),
            ("first_token_timeout", first_token_timeout),
            ("stall_timeout", stall_timeout),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        self.first_byte_timeout = first_byte_timeout
        self.first_token_timeout = first_token_timeout
        self.stall_timeout = stall_timeout
        self.timeout = timeout
        self.retry = retry if retry is not None else RetryPolicy()
        self.usage = UsageTotals()
        install_request_id_logging()

    def __repr__(self) -> str:
        key = "key=***" if self._api_key else "no key"
        headers = f", headers={sorted(self._headers)!r}" if self._headers else ""  # names only
        return (
            f"ElectronClient(base_url={self.base_url!r}, model={self.model!r}, "
            f"plan={self.plan!r}, {key}{headers})"
        )

    def warm(self) -> None:
        """Build the pooled HTTP client now, in the running loop, instead of at the first
        request: constructing it imports the HTTP stack (httpx's transport, its connection
        pool: a tenth of a second), which inside a server's first call stalls every call."""
        _ = shared_openai_client(self.base_url, self._api_key, self._headers).chat.completions

    def stream(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        tool_choice: str | Mapping[str, Any] | None = None,
        temperature: float | None = None,
        seed: int | None = None,
        max_tokens: int | None = None,
        stop: str | Sequence[str] | None = None,
        model: str | None = None,
        on_send: Callable[[float], None] | None = None,
    ) -> ElectronStream:
        """Open a streamed completion: `async with client.stream(messages) as s: ...`.

        ``on_send(waited_s)`` is called once, when the request is sent: after its wait for
        a concurrency slot (0.0 if one was free), before its first attempt (a retry is not
        a new request).
        """
        request = self._request(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            temperature=temperature,
            seed=seed,
            max_tokens=max_tokens,
            stop=stop,
            model=model,
        )
        return ElectronStream(
            openai_client=lambda: shared_openai_client(self.base_url, self._api_key, self._headers),
            limiter=self._limiter,
            request=request,
            policy=self.retry,
            first_byte_timeout=self.first_byte_timeout,
            first_token_timeout=self.first_token_timeout,
            stall_timeout=self.stall_timeout,
            redact=self._redact,
            auth_hint=None if self._api_key else _NO_KEY_HINT,
            on_usage=self._add_usage,
            on_send=on_send,
            limit_note=f"for {display_url(self.base_url)}, plan={self.plan!r}",
            fleet=self._fleet,
        )

    def _request(
        self,
        messages: Sequence[Message],
        *,
        tools: Sequence[Mapping[str, Any]] | None,
        tool_choice: str | Mapping[str, Any] | None,
        temperature: float | None,
        seed: int | None,
        max_tokens: int | None,
        stop: str | Sequence[str] | None,
        model: str | None,
    ) -> dict[str, Any]:
        """The keyword arguments of openai's `create`, frozen so every attempt sends the same.

        The messages and tools are JSON already: they go in ``extra_body``, which openai puts
        into the body as they are, in the same place. As ``create`` arguments openai would
        copy each through its type-driven transform on every request, the whole history
        each time (~3% of a phone bot's CPU in bench/phone_load.py). The bytes sent are the
        same.
        """
        body: dict[str, Any] = {"messages": [dict(message) for message in messages]}
        request: dict[str, Any] = {
            "model": model or self.model,
            "messages": [],  # required by create's signature; extra_body's list replaces it
            "stream": True,
            "stream_options": {"include_usage": True},
            "timeout": self.timeout,
            "extra_headers": request_headers(self._api_key),
            "extra_body": body,
        }
        if tools:  # Electron wants the field omitted rather than []; tool_choice goes with it
            body["tools"] = [dict(tool) for tool in tools]
            if tool_choice is not None:
                request["tool_choice"] = tool_choice
        optional = {"temperature": temperature, "seed": seed, "max_tokens": max_tokens}
        request.update({name: value for name, value in optional.items() if value is not None})
        if stop is not None:
            request["stop"] = stop if isinstance(stop, str) else list(stop)
        return request

    def _redact(self, text: str) -> str:
        return redact(text, (self._api_key,))

    def _limiter(self) -> anyio.CapacityLimiter:
        return shared_limiter(self.base_url, self._key_id, self.max_in_flight)

    def _fleet(self) -> FleetLimiter | None:
        """With ``VOICEAGENT_REDIS_URL``, the plan's slots shared by the fleet in Redis."""
        return fleet_limiter(
            "llm", display_url(self.base_url), self._key_id, self._limiter().total_tokens
        )

    def _add_usage(self, usage: Usage) -> None:
        self.usage.add(usage)
        logger.debug(
            "LLM usage: prompt=%d completion=%d cached=%d",
            usage.prompt,
            usage.completion,
            usage.cached,
        )


def _checked_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    checked: dict[str, str] = {}
    for name, value in (headers or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"headers must map str to str, got {name!r}: {type(value).__name__}")
        if name.strip().lower() == "authorization":
            raise ValueError("pass the key as api_key, not as an Authorization header")
        checked[name] = value
    return checked


_NO_KEY_HINT = "No API key was sent: set SMALLEST_API_KEY, or pass --api-key for this URL"
