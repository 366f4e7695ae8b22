"""One openai client (and so one HTTP connection pool) per (endpoint, key) per event loop."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, cast

import httpx2
import openai
from anyio.lowlevel import RunVar

from voiceagent.redact import key_fingerprint

from .request_id import set_request_id

SOURCE_HEADERS = {"X-Source": "voiceagent"}
NO_KEY_PLACEHOLDER = "no-key"  # satisfies openai's constructor; never sent (see auth_headers)

# httpx2's pool is bound to the loop it first ran on, hence a registry per running loop.
# Keyed by (endpoint, key, extra headers): a caller's headers ride as the client's default
# headers, never per request, where openai's debug log would print them.
_ClientKey = tuple[str, str, tuple[tuple[str, str], ...]]
_CLIENTS: RunVar[dict[_ClientKey, openai.AsyncOpenAI]] = RunVar("voiceagent_llm_clients")


def _ambient_header_names(environ: Mapping[str, str]) -> list[str]:
    """Headers openai would add from OPENAI_CUSTOM_HEADERS: we send none of them."""
    names = []
    for line in environ.get("OPENAI_CUSTOM_HEADERS", "").split("\n"):
        name, sep, _ = line.partition(":")
        if sep and name.strip():
            names.append(name.strip())
    return names


def auth_headers(api_key: str | None) -> dict[str, str | openai.Omit]:
    """The bearer key, or an explicit omission when there is none (no header at all)."""
    if api_key:
        return {"Authorization": f"Bearer {api_key}"}
    return {"Authorization": openai.Omit()}


def request_headers(api_key: str | None) -> dict[str, str | openai.Omit]:
    """Per-request headers: openai insists on an explicit omission to send no Authorization."""
    return {} if api_key else auth_headers(None)


async def _trace(event: str, info: Mapping[str, Any]) -> None:
    """httpcore trace hook: learn x-request-id the moment the response headers arrive.

    It runs before the transport, httpx2 and openai log the response, so their records
    carry the id too (a record made before the headers cannot: the id does not exist yet).
    """
    if not event.endswith("receive_response_headers.complete"):
        return
    returned = info.get("return_value")
    for part in returned if isinstance(returned, tuple) else ():
        if isinstance(part, list):
            for name, value in part:
                if bytes(name).lower() == b"x-request-id":
                    set_request_id(bytes(value).decode("latin-1"))
                    return


async def _install_trace(request: httpx2.Request) -> None:
    request.extensions = {**request.extensions, "trace": _trace}


def build_openai_client(
    base_url: str, api_key: str | None, extra_headers: Mapping[str, str] | None = None
) -> openai.AsyncOpenAI:
    """An AsyncOpenAI that retries nothing and reads nothing from OPENAI_* variables; it
    sends ``extra_headers`` (a caller's own) on every request, beside X-Source."""
    headers: dict[str, str | openai.Omit] = {
        name: openai.Omit() for name in _ambient_header_names(os.environ)
    }
    headers.update(
        {"OpenAI-Organization": openai.Omit(), "OpenAI-Project": openai.Omit(), **SOURCE_HEADERS}
    )
    headers.update(extra_headers or {})
    headers.update(auth_headers(api_key))
    return openai.AsyncOpenAI(
        api_key=api_key or NO_KEY_PLACEHOLDER,  # explicit, so OPENAI_API_KEY is never read
        base_url=base_url,  # explicit, so OPENAI_BASE_URL is never read
        max_retries=0,  # the retry policy is ours
        default_headers=cast(Mapping[str, str], headers),  # openai honours Omit values here
        http_client=openai.DefaultAsyncHttpxClient(event_hooks={"request": [_install_trace]}),
    )


def shared_openai_client(
    base_url: str, api_key: str | None, extra_headers: Mapping[str, str] | None = None
) -> openai.AsyncOpenAI:
    clients = _CLIENTS.get(None)
    if clients is None:
        clients = {}
        _CLIENTS.set(clients)
    headers = tuple(sorted((extra_headers or {}).items()))
    key = (base_url, key_fingerprint(api_key), headers)
    client = clients.get(key)
    if client is None:
        client = clients[key] = build_openai_client(base_url, api_key, extra_headers)
    return client


async def aclose_shared_clients() -> None:
    """Close the pooled clients of the running loop (for a tidy shutdown)."""
    clients = _CLIENTS.get(None)
    if not clients:
        return
    for client in list(clients.values()):
        await client.close()
    clients.clear()
