"""Which LLM endpoint to use and which key goes with it (DESIGN.md, configuration table)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

SMALLEST_BASE_URL = "https://api.smallest.ai/waves/v1"
SMALLEST_DOMAIN = "smallest.ai"

EndpointKind = Literal["electron", "openai-compatible", "simulator"]


def _on_smallest_domain(url: str) -> bool:
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    return host == SMALLEST_DOMAIN or host.endswith("." + SMALLEST_DOMAIN)


def is_electron_host(url: str) -> bool:
    """True for a URL on smallest.ai or a subdomain (any scheme): Electron, with its plans."""
    return _on_smallest_domain(url)


def is_smallest_host(url: str) -> bool:
    """True for https URLs on smallest.ai or a subdomain: where SMALLEST_API_KEY may go."""
    return urlsplit(url).scheme.lower() == "https" and _on_smallest_domain(url)


def display_url(url: str) -> str:
    """The URL without any user:password part, for printing."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class LLMEndpoint:
    """The chosen endpoint. `api_key` never shows in repr or `describe()`."""

    kind: EndpointKind
    base_url: str | None
    api_key: str | None = field(default=None, repr=False)
    url_source: str | None = None  # "--llm-url", "ELECTRON_BASE_URL", "SMALLEST_API_KEY"
    key_source: str | None = None  # "--api-key", "SMALLEST_API_KEY"
    note: str | None = None  # e.g. why SMALLEST_API_KEY was withheld

    def describe(self) -> str:
        """The line the CLI prints, e.g. 'LLM: Electron at https://… (SMALLEST_API_KEY)'."""
        if self.kind == "simulator" or self.base_url is None:
            return "LLM: local Electron simulator (no --llm-url or SMALLEST_API_KEY)"
        name = "Electron" if self.kind == "electron" else "OpenAI-compatible endpoint"
        details = []
        if self.url_source in ("--llm-url", "ELECTRON_BASE_URL"):
            details.append(f"from {self.url_source}")
        details.append(self.key_source or "no key")
        if self.note:
            details.append(self.note)
        return f"LLM: {name} at {display_url(self.base_url)} ({', '.join(details)})"


def _given(value: str | None) -> str | None:
    value = value.strip() if value else None
    return value or None


def resolve_llm_endpoint(
    llm_url: str | None, api_key: str | None, environ: Mapping[str, str]
) -> LLMEndpoint:
    """First match wins: --llm-url / ELECTRON_BASE_URL, then SMALLEST_API_KEY, then the simulator.

    `api_key` (--api-key) is sent to whichever real endpoint is chosen; SMALLEST_API_KEY
    from the environment only ever goes to https://*.smallest.ai.
    """
    flag_key = _given(api_key)
    env_key = _given(environ.get("SMALLEST_API_KEY"))
    url, url_source = _given(llm_url), "--llm-url"
    if url is None:
        url, url_source = _given(environ.get("ELECTRON_BASE_URL")), "ELECTRON_BASE_URL"
    if url is None:
        if env_key is None:
            return LLMEndpoint(kind="simulator", base_url=None)
        url, url_source = SMALLEST_BASE_URL, "SMALLEST_API_KEY"
    url = url.rstrip("/")
    kind: EndpointKind = "electron" if _on_smallest_domain(url) else "openai-compatible"
    if flag_key is not None:
        return LLMEndpoint(kind, url, flag_key, url_source, "--api-key")
    if env_key is not None and is_smallest_host(url):
        return LLMEndpoint(kind, url, env_key, url_source, "SMALLEST_API_KEY")
    note = None
    if env_key is not None:
        note = "SMALLEST_API_KEY is only sent to https://*.smallest.ai"
    return LLMEndpoint(kind, url, None, url_source, None, note)
